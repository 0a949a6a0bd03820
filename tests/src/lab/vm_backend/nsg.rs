//! A lab VM's network security group, enforced inside its namespace with nftables: the
//! emulator hands the backend the inbound rules in effect for the VM's NIC
//! ([`InboundRules`]: the subnet's NSG, then the NIC's, each with Azure's default rules) and
//! [`ruleset`] turns them into table `inet azure_nsg`, applied when the namespace is made
//! (it goes with the namespace).
//!
//! As on Azure, only what arrives on the NIC (`eth0`) is filtered: what wireguard-go
//! decapsulates from `wg0`, and loopback, never meets the NSG. NSGs are stateful, so replies
//! to the VM's own connections get in first. Then every NSG in turn (a chain each): its
//! rules by priority, the first match decides; an allow goes on to the next NSG, a deny
//! drops the packet and counts it in the named counter [`DROPPED_COUNTER`].
//!
//! Source prefixes: `*`, `Internet`, `Any` (and `0.0.0.0/0`) are any source;
//! `VirtualNetwork` is the VNet's address prefixes; `AzureLoadBalancer` is 168.63.129.16; a
//! CIDR or an address is itself; any other service tag panics, naming it. Protocol `*` is
//! TCP, UDP and ICMP (with ports: TCP and UDP to those ports). Destination addresses are not
//! matched (everything on the NIC is for the VM).

use ipnet::IpNet;
use k0rdent_arm_emulator::{Access, InboundRules, Protocol, SecurityRule};

pub use crate::lab::nft::{counter_packets, nft};

/// The nftables table (family `inet`) holding a VM's NSG, in the VM's namespace.
pub const TABLE: &str = "azure_nsg";
/// The named counter of the packets the NSG dropped.
pub const DROPPED_COUNTER: &str = "dropped";
/// The VM's NIC: the only interface the NSG filters.
pub const NIC: &str = "eth0";
/// What the `AzureLoadBalancer` service tag stands for (Azure's virtual public IP).
pub const AZURE_LOAD_BALANCER: &str = "168.63.129.16";

/// Where a rule's packets may come from.
enum Sources {
    /// Anywhere.
    Any,
    /// IPv4 and IPv6 prefixes (either may be empty; both empty matches nothing).
    Nets(Vec<String>, Vec<String>),
}

fn sources(rule: &SecurityRule, vnet: &[String]) -> Sources {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    let mut add = |net: IpNet| match net {
        IpNet::V4(n) => v4.push(n.to_string()),
        IpNet::V6(n) => v6.push(n.to_string()),
    };
    for prefix in &rule.source_prefixes {
        let p = prefix.trim();
        let tag = |t: &str| p.eq_ignore_ascii_case(t);
        if tag("*") || tag("Internet") || tag("Any") || p == "0.0.0.0/0" || p == "::/0" {
            return Sources::Any;
        } else if tag("VirtualNetwork") {
            for v in vnet {
                add(parse_net(v, &rule.name));
            }
        } else if tag("AzureLoadBalancer") {
            add(parse_net(AZURE_LOAD_BALANCER, &rule.name));
        } else {
            add(parse_net(p, &rule.name));
        }
    }
    Sources::Nets(v4, v6)
}

/// A CIDR or an address (as a host prefix); anything else is a service tag the lab does not
/// know.
fn parse_net(p: &str, rule: &str) -> IpNet {
    p.parse::<IpNet>()
        .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from))
        .unwrap_or_else(|_| {
            panic!(
                "NSG rule {rule}: source {p:?} is a service tag (or prefix) the lab cannot map \
                 to addresses"
            )
        })
}

/// The destination ports as an nftables set body, `None` for every port.
fn ports(rule: &SecurityRule) -> Option<String> {
    let mut out = Vec::new();
    for range in &rule.destination_ports {
        let r = range.trim();
        if r == "*" || r == "0-65535" {
            return None;
        }
        let valid = match r.split_once('-') {
            Some((a, b)) => a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
            None => r.parse::<u16>().is_ok(),
        };
        assert!(valid, "NSG rule {}: bad port range {r:?}", rule.name);
        out.push(r.to_owned());
    }
    // No port at all (neither property set): ARM would have refused it; take it as every port.
    (!out.is_empty()).then(|| out.join(", "))
}

/// The protocol (and port) match of a rule.
fn protocol_match(rule: &SecurityRule) -> String {
    let ports = ports(rule);
    match (&rule.protocol, ports) {
        (Protocol::Tcp, None) => "meta l4proto tcp".to_owned(),
        (Protocol::Tcp, Some(p)) => format!("tcp dport {{ {p} }}"),
        (Protocol::Udp, None) => "meta l4proto udp".to_owned(),
        (Protocol::Udp, Some(p)) => format!("udp dport {{ {p} }}"),
        (Protocol::Icmp, _) => "meta l4proto { icmp, ipv6-icmp }".to_owned(),
        (Protocol::Any, None) => "meta l4proto { tcp, udp, icmp, ipv6-icmp }".to_owned(),
        (Protocol::Any, Some(p)) => format!("meta l4proto {{ tcp, udp }} th dport {{ {p} }}"),
        (Protocol::Other(other), _) => panic!(
            "NSG rule {}: protocol {other:?} is not enforced by the lab",
            rule.name
        ),
    }
}

/// Keeps what an nftables comment can hold (Azure rule names are letters, digits, `_.-`).
fn comment(rule: &SecurityRule) -> String {
    let name: String = rule
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .collect();
    format!("{name} priority {}", rule.priority)
}

/// The nftables lines of one rule (one per address family with sources; none when its
/// sources are empty, e.g. `VirtualNetwork` of a VNet without prefixes).
fn rule_lines(rule: &SecurityRule, vnet: &[String]) -> Vec<String> {
    let proto = protocol_match(rule);
    let verdict = match rule.access {
        Access::Allow => "return".to_owned(),
        Access::Deny => format!("counter name {DROPPED_COUNTER} drop"),
    };
    let tail = format!("{proto} {verdict} comment \"{}\"", comment(rule));
    match sources(rule, vnet) {
        Sources::Any => vec![tail],
        Sources::Nets(v4, v6) => [("ip", v4), ("ip6", v6)]
            .into_iter()
            .filter(|(_, nets)| !nets.is_empty())
            .map(|(family, nets)| format!("{family} saddr {{ {} }} {tail}", nets.join(", ")))
            .collect(),
    }
}

/// The nftables ruleset (input for `nft -f`) enforcing `rules` on [`NIC`]. Applying it
/// replaces an earlier one. With no NSG the table only counts (nothing is dropped).
pub fn ruleset(rules: &InboundRules) -> String {
    let mut out = format!(
        "# The Azure NSGs in effect for this VM's NIC, generated from the emulator's resources.\n\
         add table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tcounter {DROPPED_COUNTER} {{\n\t}}\n"
    );
    for (i, nsg) in rules.nsgs.iter().enumerate() {
        out.push_str(&format!(
            "\t# NSG {} (evaluated {} of {})\n\tchain nsg{i} {{\n",
            nsg.name,
            i + 1,
            rules.nsgs.len()
        ));
        let mut sorted: Vec<&SecurityRule> = nsg.rules.iter().collect();
        sorted.sort_by_key(|r| r.priority);
        for rule in sorted {
            for line in rule_lines(rule, &rules.vnet_prefixes) {
                out.push_str(&format!("\t\t{line}\n"));
            }
        }
        out.push_str("\t}\n");
    }
    out.push_str(&format!(
        "\tchain input {{\n\
         \t\ttype filter hook input priority 0; policy accept;\n\
         \t\tiifname != \"{NIC}\" accept\n\
         \t\tct state established,related accept\n"
    ));
    for i in 0..rules.nsgs.len() {
        out.push_str(&format!("\t\tjump nsg{i}\n"));
    }
    out.push_str("\t}\n}\n");
    out
}

/// Checks a ruleset with `nft -c` (nothing is applied).
///
/// # Errors
/// What nft found wrong.
pub fn check(ruleset: &str) -> Result<(), String> {
    nft(None, &["-c", "-f", "-"], ruleset).map(drop)
}

/// Applies the NSG of `rules` in namespace `ns`; panics if nft refuses it.
pub fn apply(ns: &str, rules: &InboundRules) {
    let text = ruleset(rules);
    if let Err(e) = nft(Some(ns), &["-f", "-"], &text) {
        panic!("applying the NSG in {ns}: {e}\n{text}");
    }
}

/// The packets the NSG in namespace `ns` dropped so far.
pub fn dropped(ns: &str) -> u64 {
    counter_packets(Some(ns), "inet", TABLE, DROPPED_COUNTER)
}
