//! Nodes the configuration no longer has. A smaller count plans their removal: `install_k0s`
//! has k0sctl drain and reset them (`reset: true`; a controller also leaves etcd), then
//! `remove_nodes` deletes their VMs and forgets them. Only what would leave no node able to
//! run workloads is refused before anything runs.

use std::collections::BTreeSet;

use k0rdent_core::role::NodeRole;
use k0rdent_core::state::DeploymentState;
use k0rdent_ssh::wireguard::VmPresence;

use super::k0s::hosts::role_of;
use super::prepare::vm_presence;
use crate::config::Loaded;
use crate::error::CliError;

/// The recorded nodes whose VM was ever created (their `create_vms` item ever started) and that the
/// configuration no longer lists: the nodes that leave.
pub fn removed_nodes(state: &DeploymentState, loaded: &Loaded) -> BTreeSet<String> {
    let VmPresence::Known(with_vms) = vm_presence(state) else {
        return BTreeSet::new();
    };
    let wanted: Vec<String> = loaded.config.nodes().into_iter().map(|n| n.name).collect();
    with_vms
        .into_iter()
        .filter(|name| !wanted.contains(name))
        .collect()
}

/// Refuses a removal that would leave no node running a kubelet: roles are recorded once
/// and never change, so pure controllers stay unschedulable when the last worker goes.
///
/// # Errors
/// A usage error naming the nodes, with the remedy.
pub fn refuse_removal(state: &DeploymentState, loaded: &Loaded) -> Result<(), CliError> {
    let removed = removed_nodes(state, loaded);
    if removed.is_empty() {
        return Ok(());
    }
    let schedulable = loaded
        .config
        .nodes()
        .into_iter()
        .any(|n| role_of(state, &n.name, n.role) != NodeRole::Controller);
    if schedulable {
        return Ok(());
    }
    let names: Vec<&str> = removed.iter().map(String::as_str).collect();
    Err(CliError::usage(
        format!(
            "removing {} (no longer in {}) would leave no node that runs workloads: the \
             controllers were installed as `controller` (no kubelet), and a node's k0s role \
             never changes",
            names.join(", "),
            loaded.path.display(),
        ),
        "keep at least one worker in cluster.workers.count, or `k0rdent reset` the deployment \
         and deploy the smaller one (with no workers its controllers are installed as \
         controller+worker)",
    ))
}
