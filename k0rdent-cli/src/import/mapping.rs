//! The pure mapping from what the Bash tool wrote ([`BashDir`]) to our state and keys.
//!
//! What is recorded is what the Bash tool chose once and what live resources depend on: the
//! cluster id, the tunnel network, port, interface and addresses, every key, the k0s roles it
//! rendered and the names `az vm create` gave each VM's NIC and public IP. Its phases carry
//! over only as records that observation verifies on the next `plan` (completed, without
//! recorded inputs, so a phase whose result is observed is adopted and one whose result is
//! missing reruns); its legacy flags are dropped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::Ipv4Net;
use k0rdent_azure::spec::{
    ADOPTED_NIC_ATTR, ADOPTED_PUBLIC_IP_ATTR, AdoptedVm, IMPORTED_FROM_SETTING,
};
use k0rdent_core::Remedy;
use k0rdent_core::role::NodeRole;
use k0rdent_core::secret::Secret;
use k0rdent_core::state::{ConfigRecord, DeploymentState, keys};
use k0rdent_ssh::wireguard::spec::DEFAULT_KEEPALIVE_SECS;
use k0rdent_ssh::wireguard::{InterfaceName, PrivateKey, ResolvedNetwork, ResolvedNode};

use super::bash::{BashDir, HUB_PEER};
use crate::config::Loaded;
use crate::deployment::k0s::hosts::{K0S_NO_PRIVATE_ADDRESS, K0S_NO_TAINTS, K0S_ROLE};
use crate::deployment::prepare::SSH_PUBLIC_KEY;

/// The value of [`IMPORTED_FROM_SETTING`] for a Bash-tool deployment (its `created-by` tag).
pub const BASH_TOOL: &str = "k0rdent-azure-setup";

/// Why the directory cannot be imported as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ImportRefused {
    /// What is wrong.
    pub detail: String,
    /// What to do.
    pub remedy: String,
}

impl Remedy for ImportRefused {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(&self.remedy))
    }
}

fn refused(detail: impl Into<String>, remedy: impl Into<String>) -> ImportRefused {
    ImportRefused {
        detail: detail.into(),
        remedy: remedy.into(),
    }
}

/// The result: our state (no secret in it) and the private keys for `keys/`.
#[derive(Debug)]
pub struct Imported {
    #[allow(missing_docs)]
    pub state: DeploymentState,
    /// Key store name ([`keys`]) and content, in the format our readers expect.
    pub secrets: Vec<(String, Secret<Vec<u8>>)>,
    /// Differences worth telling the user (nothing refused).
    pub warnings: Vec<String>,
}

/// The k0s role the Bash tool's `install-k0s.sh` gives host number `index` (0-based) of its
/// controllers: one controller → `controller+worker`; several → the first `controller`, the
/// others `controller+worker`. Workers are always `worker`.
pub fn bash_k0s_role(role: NodeRole, controller_index: usize, controllers: usize) -> NodeRole {
    match role {
        NodeRole::Worker => NodeRole::Worker,
        _ if controllers == 1 => NodeRole::ControllerWorker,
        _ if controller_index == 0 => NodeRole::Controller,
        _ => NodeRole::ControllerWorker,
    }
}

/// Reads one peer's private key: the state's (what the VMs and the laptop config were
/// rendered from), checked against its `wireguard/<host>_privkey` copy and its public key.
fn peer_key(bash: &BashDir, name: &str) -> Result<PrivateKey, ImportRefused> {
    let peer = &bash.state.peers[name];
    let from_state = peer
        .private_key
        .as_ref()
        .map(|k| k.expose().trim().to_owned());
    let from_file = bash
        .key_files
        .get(name)
        .map(|k| k.expose().trim().to_owned());
    let text = match (&from_state, &from_file) {
        (Some(s), Some(f)) if s != f => {
            return Err(refused(
                format!(
                    "the WireGuard private key of {name} in state/deployment-state.yaml differs \
                     from wireguard/{name}_privkey"
                ),
                "restore the directory to one consistent deployment (the state's key is the one \
                 the VMs were given)",
            ));
        }
        (Some(s), _) => s.clone(),
        (None, Some(f)) => f.clone(),
        (None, None) => {
            return Err(refused(
                format!(
                    "no WireGuard private key for {name} (neither in the state nor in wireguard/)"
                ),
                "the Bash tool's prepare_deployment did not finish; nothing to import — deploy \
                 from scratch",
            ));
        }
    };
    let key = PrivateKey::from_key_file(text.as_bytes()).map_err(|_| {
        refused(
            format!("the WireGuard private key of {name} is not a key"),
            "restore the Bash tool's directory from a backup",
        )
    })?;
    if let Some(public) = &peer.public_key
        && key.public_key().to_base64() != public.trim()
    {
        return Err(refused(
            format!("the WireGuard public key of {name} does not match its private key"),
            "restore the Bash tool's directory from a backup",
        ));
    }
    Ok(key)
}

fn key_file(key: &PrivateKey) -> Secret<Vec<u8>> {
    key.to_key_file()
}

/// Maps the Bash tool's directory onto our state and keys, for the configuration `loaded`.
///
/// # Errors
/// [`ImportRefused`] when the directory is inconsistent or does not match the configuration.
pub fn map(bash: &BashDir, loaded: &Loaded, now: DateTime<Utc>) -> Result<Imported, ImportRefused> {
    let st = &bash.state;
    let id = bash.cluster_id.clone();
    if st.deployment_id != id {
        return Err(refused(
            format!(
                ".clusterid says {id} but state/deployment-state.yaml is deployment {}",
                st.deployment_id
            ),
            "the state belongs to another deployment; restore the matching .clusterid",
        ));
    }
    let cfg = &loaded.config;
    let network: Ipv4Net = st
        .wireguard_network
        .as_deref()
        .and_then(|n| n.parse().ok())
        .map(|n: Ipv4Net| n.trunc())
        .ok_or_else(|| {
            refused(
                "the Bash state records no WireGuard network (config.wireguard_network)",
                "the Bash tool's prepare_deployment did not run; nothing to import",
            )
        })?;
    if network != cfg.network.wireguard.trunc() {
        return Err(refused(
            format!(
                "the configuration's network.wireguard_network is {} but the deployment uses {network}",
                cfg.network.wireguard
            ),
            "pass --config with the configuration the Bash tool deployed with",
        ));
    }
    let port = st.wireguard_port.ok_or_else(|| {
        refused(
            "the Bash state records no WireGuard port (config.wireguard_port)",
            "the Bash tool's prepare_deployment did not finish; nothing to import",
        )
    })?;
    if let Some(p) = cfg.network.wireguard_port.filter(|p| *p != port) {
        return Err(refused(
            format!("the configuration asks for WireGuard port {p} but the nodes listen on {port}"),
            format!("remove network.wireguard_port from the configuration or set it to {port}"),
        ));
    }
    let interface: InterfaceName = match &bash.hub_interface {
        Some(name) => name.parse().ok(),
        None => InterfaceName::for_cluster(&id).ok(),
    }
    .ok_or_else(|| {
        refused(
            format!("no WireGuard interface name can be derived from {id}"),
            "restore the Bash tool's wireguard/ directory",
        )
    })?;
    let hub = st.peers.get(HUB_PEER).ok_or_else(|| {
        refused(
            format!("wireguard_peers.{HUB_PEER} is missing from the Bash state"),
            "the Bash tool's prepare_deployment did not finish; nothing to import",
        )
    })?;
    let hub_address = std::net::Ipv4Addr::from(u32::from(network.network()) + 1);
    if hub.ip != hub_address {
        return Err(refused(
            format!(
                "the hub's tunnel address is {} (expected {hub_address})",
                hub.ip
            ),
            "this is not a layout the Bash tool writes; restore its state file",
        ));
    }
    let mut secrets = Vec::new();
    let hub_key = peer_key(bash, HUB_PEER)?;
    secrets.push((keys::WIREGUARD_HUB.to_owned(), key_file(&hub_key)));

    let controllers = st
        .peers
        .iter()
        .filter(|(n, p)| *n != HUB_PEER && p.role == "controller")
        .count();
    let mut nodes = Vec::new();
    let mut k0s_roles = BTreeMap::new();
    let mut controller_index = 0;
    // Controllers first, in the Bash tool's host order (its names sort in that order).
    let mut hosts: Vec<(&String, &super::bash::BashPeer)> =
        st.peers.iter().filter(|(n, _)| *n != HUB_PEER).collect();
    hosts.sort_by_key(|(n, p)| (p.role != "controller", host_number(n), (*n).clone()));
    for (name, peer) in hosts {
        let role: NodeRole = if peer.role == "controller" {
            NodeRole::Controller
        } else {
            NodeRole::Worker
        };
        let key = peer_key(bash, name)?;
        secrets.push((keys::wireguard_node(name), key_file(&key)));
        let rule = bash_k0s_role(role, controller_index, controllers);
        if role == NodeRole::Controller {
            controller_index += 1;
        }
        let from_k0sctl = bash
            .k0sctl_roles
            .as_ref()
            .and_then(|r| r.get(&IpAddr::V4(peer.ip)))
            .and_then(|r| r.parse::<NodeRole>().ok());
        k0s_roles.insert(name.clone(), from_k0sctl.unwrap_or(rule));
        nodes.push(ResolvedNode {
            name: name.clone(),
            role,
            address: peer.ip,
            public_key: key.public_key(),
        });
    }
    let mut state = DeploymentState {
        cluster_id: Some(id.clone()),
        created_at: st.created_at,
        config: Some(ConfigRecord {
            path: loaded.path.display().to_string(),
            fingerprint: Some(loaded.fingerprint.clone()),
            snapshot: serde_json::to_value(&loaded.config).unwrap_or_default(),
            recorded_at: Some(now),
        }),
        ..DeploymentState::default()
    };
    let net = ResolvedNetwork {
        interface,
        network,
        port,
        keepalive_secs: DEFAULT_KEEPALIVE_SECS,
        hub_address,
        hub_public_key: hub_key.public_key(),
        nodes,
    };
    net.record(&mut state);
    state
        .settings
        .insert(IMPORTED_FROM_SETTING.to_owned(), BASH_TOOL.into());

    let vms_launched = !st.vms.is_empty() || st.phase("create_vms") != "pending";
    match &bash.ssh_private_key {
        Some(private) => {
            let public = k0rdent_ssh::ssh::keygen::public_of(private.expose()).map_err(|e| {
                refused(
                    format!("azure-resources/{id}-ssh-key is not an OpenSSH private key: {e}"),
                    "restore it from a backup; it is the key the VMs accept",
                )
            })?;
            state
                .settings
                .insert(SSH_PUBLIC_KEY.to_owned(), public.into());
            secrets.push((keys::SSH_ADMIN.to_owned(), private.clone()));
        }
        None if vms_launched => {
            return Err(refused(
                format!("azure-resources/{id}-ssh-key is missing while the Bash tool created VMs"),
                "restore it from a backup: the VMs accept only that key",
            ));
        }
        None => {}
    }

    // The Bash tool rendered no privateAddress; once its k0sctl may have applied, adding one
    // would restart its controllers.
    let k0s_touched = bash.k0sctl_roles.is_some() || st.phase("install_k0s") != "pending";
    for (name, role) in &k0s_roles {
        let node = state.nodes.entry(name.clone()).or_default();
        node.attributes
            .insert(K0S_ROLE.to_owned(), role.as_str().into());
        node.attributes
            .insert(K0S_NO_TAINTS.to_owned(), false.into());
        if k0s_touched {
            node.attributes
                .insert(K0S_NO_PRIVATE_ADDRESS.to_owned(), true.into());
        }
        if let Some(vm) = st.vms.get(name) {
            let adopted = AdoptedVm::az_cli_defaults(name);
            node.attributes
                .insert(ADOPTED_PUBLIC_IP_ATTR.to_owned(), adopted.public_ip.into());
            node.attributes
                .insert(ADOPTED_NIC_ATTR.to_owned(), adopted.nic.into());
            node.public_ip.clone_from(&vm.public_ip);
        }
    }
    super::records::record_phases(bash, &mut state, now);
    let warnings = super::records::node_warnings(bash, loaded);
    Ok(Imported {
        state,
        secrets,
        warnings,
    })
}

/// `k0s-controller-12` → 12, so hosts sort as the Bash tool numbered them.
fn host_number(name: &str) -> u32 {
    name.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bash_tools_k0s_roles() {
        use NodeRole::{Controller, ControllerWorker, Worker};
        assert_eq!(bash_k0s_role(Controller, 0, 1), ControllerWorker);
        assert_eq!(bash_k0s_role(Controller, 0, 3), Controller);
        assert_eq!(bash_k0s_role(Controller, 1, 3), ControllerWorker);
        assert_eq!(bash_k0s_role(Controller, 2, 3), ControllerWorker);
        assert_eq!(bash_k0s_role(Worker, 0, 1), Worker);
        assert_eq!(host_number("k0s-controller-12"), 12);
    }
}
