//! The hosts of one run, connected: rig's `Connect` and `Disconnect` phases over
//! [`super::remote`], what k0sctl knows about each host, and its choice of leader.

use std::io::Write;
use std::time::Duration;

use super::config::{Cluster, Host};
use super::facts::Facts;
use super::failure::Failure;
use super::remote::Remote;

/// One host, connected.
pub(crate) struct Node<'a> {
    pub(crate) host: &'a Host,
    pub(crate) remote: Remote,
    pub(crate) facts: Facts,
}

impl Node<'_> {
    pub(crate) fn is_controller(&self) -> bool {
        matches!(
            self.host.role.as_str(),
            "controller" | "controller+worker" | "single"
        )
    }

    pub(crate) fn runs_kubelet(&self) -> bool {
        self.host.role != "controller"
    }

    pub(crate) fn running(&self) -> bool {
        self.facts.running_version.is_some()
    }

    pub(crate) fn private_address(&self) -> &str {
        if self.host.private_address.is_empty() {
            &self.remote.address
        } else {
            &self.host.private_address
        }
    }

    pub(crate) fn node_name(&self) -> String {
        if self.host.hostname.is_empty() {
            self.facts.hostname.clone()
        } else {
            self.host.hostname.to_lowercase()
        }
    }

    pub(crate) fn member_line(&self) -> String {
        format!(
            "{} https://{}:2380",
            self.node_name(),
            self.private_address()
        )
    }

    pub(crate) fn install_args(&self) -> Vec<String> {
        let mut args = match self.host.role.as_str() {
            "worker" => vec!["worker".to_owned()],
            "controller+worker" => {
                let mut a = vec!["controller".to_owned(), "--enable-worker".to_owned()];
                if self.host.no_taints {
                    a.push("--no-taints".into());
                }
                a
            }
            "single" => vec!["controller".to_owned(), "--single".to_owned()],
            _ => vec!["controller".to_owned()],
        };
        args.extend(self.host.install_flags.iter().cloned());
        args
    }
}

/// Connects every host (rig's `Connect` phase); the returned nodes are disconnected by
/// [`disconnect_all`].
///
/// # Errors
/// The first host that cannot be reached; hosts already connected are disconnected.
pub(crate) fn connect_all<'a>(
    cluster: &'a Cluster,
    root: &str,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<Vec<Node<'a>>, Failure> {
    let mut nodes: Vec<Node<'a>> = Vec::new();
    for host in &cluster.spec.hosts {
        let Some(conn) = &host.open_ssh else {
            disconnect_all(&mut nodes);
            return Err(Failure::Config(
                "the stand-in k0sctl connects only `openSSH` hosts".into(),
            ));
        };
        let mut remote = Remote::new(conn, root);
        if let Err(e) = remote.connect_within(timeout) {
            disconnect_all(&mut nodes);
            return Err(e);
        }
        info(out, &format!("{}: connected", remote.name));
        nodes.push(Node {
            host,
            remote,
            facts: Facts::default(),
        });
    }
    Ok(nodes)
}

/// Closes every control master (k0sctl's `Disconnect` phase).
pub(crate) fn disconnect_all(nodes: &mut [Node<'_>]) {
    for n in nodes {
        n.remote.disconnect();
    }
}

/// One log line, as k0sctl logs progress.
pub(crate) fn info(out: &mut dyn Write, msg: &str) {
    let _ = writeln!(out, "level=info msg={msg:?}");
}

/// k0sctl's `K0sLeader`: the first controller that is not reset and runs k0s, else the first
/// controller.
pub(crate) fn leader_index(nodes: &[Node<'_>]) -> Option<usize> {
    nodes
        .iter()
        .position(|n| {
            n.is_controller() && !n.host.reset && n.facts.binary_version.is_some() && n.running()
        })
        .or_else(|| nodes.iter().position(Node::is_controller))
}
