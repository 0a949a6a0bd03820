//! `setup_vpn` and `connect_vpn`: the hub side of the WireGuard tunnel, as steps.
//!
//! - `setup_vpn` writes the hub's wg-quick file (0600, in `keys/`) from the recorded network
//!   and the nodes' *live* public IPs, and corrects a live interface in place (`wg set`: new
//!   peers added, changed endpoints updated; the link is never taken down). Its outputs are
//!   the interface, the hub's public key and per node the tunnel address and public key — not
//!   the endpoints, so a VM that comes back with a new public IP reruns nothing downstream.
//! - `connect_vpn` is a session step: the interface can be gone after a reboot or `vpn down`,
//!   and bringing it back (sudo when not root) yields the same outputs, so nothing
//!   downstream reruns. A half-built interface (a `wg-quick up` killed half-way) is taken
//!   down and brought up again. Peers that do not answer are not its business: the layers
//!   that need the tunnel report unknown with the tunnel's diagnosis, and block.

mod connect;
mod hub;
mod observer;
mod setup;
mod watch;

use std::collections::BTreeMap;
use std::net::IpAddr;

use k0rdent_azure::observe::AzureFacts;
use k0rdent_core::{Observation, Outputs, Snapshot, StepId, state::DeploymentState};
use k0rdent_ssh::wireguard::ResolvedNetwork;

pub use connect::ConnectVpnStep;
pub use hub::{hub_elsewhere, hub_here, hub_is_here, takeover_message};
pub use observer::{DeviceFact, VPN_OBSERVER, VpnFacts, VpnObserver};
pub use setup::SetupVpnStep;
pub use watch::WatchedVpnGate;

/// The `setup_vpn` phase.
pub const SETUP_VPN_ID: StepId = StepId::from_static("setup_vpn");
/// The `connect_vpn` phase.
pub const CONNECT_VPN_ID: StepId = StepId::from_static("connect_vpn");

/// The outputs of `setup_vpn`: exactly what the nodes' side depends on.
pub fn outputs(net: &ResolvedNetwork) -> Outputs {
    let nodes: serde_json::Map<String, serde_json::Value> = net
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                serde_json::json!({
                    "tunnel_ip": n.address.to_string(),
                    "public_key": n.public_key.to_base64(),
                }),
            )
        })
        .collect();
    Outputs::new()
        .with("interface", net.interface.to_string())
        .with("hub_public_key", net.hub_public_key.to_base64())
        .with("nodes", serde_json::Value::Object(nodes))
}

/// The outputs of `connect_vpn`: the link (the hub interface and its key). Peers are
/// `setup_vpn`'s, corrected in place on a live interface, so a node added or moved neither
/// reruns `connect_vpn` nor changes what it records; a link restored after a reboot records
/// the same.
pub fn link_outputs(net: &ResolvedNetwork) -> Outputs {
    Outputs::new()
        .with("interface", net.interface.to_string())
        .with("hub_public_key", net.hub_public_key.to_base64())
}

/// The nodes' public IPs as Azure shows them now (the Azure observer's facts), so a VM that
/// came back with a new address is followed without waiting for `create_vms` to rerun.
///
/// # Errors
/// The observation to report when Azure could not be read or a node has no address yet.
pub fn live_public_ips(
    snapshot: &Snapshot,
    net: &ResolvedNetwork,
) -> Result<BTreeMap<String, IpAddr>, Observation> {
    let facts = snapshot.require::<AzureFacts>(k0rdent_azure::observe::OBSERVER)?;
    let mut ips = BTreeMap::new();
    for node in &net.nodes {
        let ip = facts
            .public_ip_of(&node.name)
            .and_then(|s| s.parse::<IpAddr>().ok())
            .ok_or_else(|| {
                Observation::absent(format!(
                    "node {} has no public IP address in Azure yet",
                    node.name
                ))
            })?;
        ips.insert(node.name.clone(), ip);
    }
    Ok(ips)
}

/// The recorded network, or the observation that says it is not prepared yet.
fn recorded_network(state: &DeploymentState) -> Result<ResolvedNetwork, Observation> {
    ResolvedNetwork::from_state(state)
        .map_err(|e| Observation::absent(format!("no WireGuard network recorded yet: {e}")))
}
