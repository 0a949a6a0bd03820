//! The `network` section: the VNet, its subnet and the WireGuard tunnel network, which must
//! not overlap each other or k0s's pod and service networks.

use ipnet::Ipv4Net;
use k0rdent_ssh::wireguard::spec::{K0S_POD_CIDR, K0S_SERVICE_CIDR};

use super::checks::Checks;
use crate::config::{NetworkSettings, raw};

fn private_range(net: &Ipv4Net) -> bool {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ]
    .iter()
    .filter_map(|r| r.parse::<Ipv4Net>().ok())
    .any(|r| r.contains(net))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The networks, checked for a deployment of `nodes` nodes (plus this machine on the tunnel).
pub(super) fn settings(c: &mut Checks, n: raw::Network, nodes: u64) -> NetworkSettings {
    let vnet = c.cidr("network.vnet_prefix", n.vnet_prefix, "10.0.0.0/16");
    let subnet = c.cidr("network.subnet_prefix", n.subnet_prefix, "10.0.1.0/24");
    let wireguard = c.cidr(
        "network.wireguard_network",
        n.wireguard_network,
        "192.168.100.0/24",
    );
    if !vnet.contains(&subnet) {
        c.error(
            "network.subnet_prefix",
            format!("{subnet} is not inside network.vnet_prefix {vnet}"),
        );
    }
    if subnet.prefix_len() > 29 {
        c.error(
            "network.subnet_prefix",
            format!("{subnet} is too small for the VMs (Azure needs at least a /29)"),
        );
    }
    if overlaps(&wireguard, &vnet) {
        c.error(
            "network.wireguard_network",
            format!("{wireguard} overlaps network.vnet_prefix {vnet}"),
        );
    }
    for (name, range) in [("pod", K0S_POD_CIDR), ("service", K0S_SERVICE_CIDR)] {
        if let Ok(r) = range.parse::<Ipv4Net>() {
            if overlaps(&wireguard, &r) {
                c.error(
                    "network.wireguard_network",
                    format!("{wireguard} overlaps k0s's {name} network {r}"),
                );
            }
            if overlaps(&vnet, &r) {
                c.error(
                    "network.vnet_prefix",
                    format!("{vnet} overlaps k0s's {name} network {r}"),
                );
            }
        }
    }
    let host_bits = 32 - u32::from(wireguard.prefix_len());
    let usable = (1u64 << host_bits).saturating_sub(2);
    if usable < nodes + 1 {
        c.error(
            "network.wireguard_network",
            format!(
                "{wireguard} has {usable} addresses; {nodes} nodes and this machine need {}",
                nodes + 1
            ),
        );
    }
    if !private_range(&wireguard) {
        c.warn(
            "network.wireguard_network",
            format!(
                "{wireguard} is not a private range; traffic to real hosts there would go into the tunnel"
            ),
        );
    }
    if let Some(p) = n.wireguard_port
        && p < 1024
    {
        c.error(
            "network.wireguard_port",
            format!("{p} is a privileged port; use 1024-65535"),
        );
    }
    NetworkSettings {
        vnet,
        subnet,
        wireguard,
        wireguard_port: n.wireguard_port,
    }
}
