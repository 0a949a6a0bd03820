//! The `wireguard-network` check: the configured tunnel network against this machine's
//! routes (`ip route` / `netstat -rn`), the VNet and k0s's pod and service networks — the
//! overlaps that would send cluster or tunnel traffic the wrong way. Routes through the
//! deployment's own interface (once it exists) and the default route do not count, as for
//! `deploy`.

use ipnet::Ipv4Net;
use k0rdent_core::state::DeploymentState;
use k0rdent_ssh::os::LocalRoute;
use k0rdent_ssh::wireguard::ResolvedNetwork;
use k0rdent_ssh::wireguard::spec::{K0S_POD_CIDR, K0S_SERVICE_CIDR};

use super::Check;
use crate::config::Loaded;

const NAME: &str = "wireguard-network";

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Everything `wireguard` overlaps, each as one phrase.
fn clashes(
    wireguard: &Ipv4Net,
    vnet: &Ipv4Net,
    routes: &[LocalRoute],
    own_interface: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if overlaps(wireguard, vnet) {
        out.push(format!("the VNet {vnet}"));
    }
    for (what, range) in [("pod", K0S_POD_CIDR), ("service", K0S_SERVICE_CIDR)] {
        if let Ok(r) = range.parse::<Ipv4Net>()
            && overlaps(wireguard, &r)
        {
            out.push(format!("k0s's {what} network {r}"));
        }
    }
    for r in routes {
        if r.destination.prefix_len() == 0
            || (own_interface.is_some() && r.device.as_deref() == own_interface)
        {
            continue;
        }
        if overlaps(wireguard, &r.destination) {
            out.push(format!("the local route {r}"));
        }
    }
    out
}

pub(super) async fn check(loaded: Option<&Loaded>, recorded: Option<&DeploymentState>) -> Check {
    let Some(loaded) = loaded else {
        return Check::skip(NAME, "no valid configuration to take the network from");
    };
    let net = &loaded.config.network;
    let own = recorded
        .and_then(|s| ResolvedNetwork::from_state(s).ok())
        .map(|n| n.interface.as_str().to_owned());
    let routes = match k0rdent_ssh::os::local_routes().await {
        Ok(r) => r,
        Err(e) => {
            return Check::warn(
                NAME,
                format!(
                    "{}: the local routes could not be listed ({e}); checked against the VNet \
                     and k0s's networks only",
                    net.wireguard
                ),
                "install iproute2 (`ip`), so the tunnel network can be checked against the routes",
            );
        }
    };
    let found = clashes(&net.wireguard, &net.vnet, &routes, own.as_deref());
    if found.is_empty() {
        Check::ok(
            NAME,
            format!(
                "{} overlaps none of {} local route(s), the VNet {} or k0s's pod and service networks",
                net.wireguard,
                routes.len(),
                net.vnet
            ),
        )
    } else {
        Check::fail(
            NAME,
            format!("{} overlaps {}", net.wireguard, found.join(", ")),
            Some(
                "set network.wireguard_network to a private range nothing here uses (e.g. \
                 172.24.24.0/24; `ip route` lists the routes)"
                    .to_owned(),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dst: &str, dev: &str) -> LocalRoute {
        LocalRoute {
            destination: dst.parse().unwrap(),
            device: Some(dev.to_owned()),
        }
    }

    #[test]
    fn overlaps_with_routes_the_vnet_and_k0s_are_named_but_default_and_own_routes_are_not() {
        let wg: Ipv4Net = "192.168.100.0/24".parse().unwrap();
        let vnet: Ipv4Net = "10.0.0.0/16".parse().unwrap();
        let routes = [
            route("0.0.0.0/0", "eth0"),
            route("192.168.100.0/24", "wgk0abc"),
            route("192.168.0.0/16", "docker0"),
            route("172.17.0.0/16", "docker1"),
        ];
        assert_eq!(
            clashes(&wg, &vnet, &routes, Some("wgk0abc")),
            ["the local route 192.168.0.0/16 dev docker0"]
        );
        // Without a recorded interface, a route on it is someone else's.
        assert_eq!(clashes(&wg, &vnet, &routes, None).len(), 2);
        let inside_pods: Ipv4Net = "10.244.5.0/24".parse().unwrap();
        assert_eq!(
            clashes(&inside_pods, &"10.0.0.0/8".parse().unwrap(), &[], None),
            ["the VNet 10.0.0.0/8", "k0s's pod network 10.244.0.0/16"]
        );
    }
}
