//! k0sctl's `GatherK0sFacts` for one host: what is installed and running, and the refusals
//! k0sctl makes from it (`phase/gather_k0s_facts.go`, v0.32.2).

use serde::Deserialize;

use super::config::Host;
use super::failure::Failure;
use super::node_scripts;
use super::remote::Remote;

/// `k0s status -o json` as k0sctl decodes it (its `k0sstatus`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct K0sStatus {
    /// The running k0s's version.
    #[serde(default)]
    pub version: Option<String>,
    /// Its process id; 0 means not running.
    #[serde(default)]
    pub pid: i64,
    /// `controller` or `worker` (`server` on old k0s).
    #[serde(default)]
    pub role: String,
    /// A controller that also runs a kubelet.
    #[serde(default)]
    pub workloads: bool,
    /// Its command line; `--single=true` marks a single-node controller.
    #[serde(default)]
    pub args: Vec<String>,
}

impl K0sStatus {
    /// The role in k0sctl's words (`controller+worker`, `single`, ...).
    pub fn k0sctl_role(&self) -> String {
        match self.role.as_str() {
            "server" => "controller".into(),
            "server+worker" => "controller+worker".into(),
            "controller" if self.workloads => {
                if self.args.iter().any(|a| a == "--single=true") {
                    "single".into()
                } else {
                    "controller+worker".into()
                }
            }
            other => other.to_owned(),
        }
    }
}

/// What one host has.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The node's host name (the Kubernetes node name unless the config overrides it).
    pub hostname: String,
    /// `k0s version` of the installed binary.
    pub binary_version: Option<String>,
    /// The k0s service unit found, as a node-side path.
    pub service: Option<String>,
    /// The running k0s's version (`K0sRunningVersion`), set only when `status` says it runs.
    pub running_version: Option<String>,
}

/// Gathers one host's facts and applies k0sctl's checks, in its order.
///
/// # Errors
/// k0sctl's refusals: a service installed but k0s not running ("k0s doesn't appear to be
/// running but has been installed as a service at ..."), k0s running without a service, a
/// role change.
pub fn gather(remote: &Remote, host: &Host, force: bool) -> Result<Facts, Failure> {
    let out = remote.sudo_script("gather k0s facts", &node_scripts::probe(), &[])?;
    let mut facts = Facts::default();
    let mut status_json = None;
    for line in out.lines() {
        if let Some(v) = line.strip_prefix("hostname=") {
            facts.hostname = v.trim().to_lowercase();
        } else if let Some(v) = line.strip_prefix("binary=") {
            facts.binary_version = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("service=") {
            facts.service = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("status=") {
            status_json = Some(v.to_owned());
        }
    }
    if facts.binary_version.is_none() {
        // "no 'k0s' binary in PATH": nothing more is looked at.
        return Ok(facts);
    }
    let Some(json) = status_json else {
        return match &facts.service {
            None => Ok(facts),
            Some(_) if force => Ok(facts),
            Some(svc) => Err(Failure::Refused(format!(
                "k0s doesn't appear to be running but has been installed as a service at {svc} - please remove it or start the service"
            ))),
        };
    };
    if facts.service.is_none() {
        return Err(Failure::Refused(
            "k0s is running but has not been installed as a service, possibly a non-k0sctl managed host or a broken installation - you can try to reset the host by setting `reset: true` on it".into(),
        ));
    }
    // An undecodable status is only a warning in k0sctl: the host counts as not running.
    let Ok(status) = serde_json::from_str::<K0sStatus>(&json) else {
        return Ok(facts);
    };
    if status.version.is_none() || status.role.is_empty() || status.pid == 0 {
        return Ok(facts);
    }
    let running_role = status.k0sctl_role();
    if running_role != host.role {
        let h = &remote.name;
        let role = &host.role;
        if !host.reset {
            return Err(Failure::Refused(format!(
                "{h}: is configured as k0s {role} but is already running as {running_role} - role change is not supported"
            )));
        }
        if !force {
            return Err(Failure::Refused(format!(
                "{h}: is configured as k0s {role} but is already running as {running_role} - role change is not supported, use --force to ignore the mismatch during reset"
            )));
        }
    }
    facts.running_version = status.version;
    Ok(facts)
}

/// The etcd members' peer hosts as k0sctl's `listEtcdMembers` reads them from
/// `k0s etcd member-list` on the leader.
///
/// # Errors
/// [`Failure::Remote`] when the command fails, [`Failure::Refused`] when its output is not
/// the JSON k0sctl expects.
pub fn etcd_members(leader: &Remote) -> Result<Vec<String>, Failure> {
    let out = leader.sudo_script("list etcd members", &node_scripts::member_list(), &[])?;
    let value: serde_json::Value = serde_json::from_str(out.trim())
        .map_err(|e| Failure::Refused(format!("failed to decode etcd member-list output: {e}")))?;
    let mut hosts = Vec::new();
    if let Some(members) = value.get("members").and_then(|m| m.as_object()) {
        for url in members.values().filter_map(|u| u.as_str()) {
            let authority = url.split("://").nth(1).unwrap_or(url);
            let authority = authority.split('/').next().unwrap_or(authority);
            let host = match authority.rsplit_once(':') {
                Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
                None => {
                    return Err(Failure::Refused(format!(
                        "failed to split etcd member URL: address {authority}: missing port in address"
                    )));
                }
            };
            hosts.push(host.to_owned());
        }
    }
    Ok(hosts)
}
