//! The edge of a slot's VMs: one network namespace holding what Azure's fabric does for a
//! deployment's network — the VNet bridge every VM's NIC hangs on (each subnet's first
//! address is its gateway, as on Azure) and the 1:1 NAT between a VM's public address and
//! its private one.
//!
//! ```text
//!  root namespace              edge namespace k0lab<nn>e                 VM namespace
//!  k0l<nn>e 169.254.x.1 ──── uplink 169.254.x.2                             k0lab<nn>n<i>
//!  198.51.100.16n/26 and      vnet: bridge, 10.0.1.1/24 ── v<i> ══════ eth0 10.0.1.4/24
//!  203.0.113.16n/26 via .2    table ip azure_edge: 198.51.100.x ⇄ 10.0.1.4
//! ```
//!
//! Inbound to a public address: DNAT to the private one, the source kept, so the NSG inside
//! the VM sees the Internet's address as Azure's does. Outbound from a private address
//! leaving by `uplink`: SNAT to its public address. A released public address stops at
//! once, even for flows conntrack still remembers: what arrives for an address that is not
//! mapped now, or would leave from one, is dropped (chains `released_in`, `released_out`).
//!
//! Every configuration uses the same VNet range; it exists only inside the edge namespace,
//! never in the root one, so two slots' deployments never meet. IPv4 only, as the VNet: IPv6
//! is off in the edge and the VMs.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::cmd;
use super::netns::assert_route;
use super::slot::Slot;

/// The bridge standing for the VNet, in the edge namespace.
pub const BRIDGE: &str = "vnet";
/// The edge namespace's end of its link to the root namespace.
pub const UPLINK: &str = "uplink";
/// The nftables table (family `ip`) of the 1:1 NAT, in the edge namespace.
pub const TABLE: &str = "azure_edge";
/// Its map from public to private addresses.
pub const INBOUND_MAP: &str = "public_to_private";
/// Its map from private to public addresses.
pub const OUTBOUND_MAP: &str = "private_to_public";
/// Its set of the public addresses mapped now.
pub const PUBLIC_SET: &str = "public";
/// Its named counter of the packets dropped for or from an address not mapped now.
pub const RELEASED_COUNTER: &str = "released";

/// The edge namespace's end of VM `i`'s NIC link.
pub fn vm_link(i: u8) -> String {
    format!("v{i}")
}

fn ruleset() -> String {
    let released = format!(
        "\tset {PUBLIC_SET} {{ type ipv4_addr; }}\n\
         \tcounter {RELEASED_COUNTER} {{ }}\n\
         \tchain released_in {{\n\
         \t\ttype filter hook prerouting priority -150; policy accept;\n\
         \t\tiifname \"{UPLINK}\" ip daddr != @{PUBLIC_SET} counter name \"{RELEASED_COUNTER}\" drop\n\
         \t}}\n\
         \tchain released_out {{\n\
         \t\ttype filter hook postrouting priority 200; policy accept;\n\
         \t\toifname \"{UPLINK}\" ip saddr != @{PUBLIC_SET} counter name \"{RELEASED_COUNTER}\" drop\n\
         \t}}\n"
    );
    format!(
        "table ip {TABLE} {{\n\
         \tmap {INBOUND_MAP} {{ type ipv4_addr : ipv4_addr; }}\n\
         \tmap {OUTBOUND_MAP} {{ type ipv4_addr : ipv4_addr; }}\n\
         {released}\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\tiifname \"{UPLINK}\" dnat to ip daddr map @{INBOUND_MAP}\n\
         \t}}\n\
         \tchain postrouting {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname \"{UPLINK}\" snat to ip saddr map @{OUTBOUND_MAP}\n\
         \t}}\n\
         }}\n"
    )
}

fn edge(slot: &Slot, args: &[&str]) -> Result<String, String> {
    let ns = slot.edge_netns();
    let mut argv = vec!["-n", ns.as_str()];
    argv.extend_from_slice(args);
    cmd::try_run("ip", &argv)
}

fn nft(slot: &Slot, script: &str) -> Result<(), String> {
    super::nft::nft(Some(&slot.edge_netns()), &["-f", "-"], script).map(drop)
}

/// Turns IPv6 off in namespace `ns` before its links exist: the VNet is IPv4 only, and
/// Azure's fabric carries no multicast, so no neighbour discovery or MLD reaches another
/// VM's NIC (where its NSG would count it as a drop).
fn ipv4_only(ns: &str) -> Result<(), String> {
    cmd::try_run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )
    .map(drop)
}

/// Whether the slot's edge namespace exists.
pub fn exists(slot: &Slot) -> bool {
    cmd::run("ip", &["netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(slot.edge_netns().as_str()))
}

/// Creates the slot's edge (namespace, link, bridge, NAT table, root routes to the public
/// ranges) unless it exists, and checks that the root namespace routes the public
/// addresses to it and nowhere else.
///
/// # Errors
/// A command that failed.
pub fn ensure(slot: &Slot) -> Result<(), String> {
    if exists(slot) {
        return Ok(());
    }
    let (ns, veth) = (slot.edge_netns(), slot.edge_veth());
    cmd::try_run("ip", &["netns", "add", &ns])?;
    ipv4_only(&ns)?;
    cmd::try_run(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", UPLINK, "netns", &ns,
        ],
    )?;
    let root = format!("{}/30", slot.edge_root_ip());
    cmd::try_run("ip", &["addr", "add", &root, "dev", &veth])?;
    cmd::try_run("ip", &["link", "set", "dev", &veth, "up"])?;
    edge(
        slot,
        &[
            "addr",
            "add",
            &format!("{}/30", slot.edge_ip()),
            "dev",
            UPLINK,
        ],
    )?;
    edge(slot, &["link", "set", "lo", "up"])?;
    edge(slot, &["link", "set", "dev", UPLINK, "up"])?;
    edge(slot, &["link", "add", BRIDGE, "type", "bridge"])?;
    edge(slot, &["link", "set", "dev", BRIDGE, "up"])?;
    cmd::try_run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ],
    )?;
    nft(slot, &ruleset())?;
    let via = slot.edge_ip().to_string();
    for net in [slot.subnet(), slot.moved_subnet()] {
        cmd::try_run(
            "ip",
            &["route", "add", &net.to_string(), "via", &via, "dev", &veth],
        )?;
    }
    assert_route(slot.vm_public_ip(0), &veth);
    assert_route(slot.vm_moved_ip(0), &veth);
    Ok(())
}

/// Removes the slot's edge: its namespace (and with it the bridge, the VMs' NIC links and
/// the NAT) and the root's end of its link (and with it the routes).
pub fn remove(slot: &Slot) {
    let _ = cmd::try_run("ip", &["link", "del", &slot.edge_veth()]);
    let _ = cmd::try_run("ip", &["netns", "del", &slot.edge_netns()]);
}

/// A VM's addresses: its NIC's private address with the subnet's prefix length, and its
/// public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmAddresses {
    /// The NIC's address in its subnet (`10.0.1.4/24`).
    pub private: Ipv4Net,
    /// The public address mapped 1:1 to it.
    pub public: Ipv4Addr,
}

impl VmAddresses {
    /// The subnet's gateway: its first address, as on Azure.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.private.network()) + 1)
    }
}

/// Creates VM `i`'s namespace with its NIC (`eth0`) on the VNet bridge at its private
/// address, its default route through the subnet's gateway, and maps its public address to
/// it.
///
/// # Errors
/// A command that failed.
pub fn attach(slot: &Slot, i: u8, addrs: VmAddresses) -> Result<(), String> {
    ensure(slot)?;
    let ns = slot.netns(i);
    let link = vm_link(i);
    cmd::try_run("ip", &["netns", "add", &ns])?;
    ipv4_only(&ns)?;
    edge(
        slot,
        &[
            "link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    )?;
    edge(slot, &["link", "set", "dev", &link, "master", BRIDGE, "up"])?;
    let gateway = format!("{}/{}", addrs.gateway(), addrs.private.prefix_len());
    edge(slot, &["addr", "replace", &gateway, "dev", BRIDGE])?;
    let vm = |args: &[&str]| {
        let mut argv = vec!["-n", ns.as_str()];
        argv.extend_from_slice(args);
        cmd::try_run("ip", &argv)
    };
    vm(&["addr", "add", &addrs.private.to_string(), "dev", "eth0"])?;
    vm(&["link", "set", "lo", "up"])?;
    vm(&["link", "set", "eth0", "up"])?;
    vm(&[
        "route",
        "add",
        "default",
        "via",
        &addrs.gateway().to_string(),
    ])?;
    map(slot, addrs.private.addr(), addrs.public)
}

/// Maps `public` to `private` (both ways).
///
/// # Errors
/// nft failed.
pub fn map(slot: &Slot, private: Ipv4Addr, public: Ipv4Addr) -> Result<(), String> {
    nft(
        slot,
        &format!(
            "add element ip {TABLE} {INBOUND_MAP} {{ {public} : {private} }}\n\
             add element ip {TABLE} {OUTBOUND_MAP} {{ {private} : {public} }}\n\
             add element ip {TABLE} {PUBLIC_SET} {{ {public} }}\n"
        ),
    )
}

/// Takes the mapping of `public` to `private` away (both ways).
///
/// # Errors
/// nft failed (a mapping that does not exist is one).
pub fn unmap(slot: &Slot, private: Ipv4Addr, public: Ipv4Addr) -> Result<(), String> {
    nft(
        slot,
        &format!(
            "delete element ip {TABLE} {INBOUND_MAP} {{ {public} }}\n\
             delete element ip {TABLE} {OUTBOUND_MAP} {{ {private} }}\n\
             delete element ip {TABLE} {PUBLIC_SET} {{ {public} }}\n"
        ),
    )
}

/// Takes VM `i`'s NIC off the bridge (its namespace loses `eth0`) and its public address
/// mapping away; the caller deletes the namespace.
///
/// # Errors
/// The link did not go away.
pub fn detach(slot: &Slot, i: u8, addrs: VmAddresses) -> Result<(), String> {
    let _ = unmap(slot, addrs.private.addr(), addrs.public);
    let link = vm_link(i);
    let _ = edge(slot, &["link", "del", &link]);
    if cmd::wait_for(10.0, || edge(slot, &["link", "show", &link]).is_err()) {
        Ok(())
    } else {
        Err(format!("{link} in {} did not go away", slot.edge_netns()))
    }
}

/// The public → private mappings now in effect (from the NAT table itself).
pub fn mappings(slot: &Slot) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    mappings_in(&slot.edge_netns())
}

/// [`mappings`] of the edge namespace `ns`.
pub fn mappings_in(ns: &str) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let out = super::nft::nft(Some(ns), &["list", "map", "ip", TABLE, INBOUND_MAP], "")
        .unwrap_or_default();
    let Some(body) = out
        .split_once("elements = {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(body, _)| body)
    else {
        return Vec::new();
    };
    body.split(',')
        .filter_map(|pair| {
            let (a, b) = pair.split_once(':')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .collect()
}

/// The packets the edge dropped so far because their public address is not mapped now
/// ([`RELEASED_COUNTER`]).
pub fn released_drops(slot: &Slot) -> u64 {
    super::nft::counter_packets(Some(&slot.edge_netns()), "ip", TABLE, RELEASED_COUNTER)
}
