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

use super::config::Cluster;
use super::facts;
use super::failure::Failure;
use super::node::{Node, connect_all, disconnect_all, info, leader_index};
use super::node_scripts;
use super::register::NodeApi;
use super::validate::{validate_etcd_members, validate_facts, with_v};

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
    /// `--disable-downgrade-check`.
    pub skip_downgrade_check: bool,
}

/// Runs `k0sctl apply` for `cluster`.
///
/// # Errors
/// The first failure, in k0sctl's words where k0sctl has them.
pub fn apply(cluster: &Cluster, opts: &ApplyOptions, out: &mut dyn Write) -> Result<(), Failure> {
    let mut nodes = connect_all(cluster, &opts.root, opts.connect_timeout, out)?;
    // ValidateHosts (validate_hosts.go), the first check after connecting.
    let controllers = cluster
        .spec
        .hosts
        .iter()
        .filter(|h| h.role.starts_with("controller") || h.role == "single");
    if controllers.clone().all(|h| h.reset) {
        disconnect_all(&mut nodes);
        return Err(Failure::Config(
            "all controllers are marked to be reset - this will break the cluster. use `k0sctl reset` instead if that is intentional".into(),
        ));
    }
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
    validate_facts(cluster, opts.skip_downgrade_check, nodes, leader)?;
    validate_etcd_members(cluster, opts.force, nodes, leader, out)?;

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
