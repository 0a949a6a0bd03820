//! Nodes the configuration no longer has. Removing a node from a running cluster takes a
//! drain and a `k0sctl` reset of that host (`reset: true`), an etcd leave for a controller,
//! then the VM's deletion, in that order; until that is built, a smaller count is refused
//! before anything runs instead of leaving a VM and a cluster member behind.

use k0rdent_core::state::DeploymentState;
use k0rdent_ssh::wireguard::VmPresence;

use super::prepare::vm_presence;
use crate::config::Loaded;
use crate::error::CliError;

/// The recorded nodes whose VM was ever created ([`vm_presence`]) and that the
/// configuration no longer lists.
pub fn removed_nodes(state: &DeploymentState, loaded: &Loaded) -> Vec<String> {
    let VmPresence::Known(with_vms) = vm_presence(state) else {
        return Vec::new();
    };
    let wanted: Vec<String> = loaded.config.nodes().into_iter().map(|n| n.name).collect();
    with_vms
        .into_iter()
        .filter(|name| !wanted.contains(name))
        .collect()
}

/// Refuses a configuration that drops nodes with VMs, naming them and the way back.
///
/// # Errors
/// A usage error naming the nodes, with the remedy.
pub fn refuse_removal(state: &DeploymentState, loaded: &Loaded) -> Result<(), CliError> {
    let removed = removed_nodes(state, loaded);
    if removed.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(
        format!(
            "{} {} a VM but {} no longer in {}; removing nodes from a running cluster (drain, \
             k0sctl reset, etcd leave, VM deletion) is not supported yet",
            removed.join(", "),
            if removed.len() == 1 { "has" } else { "have" },
            if removed.len() == 1 { "is" } else { "are" },
            loaded.path.display(),
        ),
        "raise cluster.controllers.count / cluster.workers.count back so that these nodes are \
         listed again, or `k0rdent reset` the deployment and deploy the smaller one",
    ))
}
