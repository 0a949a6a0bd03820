//! From the recorded state to what k0sctl is given: each node's k0s role (recorded once,
//! never recomputed), its tunnel and VNet addresses, and the digest of the k0s block whose
//! change restarts every controller.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use k0rdent_core::fingerprint::Fingerprint;
use k0rdent_core::role::NodeRole;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::{StepId, state::keys};
use k0rdent_ssh::wireguard::ResolvedNetwork;

use crate::k0s::{K0sctlHost, K0sctlInput, new_deployment_no_taints};

/// Node attribute holding the k0s role, recorded the first time `install_k0s` renders.
pub const K0S_ROLE: &str = "k0s_role";
/// Node attribute: `noTaints` for a `controller+worker`, recorded with the role.
pub const K0S_NO_TAINTS: &str = "k0s_no_taints";
/// Node attribute: the Azure `vmId` the node had when k0s was last installed on it, so a
/// replaced controller (same addresses, new VM) is recognised and its old etcd member
/// removed first.
pub const K0S_VM_ID: &str = "k0s_vm_id";
/// Node attribute: k0sctl reset k0s on this node (it was leaving the cluster); it is no
/// longer a host of any k0sctl configuration.
pub const K0S_RESET: &str = "k0s_reset";
/// Node attribute set by `import-bash-state`: render no `privateAddress` (the Bash tool's
/// controllers were configured without one; adding it would restart them).
pub const K0S_NO_PRIVATE_ADDRESS: &str = "k0s_no_private_address";

/// A node's k0s role: recorded, else the rule for a new node — controllers are
/// `controller+worker` when the deployment has no worker at all, else `controller`.
pub fn role_of(state: &DeploymentState, node: &str, azure_role: NodeRole) -> NodeRole {
    if let Some(r) = state
        .nodes
        .get(node)
        .and_then(|n| n.attributes.get(K0S_ROLE))
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
    {
        return r;
    }
    let any_worker = state
        .nodes
        .values()
        .any(|n| n.role.parse::<NodeRole>() == Ok(NodeRole::Worker));
    match azure_role {
        NodeRole::Controller if !any_worker => NodeRole::ControllerWorker,
        other => other,
    }
}

fn no_taints_of(state: &DeploymentState, node: &str, role: NodeRole) -> bool {
    state
        .nodes
        .get(node)
        .and_then(|n| n.attributes.get(K0S_NO_TAINTS))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or_else(|| new_deployment_no_taints(role))
}

/// The VNet address `create_vms/<node>` recorded (its `private_ip` output).
pub fn private_ip(state: &DeploymentState, node: &str) -> Option<IpAddr> {
    let id = StepId::parse(&format!("create_vms/{node}")).ok()?;
    state
        .record(&id)?
        .outputs
        .get("private_ip")?
        .as_str()?
        .parse()
        .ok()
}

/// How a node's VM differs from the one `install_k0s` last left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmChange {
    /// A new VM under the name (its `vmId` is not the one k0s was installed on): k0s is not
    /// on it, whatever the node would answer.
    Replaced,
    /// `create_vms` (re)started or created it after `install_k0s` last finished, and
    /// recently: a node that does not answer yet is booting, and the gates wait for it.
    JustStarted,
}

/// The nodes whose VM changed since `install_k0s` ran on them: replaced (recorded `vmId` ≠
/// [`K0S_VM_ID`]), or started by a `create_vms` step that finished after `installed` (when
/// `install_k0s` last finished) and within `fresh` of `now`.
pub fn vm_changes(
    state: &DeploymentState,
    installed: Option<chrono::DateTime<chrono::Utc>>,
    fresh: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> std::collections::BTreeMap<String, VmChange> {
    let fresh = chrono::Duration::from_std(fresh).unwrap_or(chrono::Duration::MAX);
    state
        .nodes
        .iter()
        .filter_map(|(name, node)| {
            let k0s_vm = node.attributes.get(K0S_VM_ID).and_then(|v| v.as_str());
            if k0s_vm.is_some_and(|i| node.vm_id.as_deref() != Some(i)) {
                return Some((name.clone(), VmChange::Replaced));
            }
            let id = StepId::parse(&format!("create_vms/{name}")).ok()?;
            let finished = state.record(&id)?.finished_at?;
            let after = installed.is_none_or(|i| finished > i);
            (after && now - finished < fresh).then(|| (name.clone(), VmChange::JustStarted))
        })
        .collect()
}

/// Why the k0sctl input cannot be built yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    /// WireGuard was not set up.
    #[error("no WireGuard network is recorded: {0}")]
    NoNetwork(String),
    /// A node has no VNet address recorded.
    #[error("node {0} has no VNet address recorded (its create_vms step has not finished)")]
    NoPrivateIp(String),
}

/// Whether k0sctl already reset `node` (see [`K0S_RESET`]).
pub fn was_reset(state: &DeploymentState, node: &str) -> bool {
    state
        .nodes
        .get(node)
        .and_then(|n| n.attributes.get(K0S_RESET))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Everything k0sctl needs, from the recorded state. The nodes in `leaving` (recorded, no
/// longer configured) are hosts with `reset: true` until k0sctl has reset them, then no host
/// at all; they come last, so the first controller stays the one the API URL names.
///
/// # Errors
/// [`HostsError`] when the state is not far enough along.
pub fn k0sctl_input(
    state: &DeploymentState,
    k0s_version: &str,
    user: &str,
    state_dir: &Path,
    leaving: &BTreeSet<String>,
) -> Result<K0sctlInput, HostsError> {
    let net =
        ResolvedNetwork::from_state(state).map_err(|e| HostsError::NoNetwork(e.to_string()))?;
    let key_path = std::path::absolute(state_dir.join("keys").join(keys::SSH_ADMIN))
        .unwrap_or_else(|_| state_dir.join("keys").join(keys::SSH_ADMIN));
    let mut hosts = Vec::new();
    for n in &net.nodes {
        let reset = leaving.contains(&n.name);
        if reset && was_reset(state, &n.name) {
            continue;
        }
        let role = role_of(state, &n.name, n.role);
        let skip_private = state
            .nodes
            .get(&n.name)
            .and_then(|r| r.attributes.get(K0S_NO_PRIVATE_ADDRESS))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let private_address = if skip_private {
            None
        } else {
            Some(
                private_ip(state, &n.name)
                    .ok_or_else(|| HostsError::NoPrivateIp(n.name.clone()))?,
            )
        };
        hosts.push(K0sctlHost {
            name: n.name.clone(),
            role,
            ssh_address: IpAddr::V4(n.address),
            private_address,
            user: user.to_owned(),
            key_path: key_path.clone(),
            no_taints: no_taints_of(state, &n.name, role),
            reset,
        });
    }
    // Controllers first: k0sctl initialises the cluster on the first one; leaving hosts last.
    hosts.sort_by_key(|h| (h.reset, !h.role.is_controller()));
    let known_hosts_path = std::path::absolute(state_dir.join("known_hosts"))
        .unwrap_or_else(|_| state_dir.join("known_hosts"));
    Ok(K0sctlInput {
        cluster_id: state.cluster_id.clone().unwrap_or_default(),
        k0s_version: k0s_version.to_owned(),
        known_hosts_path,
        hosts,
    })
}

/// The nodes Kubernetes should list: those that run a kubelet (workers and
/// `controller+worker`; a pure `controller` runs none).
pub fn kubelet_nodes(input: &K0sctlInput) -> Vec<String> {
    input
        .hosts
        .iter()
        .filter(|h| h.role != NodeRole::Controller && !h.reset)
        .map(|h| h.name.clone())
        .collect()
}

/// A digest of what, when changed, makes k0sctl restart every controller: the k0s version
/// and configuration (hosts joining or leaving do not).
pub fn k0s_block_digest(k0s_version: &str) -> String {
    Fingerprint::builder()
        .input("k0s_version", &k0s_version)
        .input("network", &crate::k0s::network::bash_tool_network())
        .finish()
        .inputs
        .as_str()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k0rdent_core::state::NodeRecord;

    fn state(nodes: &[(&str, &str)]) -> DeploymentState {
        let mut s = DeploymentState::default();
        for (n, r) in nodes {
            s.nodes.insert(
                (*n).into(),
                NodeRecord {
                    role: (*r).into(),
                    ..NodeRecord::default()
                },
            );
        }
        s
    }

    #[test]
    fn roles_follow_the_rule_once_and_then_the_record() {
        let alone = state(&[("k0s-controller-1", "controller")]);
        assert_eq!(
            role_of(&alone, "k0s-controller-1", NodeRole::Controller),
            NodeRole::ControllerWorker
        );
        let mut with = state(&[
            ("k0s-controller-1", "controller"),
            ("k0s-worker-1", "worker"),
        ]);
        assert_eq!(
            role_of(&with, "k0s-controller-1", NodeRole::Controller),
            NodeRole::Controller
        );
        // Recorded as controller+worker when it was alone: a worker added later changes nothing.
        with.nodes
            .get_mut("k0s-controller-1")
            .unwrap()
            .attributes
            .insert(K0S_ROLE.into(), "controller+worker".into());
        assert_eq!(
            role_of(&with, "k0s-controller-1", NodeRole::Controller),
            NodeRole::ControllerWorker
        );
        assert_eq!(
            role_of(&with, "k0s-worker-1", NodeRole::Worker),
            NodeRole::Worker
        );
    }

    #[test]
    fn a_new_vm_and_a_vm_started_moments_ago_are_told_apart_from_the_rest() {
        let mut s = state(&[
            ("k0s-controller-1", "controller"),
            ("k0s-controller-2", "controller"),
            ("k0s-worker-1", "worker"),
            ("k0s-worker-2", "worker"),
        ]);
        for (name, now, installed) in [
            ("k0s-controller-1", "vm-a", Some("vm-a")),
            ("k0s-controller-2", "vm-new", Some("vm-old")),
            ("k0s-worker-1", "vm-c", Some("vm-c")),
            ("k0s-worker-2", "vm-d", None),
        ] {
            let n = s.nodes.get_mut(name).unwrap();
            n.vm_id = Some(now.into());
            if let Some(i) = installed {
                n.attributes.insert(K0S_VM_ID.into(), i.into());
            }
        }
        let now = chrono::Utc::now();
        let finished = |s: &mut DeploymentState, name: &str, ago: i64| {
            s.record_mut(&StepId::parse(&format!("create_vms/{name}")).unwrap())
                .finished_at = Some(now - chrono::Duration::seconds(ago));
        };
        finished(&mut s, "k0s-controller-1", 3600);
        finished(&mut s, "k0s-controller-2", 5);
        finished(&mut s, "k0s-worker-1", 5);
        finished(&mut s, "k0s-worker-2", 20);
        let fresh = std::time::Duration::from_secs(60);
        // install_k0s finished 10 s ago: worker-2 was started before it, worker-1 after.
        let installed = Some(now - chrono::Duration::seconds(10));
        let changes = vm_changes(&s, installed, fresh, now);
        assert_eq!(
            changes.into_iter().collect::<Vec<_>>(),
            [
                // Replaced wins over "just started": k0s is not on the new VM.
                ("k0s-controller-2".to_owned(), VmChange::Replaced),
                ("k0s-worker-1".to_owned(), VmChange::JustStarted),
            ]
        );
        // An hour later the worker is no longer "just started".
        let later = vm_changes(&s, installed, fresh, now + chrono::Duration::seconds(3600));
        assert_eq!(later.get("k0s-worker-1"), None);
        assert_eq!(later.get("k0s-controller-2"), Some(&VmChange::Replaced));
    }

    #[test]
    fn the_digest_moves_with_the_version_only() {
        assert_eq!(
            k0s_block_digest("v1.33.2+k0s.0"),
            k0s_block_digest("v1.33.2+k0s.0")
        );
        assert_ne!(
            k0s_block_digest("v1.33.2+k0s.0"),
            k0s_block_digest("v1.33.3+k0s.0")
        );
    }

    /// A recorded 1-controller/2-worker deployment with its tunnel and VNet addresses.
    fn recorded() -> DeploymentState {
        use k0rdent_ssh::wireguard::{PrivateKey, settings};
        let mut s = state(&[
            ("k0s-controller-1", "controller"),
            ("k0s-worker-1", "worker"),
            ("k0s-worker-2", "worker"),
        ]);
        s.settings
            .insert(settings::NETWORK.into(), "172.24.24.0/24".into());
        s.settings.insert(settings::PORT.into(), 51820.into());
        s.settings
            .insert(settings::INTERFACE.into(), "wgk0r".into());
        s.settings.insert(
            settings::HUB_PUBLIC_KEY.into(),
            PrivateKey::generate().public_key().to_base64().into(),
        );
        for (i, name) in ["k0s-controller-1", "k0s-worker-1", "k0s-worker-2"]
            .into_iter()
            .enumerate()
        {
            let n = s.nodes.get_mut(name).unwrap();
            n.tunnel_ip = Some(format!("172.24.24.{}", 11 + i).parse().unwrap());
            n.wireguard_public_key = Some(PrivateKey::generate().public_key().to_base64());
            let rec = s.record_mut(&StepId::parse(&format!("create_vms/{name}")).unwrap());
            rec.outputs =
                k0rdent_core::Outputs::new().with("private_ip", format!("10.0.1.{}", 4 + i));
        }
        s
    }

    #[test]
    fn a_leaving_node_is_reset_once_then_no_host_at_all() {
        let mut s = recorded();
        let leaving: BTreeSet<String> = ["k0s-worker-2".to_owned()].into();
        let dir = Path::new("/state");
        let names = |i: &K0sctlInput| -> Vec<(String, bool)> {
            i.hosts.iter().map(|h| (h.name.clone(), h.reset)).collect()
        };
        let all = k0sctl_input(&s, "v1.33.2+k0s.0", "k0rdent", dir, &BTreeSet::new()).unwrap();
        assert_eq!(kubelet_nodes(&all), ["k0s-worker-1", "k0s-worker-2"]);
        let i = k0sctl_input(&s, "v1.33.2+k0s.0", "k0rdent", dir, &leaving).unwrap();
        assert_eq!(
            names(&i),
            [
                ("k0s-controller-1".to_owned(), false),
                ("k0s-worker-1".to_owned(), false),
                ("k0s-worker-2".to_owned(), true),
            ]
        );
        assert_eq!(kubelet_nodes(&i), ["k0s-worker-1"]);
        s.nodes
            .get_mut("k0s-worker-2")
            .unwrap()
            .attributes
            .insert(K0S_RESET.into(), true.into());
        assert!(was_reset(&s, "k0s-worker-2"));
        let after = k0sctl_input(&s, "v1.33.2+k0s.0", "k0rdent", dir, &leaving).unwrap();
        assert_eq!(after, i.staying());
    }
}
