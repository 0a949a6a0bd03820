//! [`PlanError`]: why the WireGuard plan cannot be made, each with a remedy.

use std::borrow::Cow;

use ipnet::Ipv4Net;
use k0rdent_core::Remedy;

use super::key::{KeyOwner, PublicKey};
use super::spec::SpecError;

/// Why the plan cannot be made. Every error says what to do: its [`Remedy`] is always `Some`.
/// In the `…Changed` variants, `recorded` is the value in the state and `requested` the
/// configuration's; in the key variants, `file` is the key's name in `keys/`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum PlanError {
    /// Invalid spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The network changed after addresses were handed out.
    #[error(
        "the tunnel network is {recorded} in the recorded state but {requested} in the configuration"
    )]
    NetworkChanged {
        recorded: Ipv4Net,
        requested: Ipv4Net,
    },
    /// The port changed after VMs were configured with it.
    #[error(
        "the WireGuard port is {recorded} in the recorded state but {requested} in the configuration"
    )]
    PortChanged { recorded: u16, requested: u16 },
    /// The interface name changed.
    #[error(
        "the WireGuard interface is {recorded} in the recorded state but {requested} in the configuration"
    )]
    InterfaceChanged { recorded: String, requested: String },
    /// No cluster id to derive the interface name from.
    #[error("the deployment has no cluster id yet, so no interface name can be derived")]
    NoClusterId,
    /// The network has too few addresses.
    #[error("the tunnel network {network} has room for {room} nodes, {needed} are needed")]
    NetworkTooSmall {
        network: Ipv4Net,
        /// Free node addresses.
        room: usize,
        /// Nodes that need one.
        needed: usize,
    },
    /// The network overlaps something it must not.
    #[error("the tunnel network {network} overlaps {what} {other}")]
    Overlap {
        network: Ipv4Net,
        /// What it overlaps (`the local route`, `the VNet`, `the reserved range`).
        what: &'static str,
        /// The overlapping range (and device).
        other: String,
    },
    /// A recorded value in the state is unusable.
    #[error("the recorded state is inconsistent: {0}")]
    Inconsistent(String),
    /// A private key is missing while a VM uses its public key.
    #[error(
        "the WireGuard private key of {owner} (keys/{file}) is missing, but {users} use its public key {public}"
    )]
    KeyMissing {
        owner: KeyOwner,
        file: String,
        /// The VMs that use it, as a phrase (`the VM of node wrk-1`).
        users: String,
        /// The recorded public key.
        public: PublicKey,
    },
    /// The key on disk is not the recorded one.
    #[error(
        "keys/{file} holds the key of public key {on_disk}, but the state records {recorded} for {owner}"
    )]
    KeyMismatch {
        owner: KeyOwner,
        file: String,
        recorded: PublicKey,
        on_disk: PublicKey,
    },
}

impl Remedy for PlanError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            PlanError::Spec(_) => "fix the configuration".into(),
            PlanError::NetworkChanged { recorded, .. } => format!(
                "set the tunnel network back to {recorded}: the nodes' WireGuard configuration is baked into their VMs; changing it needs `k0rdent reset` and a new deployment"
            )
            .into(),
            PlanError::PortChanged { recorded, .. } => format!(
                "set the WireGuard port back to {recorded} (or remove it from the configuration): the nodes listen on it since their first boot"
            )
            .into(),
            PlanError::InterfaceChanged { recorded, .. } => format!(
                "set the interface back to {recorded}, or run `k0rdent vpn down` and remove `wireguard.interface` from the state's settings"
            )
            .into(),
            PlanError::NoClusterId => "run the prepare_deployment phase first".into(),
            PlanError::NetworkTooSmall { .. } => {
                "choose a larger tunnel network (a /24 holds 250 nodes)".into()
            }
            PlanError::Overlap { .. } => "choose another tunnel network in the configuration (e.g. another 172.24.x.0/24)".into(),
            PlanError::Inconsistent(_) => {
                "check deployment-state.yaml (`k0rdent state show`); restore it from backups/ if it was edited".into()
            }
            PlanError::KeyMissing { file, .. } => format!(
                "restore keys/{file} from a backup; if it is lost, delete the VMs that use it and deploy again (a new key cannot reach a running VM, whose configuration is fixed at creation)"
            )
            .into(),
            PlanError::KeyMismatch { file, .. } => {
                format!("restore the original keys/{file}; it was replaced by another key").into()
            }
        })
    }
}
