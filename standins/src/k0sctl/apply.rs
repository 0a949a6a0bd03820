//! `k0sctl apply`: the phases of k0sctl's `action/apply.go` (v0.32.2) that decide whether a
//! cluster is changed, done over the real `ssh` to every host, with the stand-in `k0s` on the
//! nodes.
//!
//! Kept from k0sctl: every host is connected first (an unreachable host or an unknown host
//! key stops the run before anything changes); k0s facts and refusals
//! ([`super::facts::gather`]); the etcd check for new controllers
//! (`validate_etcd_members.go`); the binary installed or upgraded; `/etc/k0s/k0s.yaml`
//! written on controllers and a running controller restarted when it changed
//! (`configure_k0s.go`); the leader initialised, then the other controllers, then the workers
//! (`k0s install`, then the service started); upgrades restart the service; `reset: true`
//! hosts reset last. Left out: OS detection, file uploads, hooks, manifests, join tokens,
//! draining.

use std::io::Write;
use std::time::Duration;

use super::config::{Cluster, Host};
use super::facts::{self, Facts};
use super::failure::Failure;
use super::node_scripts;
use super::register::NodeApi;
use super::remote::Remote;

/// The k0s version used when the configuration names none and nothing runs yet (real k0sctl
/// asks GitHub for the latest).
pub const DEFAULT_K0S_VERSION: &str = "v1.33.4+k0s.0";

/// How `apply` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// `--force`: k0sctl's overrides (a stopped service, an etcd member left behind).
    pub force: bool,
    /// Node-side path prefix ([`super::node_scripts`]) passed to every host; empty leaves
    /// each node's own `K0RDENT_STANDIN_ROOT` (e.g. from sshd's `SetEnv`), else `/`.
    pub root: String,
    /// Sleep between `k0s install` and the service start on each host.
    pub pause_after_install: Option<Duration>,
    /// Where to register Kubernetes nodes, if anywhere.
    pub api: Option<NodeApi>,
    /// How long to keep retrying a host that cannot be reached (k0sctl: 10 minutes).
    pub connect_timeout: Duration,
}

/// One host, connected.
pub(crate) struct Node<'a> {
    pub(crate) host: &'a Host,
    pub(crate) remote: Remote,
    pub(crate) facts: Facts,
}

impl Node<'_> {
    fn is_controller(&self) -> bool {
        matches!(
            self.host.role.as_str(),
            "controller" | "controller+worker" | "single"
        )
    }

    fn runs_kubelet(&self) -> bool {
        self.host.role != "controller"
    }

    fn running(&self) -> bool {
        self.facts.running_version.is_some()
    }

    fn private_address(&self) -> &str {
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

    fn member_line(&self) -> String {
        format!(
            "{} https://{}:2380",
            self.node_name(),
            self.private_address()
        )
    }

    fn install_args(&self) -> Vec<String> {
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

pub(crate) fn info(out: &mut dyn Write, msg: &str) {
    let _ = writeln!(out, "level=info msg={msg:?}");
}

fn with_v(version: &str) -> String {
    if version.starts_with('v') {
        version.to_owned()
    } else {
        format!("v{version}")
    }
}

/// Runs `k0sctl apply` for `cluster`.
///
/// # Errors
/// The first failure, in k0sctl's words where k0sctl has them.
pub fn apply(cluster: &Cluster, opts: &ApplyOptions, out: &mut dyn Write) -> Result<(), Failure> {
    let mut nodes = connect_all(cluster, &opts.root, opts.connect_timeout, out)?;
    let result = apply_connected(cluster, opts, &mut nodes, out);
    disconnect_all(&mut nodes);
    result
}

fn apply_connected(
    cluster: &Cluster,
    opts: &ApplyOptions,
    nodes: &mut [Node<'_>],
    out: &mut dyn Write,
) -> Result<(), Failure> {
    for n in nodes.iter_mut() {
        n.facts = facts::gather(&n.remote, n.host, opts.force)?;
    }
    let leader = leader_index(nodes).ok_or_else(|| {
        Failure::Config("configuration validation failed: no controller hosts".into())
    })?;
    let version = match &cluster.spec.k0s.version {
        Some(v) => with_v(&v.to_string()),
        None => nodes[leader]
            .facts
            .running_version
            .clone()
            .unwrap_or_else(|| DEFAULT_K0S_VERSION.to_owned()),
    };
    validate_etcd_members(cluster, opts, nodes, leader, out)?;

    let k0s = node_scripts::k0s_executable(&version);
    let config = serde_yaml::to_string(&cluster.spec.k0s.config)
        .map_err(|e| Failure::Config(format!("failed to marshal the k0s configuration: {e}")))?;
    let mut restart = vec![false; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        if n.host.reset {
            continue;
        }
        if n.facts.binary_version.as_deref() != Some(version.as_str()) {
            info(out, &format!("{}: installing k0s {version}", n.remote.name));
            n.remote.sudo_script(
                "install k0s binary",
                &node_scripts::install_binary(&k0s),
                &[],
            )?;
            restart[i] = n.running();
        }
        if n.is_controller() {
            let changed =
                n.remote
                    .sudo_script("configure k0s", &node_scripts::configure(&config), &[])?;
            if changed.trim() == "changed" && n.running() {
                info(
                    out,
                    &format!("{}: k0s configuration changed", n.remote.name),
                );
                restart[i] = true;
            }
        }
    }

    // InitializeK0s, InstallControllers, InstallWorkers.
    let mut order: Vec<usize> = vec![leader];
    order.extend((0..nodes.len()).filter(|&i| i != leader && nodes[i].is_controller()));
    order.extend((0..nodes.len()).filter(|&i| !nodes[i].is_controller()));
    let mut members = String::new();
    for &i in &order {
        let n = &nodes[i];
        if n.host.reset || n.running() {
            continue;
        }
        if n.facts.service.is_none() {
            info(out, &format!("{}: installing k0s service", n.remote.name));
            let args = n.install_args();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            n.remote
                .sudo_script("install k0s service", &node_scripts::install(), &refs)?;
            if let Some(pause) = opts.pause_after_install {
                info(
                    out,
                    &format!("{}: pausing {pause:?} after install", n.remote.name),
                );
                std::thread::sleep(pause);
            }
        }
        info(out, &format!("{}: starting k0s", n.remote.name));
        n.remote
            .sudo_script("start k0s service", &node_scripts::start(), &[])?;
        if n.is_controller() && n.host.role != "single" {
            let line = n.member_line();
            let l = &nodes[leader].remote;
            l.sudo_script("add etcd member", &node_scripts::add_member(), &[&line, ""])?;
            if i != leader {
                if members.is_empty() {
                    members = l.sudo_script(
                        "read etcd members",
                        "cat \"${K0RDENT_STANDIN_ROOT:-}/var/lib/k0s/etcd-members\"\n",
                        &[],
                    )?;
                }
                n.remote.sudo_script(
                    "join etcd",
                    &node_scripts::add_member(),
                    &[&line, &members],
                )?;
            }
        }
    }

    // UpgradeControllers, UpgradeWorkers, and ConfigureK0s's restarts.
    for (i, n) in nodes.iter().enumerate() {
        if restart[i] {
            info(out, &format!("{}: restarting k0s service", n.remote.name));
            n.remote
                .sudo_script("restart k0s service", &node_scripts::restart(), &[])?;
        }
    }

    // ResetWorkers, then ResetControllers.
    let resets = (0..nodes.len())
        .filter(|&i| nodes[i].host.reset && !nodes[i].is_controller())
        .chain((0..nodes.len()).filter(|&i| nodes[i].host.reset && nodes[i].is_controller()));
    for i in resets.collect::<Vec<_>>() {
        let n = &nodes[i];
        if n.facts.binary_version.is_none() {
            continue;
        }
        info(out, &format!("{}: resetting k0s", n.remote.name));
        if let Some(api) = &opts.api {
            api.delete_node(&n.node_name())?;
        }
        if n.is_controller() && i != leader && nodes[leader].running() {
            let addr = n.private_address().to_owned();
            let _ = nodes[leader].remote.sudo_script(
                "leave etcd",
                &node_scripts::etcd_leave(),
                &[&addr],
            );
        }
        n.remote
            .sudo_script("reset k0s", &node_scripts::reset(), &[])?;
    }

    if let Some(api) = &opts.api {
        for n in nodes.iter().filter(|n| !n.host.reset && n.runs_kubelet()) {
            let name = n.node_name();
            if api.ensure_ready(&name, n.private_address(), &n.host.role, &version)? {
                info(out, &format!("{}: registered node {name}", n.remote.name));
            }
        }
    }
    info(out, "k0s cluster version is now installed");
    Ok(())
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

fn internal_etcd(cluster: &Cluster) -> bool {
    let storage = cluster
        .spec
        .k0s
        .config
        .as_ref()
        .and_then(|c| c.get("spec"))
        .and_then(|s| s.get("storage"));
    match storage.and_then(|s| s.get("type")).and_then(|t| t.as_str()) {
        None | Some("") => true,
        Some("etcd") => storage
            .and_then(|s| s.get("etcd"))
            .and_then(|e| e.get("externalCluster"))
            .is_none(),
        Some(_) => false,
    }
}

fn validate_etcd_members(
    cluster: &Cluster,
    opts: &ApplyOptions,
    nodes: &[Node<'_>],
    leader: usize,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let l = &nodes[leader];
    if !l.running() || l.host.role == "single" || !internal_etcd(cluster) {
        return Ok(());
    }
    let members = facts::etcd_members(&l.remote)?;
    for n in nodes.iter().filter(|n| n.is_controller() && !n.running()) {
        let addr = n.private_address();
        if !members.iter().any(|m| m == addr) {
            continue;
        }
        let h = &n.remote.name;
        if opts.force {
            info(
                out,
                &format!("{h}: force used, running 'k0s etcd leave' for the host"),
            );
            l.remote
                .sudo_script("leave etcd", &node_scripts::etcd_leave(), &[addr])
                .map_err(|e| Failure::Refused(format!(
                    "controller {h} is listed as an existing etcd member but k0s is not found installed on it, the host may have been replaced. attempted etcd leave for the address {addr} but it failed: {e}"
                )))?;
            continue;
        }
        return Err(Failure::Refused(format!(
            "controller {h} is listed as an existing etcd member but k0s is not found installed on it, the host may have been replaced. check the host and use `k0s etcd leave --peer-address {addr} on a controller or re-run apply with --force"
        )));
    }
    Ok(())
}
