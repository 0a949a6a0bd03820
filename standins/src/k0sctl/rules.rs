//! The checks k0sctl runs on a decoded configuration before it connects, in its order:
//! `Cluster.Validate` (`cluster.go`), `Spec.Validate`, `Hosts.Validate` (`hosts.go`),
//! `Host.Validate` (`host.go`, which first runs go-playground's validator over rig's
//! connection tags) and `K0s.Validate` (`k0s.go`), read at k0sctl 0.19.0 and 0.32.2 where
//! they agree.
//!
//! Kept as k0sctl has it, including one quirk: `Hosts.Validate` checks each host (role,
//! `privateAddress`, `noTaints`, connection) only when there are at least two hosts. With
//! one host only "is there a controller" is checked, so a lone `controller` with
//! `noTaints: true` passes.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::config::{Cluster, Host, K0s};
use super::k0s_version::K0sVersion;

const API_VERSION: &str = "k0sctl.k0sproject.io/v1beta1";
const ROLES: [&str; 4] = ["controller", "worker", "controller+worker", "single"];

/// Runs every check; the first failure is k0sctl's message.
///
/// # Errors
/// The message k0sctl would print after "configuration validation failed:".
pub fn validate(c: &Cluster) -> Result<(), String> {
    match c.api_version.as_str() {
        "" => return Err("apiVersion: cannot be blank".into()),
        API_VERSION => {}
        _ => return Err(format!("apiVersion: must equal {API_VERSION}")),
    }
    match c.kind.as_str() {
        "" => return Err("kind: cannot be blank".into()),
        "Cluster" | "cluster" => {}
        _ => return Err("kind: must equal Cluster".into()),
    }
    hosts(&c.spec.hosts).map_err(|e| format!("spec: (hosts: {e}.)"))?;
    k0s(&c.spec.k0s).map_err(|e| format!("spec: (k0s: {e}.)"))
}

fn hosts(hosts: &[Host]) -> Result<(), String> {
    if hosts.is_empty() {
        return Err("cannot be blank".into());
    }
    if hosts.len() > 1 {
        let mut seen = BTreeSet::new();
        for (i, h) in hosts.iter().enumerate() {
            host(h).map_err(|e| format!("host #{}: {e}", i + 1))?;
            let name = connection_name(h);
            if h.role == "single" {
                return Err(format!(
                    "{} hosts defined but includes a host with role 'single': {name}",
                    hosts.len()
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(format!("{name}: is not unique"));
            }
        }
    }
    let controllers = hosts
        .iter()
        .filter(|h| {
            matches!(
                h.role.as_str(),
                "controller" | "controller+worker" | "single"
            )
        })
        .count();
    if controllers < 1 {
        return Err("no hosts with a controller role defined".into());
    }
    Ok(())
}

/// rig's `Connection.String()`, which k0sctl compares for uniqueness. rig picks the client
/// in the order WinRM, localhost, SSH, OpenSSH, and falls back to localhost.
fn connection_name(h: &Host) -> String {
    if let Some(w) = &h.win_rm {
        let port = if w.port == 0 { 5985 } else { w.port };
        return format!("[winrm] {}:{port}", w.address);
    }
    if h.localhost.is_some() {
        return "[local] localhost".into();
    }
    if let Some(s) = &h.ssh {
        return format!("[ssh] {}", join_host_port(&s.address, ssh_port(s.port)));
    }
    if let Some(o) = &h.open_ssh {
        let user_host = match &o.user {
            Some(u) => format!("{u}@{}", o.address),
            None => o.address.clone(),
        };
        return match o.port {
            Some(p) => format!("[OpenSSH] {user_host}:{p}"),
            None => format!("[OpenSSH] {user_host}"),
        };
    }
    "[local] localhost".into()
}

fn ssh_port(port: i64) -> i64 {
    // creasty/defaults fills zero values, so an explicit 0 is 22 as well.
    if port == 0 { 22 } else { port }
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn host(h: &Host) -> Result<(), String> {
    connection(h)?;
    if !ROLES.contains(&h.role.as_str()) {
        return Err(format!("role: unknown role {}.", h.role));
    }
    if !h.private_address.is_empty() && h.private_address.parse::<IpAddr>().is_err() {
        return Err("privateAddress: must be a valid IP address.".into());
    }
    if h.no_taints && h.role != "controller+worker" {
        return Err("noTaints: noTaints can only be true for controller+worker role.".into());
    }
    if let Some(f) = h.install_flags.iter().find(|f| !balanced_quotes(f)) {
        return Err(format!("installFlags: unbalanced quotes in {f}."));
    }
    Ok(())
}

/// go-playground's validator over rig's struct tags: `ssh` address `required,
/// hostname_rfc1123|ip`, port `gt=0,lte=65535` (after the default 22); `openSSH` address
/// `required`; `localhost.enabled` `eq=true`; `winRM` address like ssh's, user `gt=2`.
fn connection(h: &Host) -> Result<(), String> {
    if let Some(s) = &h.ssh {
        ssh_address("SSH.Address", &s.address)?;
        let port = ssh_port(s.port);
        if !(1..=65535).contains(&port) {
            return Err(format!(
                "Key: 'Host.Connection.SSH.Port' Error:Field validation for 'Port' failed ({port})"
            ));
        }
        if let Some(b) = &s.bastion {
            ssh_address("SSH.Bastion.Address", &b.address)?;
        }
    }
    if h.open_ssh.as_ref().is_some_and(|o| o.address.is_empty()) {
        return Err("Key: 'Host.Connection.OpenSSH.Address' Error:Field validation for 'Address' failed on the 'required' tag".into());
    }
    if h.localhost.as_ref().is_some_and(|l| !l.enabled) {
        return Err("Key: 'Host.Connection.Localhost.Enabled' Error:Field validation for 'Enabled' failed on the 'required' tag".into());
    }
    if let Some(w) = &h.win_rm {
        ssh_address("WinRM.Address", &w.address)?;
        if !w.user.is_empty() && w.user.chars().count() <= 2 {
            return Err("Key: 'Host.Connection.WinRM.User' Error:Field validation for 'User' failed on the 'gt' tag".into());
        }
    }
    Ok(())
}

fn ssh_address(field: &str, address: &str) -> Result<(), String> {
    if address.is_empty() {
        return Err(format!(
            "Key: 'Host.Connection.{field}' Error:Field validation for 'Address' failed on the 'required' tag"
        ));
    }
    if address.parse::<IpAddr>().is_ok() || hostname_rfc1123(address) {
        return Ok(());
    }
    Err(format!(
        "Key: 'Host.Connection.{field}' Error:Field validation for 'Address' failed on the 'hostname_rfc1123|ip' tag"
    ))
}

/// go-playground's `hostname_rfc1123`: dot-separated labels of 1 to 63 letters, digits and
/// hyphens, each starting with a letter or digit.
fn hostname_rfc1123(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        (1..=63).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

/// k0sctl's `validateBalancedQuotes`: an even number of unescaped `'` and of `"`.
fn balanced_quotes(s: &str) -> bool {
    let (mut single, mut double) = (0, 0);
    let mut prev = None;
    for c in s.chars() {
        if prev != Some('\\') {
            match c {
                '\'' => single += 1,
                '"' => double += 1,
                _ => {}
            }
        }
        prev = Some(c);
    }
    single % 2 == 0 && double % 2 == 0
}

fn k0s(k: &K0s) -> Result<(), String> {
    let min = K0sVersion::parse("0.11.0-rc1")?;
    let dynamic_since = K0sVersion::parse("1.22.2+k0s.2")?;
    if let Some(v) = &k.version {
        if v.less_than(&min) {
            return Err(format!("version: minimum supported k0s version is {min}"));
        }
        if k.dynamic_config && v.less_than(&dynamic_since) {
            return Err(format!(
                "dynamicConfig: dynamic config only available since k0s version {dynamic_since}"
            ));
        }
    }
    if !k.version_channel.is_empty() && !["stable", "latest"].contains(&k.version_channel.as_str())
    {
        return Err("versionChannel: must be a valid value".into());
    }
    Ok(())
}
