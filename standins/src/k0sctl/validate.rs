//! k0sctl's checks between gathering facts and changing anything: `ValidateFacts` and
//! `ValidateEtcdMembers` (v0.32.2).

use std::io::Write;

use super::K0sVersion;
use super::config::Cluster;
use super::facts;
use super::failure::Failure;
use super::node::{Node, info};
use super::node_scripts;

/// A k0s version as k0s prints it, with its leading `v`.
pub(crate) fn with_v(version: &str) -> String {
    if version.starts_with('v') {
        version.to_owned()
    } else {
        format!("v{version}")
    }
}

/// k0sctl's `ValidateFacts` (`validate_facts.go`): no downgrade of a running cluster, and its
/// node-local load balancing check for `single` hosts, which digs `network` at the top of
/// `spec.k0s.config` (not under `spec`) exactly as k0sctl does.
pub(crate) fn validate_facts(
    cluster: &Cluster,
    skip_downgrade_check: bool,
    nodes: &[Node<'_>],
    leader: usize,
) -> Result<(), Failure> {
    if let (false, Some(running), Some(want)) = (
        skip_downgrade_check,
        &nodes[leader].facts.running_version,
        &cluster.spec.k0s.version,
    ) && let Ok(r) = K0sVersion::parse(running)
        && want.less_than(&r)
    {
        return Err(Failure::Refused(format!(
            "can't perform a downgrade: {} > {}",
            with_v(running),
            with_v(&want.to_string())
        )));
    }
    let nllb = cluster
        .spec
        .k0s
        .config
        .as_ref()
        .and_then(|c| c.get("network"))
        .and_then(|n| n.get("nodeLocalLoadBalancing"))
        .and_then(|n| n.get("enabled"))
        .and_then(serde_yaml::Value::as_bool)
        == Some(true);
    if let Some(single) = nodes.iter().find(|n| n.host.role == "single")
        && nllb
    {
        return Err(Failure::Refused(format!(
            "spec.k0s.config.network.nodeLocalLoadBalancing.enabled cannot be true when {} has role 'single'",
            single.remote.name
        )));
    }
    Ok(())
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

/// k0sctl's `ValidateEtcdMembers`: a new controller whose address etcd still lists is
/// refused (with `--force`, `k0s etcd leave` is run for it on the leader).
pub(crate) fn validate_etcd_members(
    cluster: &Cluster,
    force: bool,
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
        if force {
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
