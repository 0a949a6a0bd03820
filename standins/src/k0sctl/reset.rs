//! `k0sctl reset` (`action/reset.go`, v0.32.2): refused without `--force` when stdout is not
//! a terminal (k0sctl would prompt); every host connected and its k0s facts gathered as for
//! `apply`, then the workers, the other controllers and the leader last are reset — k0s
//! stopped, `k0s reset`, the binary and configuration removed. No drain, no node deletion,
//! no etcd leave: the whole cluster goes.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::config::Cluster;
use super::facts;
use super::failure::Failure;
use super::node::{Node, connect_all, disconnect_all, info};
use super::node_scripts;

/// How `reset` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct ResetOptions {
    /// `--force`: no confirmation asked.
    pub force: bool,
    /// Node-side path prefix ([`super::node_scripts`]).
    pub root: String,
    /// How long to keep retrying a host that cannot be reached.
    pub connect_timeout: Duration,
}

/// Runs `k0sctl reset` for `cluster`.
///
/// # Errors
/// The first failure, in k0sctl's words where k0sctl has them.
pub fn reset(cluster: &Cluster, opts: &ResetOptions, out: &mut dyn Write) -> Result<(), Failure> {
    if !opts.force && !std::io::stdout().is_terminal() {
        return Err(Failure::Refused("reset requires --force".into()));
    }
    let mut cluster = cluster.clone();
    for h in &mut cluster.spec.hosts {
        h.reset = true;
    }
    let mut nodes = connect_all(&cluster, &opts.root, opts.connect_timeout, out)?;
    let result = reset_connected(&mut nodes, opts, out);
    disconnect_all(&mut nodes);
    result
}

fn reset_connected(
    nodes: &mut [Node<'_>],
    opts: &ResetOptions,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    for n in nodes.iter_mut() {
        n.facts = facts::gather(&n.remote, n.host, opts.force)?;
    }
    // With every host reset, `K0sLeader` falls back to the first controller.
    let leader = nodes.iter().position(Node::is_controller);
    let order = (0..nodes.len())
        .filter(|&i| !nodes[i].is_controller())
        .chain((0..nodes.len()).filter(|&i| nodes[i].is_controller() && Some(i) != leader))
        .chain(leader);
    for i in order.collect::<Vec<_>>() {
        let n = &nodes[i];
        if n.facts.binary_version.is_none() {
            continue;
        }
        info(out, &format!("{}: resetting k0s", n.remote.name));
        n.remote
            .sudo_script("reset k0s", &node_scripts::reset(), &[])?;
    }
    info(out, "k0s cluster reset");
    Ok(())
}
