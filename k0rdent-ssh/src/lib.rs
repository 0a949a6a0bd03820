//! Node access for k0rdent-deploy: how the operator's machine reaches the nodes, and what a
//! node needs at boot to be reachable.
//!
//! - [`wireguard`]: the WireGuard plan ([`prepare_network`](wireguard::prepare_network): keys
//!   generated once into `keys/`, addresses allocated once per node, one UDP port, a
//!   per-deployment interface name, overlap checks), the node's cloud-init fragment and the
//!   hub's wg-quick file, the hub interface ([`VpnInterface`](wireguard::VpnInterface):
//!   `vpn up|down`, in-place peer updates) and the "VPN up" gate
//!   ([`VpnGate`](wireguard::VpnGate), whose [`TunnelReport`](wireguard::TunnelReport) is
//!   what `vpn status` prints).
//! - [`ssh`]: [`SshConnector`](ssh::SshConnector) (VPN check first, host keys pinned on first
//!   contact, one reused [`SshSession`](ssh::SshSession) per node), `known_hosts` export.
//! - [`node_checks`]: cloud-init, `wg0` and sudo checks as gates.
//! - [`os`]: everything Linux/macOS-specific. External programs (wg-quick, `ip`) run through
//!   [`k0rdent_process`], the one runner.
//!
//! The crate never prints; it logs with `tracing`. Private keys only ever appear wrapped in
//! [`Secret`](k0rdent_core::secret::Secret) and are stored in the state store's `keys/` (0600).
//! ssh2 and wireguard-control block, so they run on tokio's blocking pool.
//!
//! Planning the network and rendering what the nodes and the hub need:
//!
//! ```
//! use std::collections::BTreeMap;
//! use k0rdent_core::{MemoryStore, state::DeploymentState};
//! use k0rdent_ssh::wireguard::*;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let mut state = DeploymentState {
//!     cluster_id: Some("k0rdent-demo1234".into()),
//!     ..DeploymentState::default()
//! };
//! let spec = NodeNetworkSpec::new(
//!     "172.24.24.0/24".parse()?,
//!     vec![NodeSpec::new("k0s-controller-1", NodeRole::Controller)],
//! );
//! // Reads keys/, plans (pure), generates the missing keys; the caller records the result.
//! let prepared = prepare_network(&store, &spec, &state, &[], &VmPresence::Unknown).await?;
//! prepared.network.record(&mut state);
//! assert_eq!(prepared.network.interface.as_str(), "wgk0demo1234");
//!
//! // The node's custom data (holds its private key, so it never prints).
//! let node = node_bootstrap_from_store(&store, &prepared.network, "k0s-controller-1").await?;
//! assert!(node.cloud_config.expose().starts_with("#cloud-config\n"));
//! assert_eq!(format!("{node:?}").contains("PrivateKey"), false);
//!
//! // The hub's wg-quick file, once the VMs' public IPs are known.
//! let ips = BTreeMap::from([("k0s-controller-1".to_owned(), "203.0.113.10".parse()?)]);
//! let hub = hub_config_from_store(&store, &prepared.network, &ips).await?;
//! assert!(hub.text.expose().contains("Endpoint = 203.0.113.10:"));
//!
//! // A second run changes nothing: keys, addresses, port and name were chosen once.
//! let again = prepare_network(&store, &spec, &state, &[], &VmPresence::Unknown).await?;
//! assert_eq!(again.plan.describe_changes(), "WireGuard plan: nothing to do");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]

pub mod node_checks;
pub mod os;
pub mod ssh;
pub mod wireguard;
