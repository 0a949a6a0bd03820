//! Node checks over SSH, usable as gates: cloud-init finished (and how), `wg0` up with the
//! node's tunnel address, sudo works without a password.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::{
    gate::{Deadline, Gate, GateContext, GateVerdict, WaitBudget},
    state::DeploymentState,
};
use serde::Serialize;

use crate::ssh::{NodeTarget, PinStore, SshConnector, SshError, SshSession};
use crate::wireguard::spec::NODE_INTERFACE;

const RC: &str = "__K0RDENT_RC=";
const NO_CLOUD_INIT: &str = "__K0RDENT_NO_CLOUD_INIT";
const BOOT_FINISHED: &str = "__K0RDENT_BOOT_FINISHED";

/// Where cloud-init marks the end of the boot (checked when the status command is missing).
pub const BOOT_FINISHED_MARKER: &str = "/var/lib/cloud/instance/boot-finished";

/// cloud-init's result on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cloud_init", rename_all = "snake_case")]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub enum CloudInitStatus {
    /// `status: done` with neither errors nor recoverable errors.
    Done,
    /// Finished with recoverable errors (warnings, deprecations).
    Degraded {
        /// One `level: message` line per recoverable error.
        warnings: Vec<String>,
    },
    /// Finished (or stopped) with errors.
    Error { errors: Vec<String> },
    /// Still running (the gate keeps waiting).
    Running,
    /// Not started yet (the gate keeps waiting).
    NotStarted,
    /// Disabled on the node.
    Disabled,
    /// The status command is missing or unusable, but the boot-finished marker exists.
    BootFinished {
        /// Why the status command was not used.
        note: String,
    },
    /// No `cloud-init` command and no marker.
    NotInstalled,
    /// Output we could not read.
    Unrecognized { output: String },
}

fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses the output of the cloud-init check command. Pure.
pub fn parse_cloud_init(output: &str) -> CloudInitStatus {
    let marker = output.lines().any(|l| l.trim() == BOOT_FINISHED);
    if output.lines().any(|l| l.trim() == NO_CLOUD_INIT) {
        return if marker {
            CloudInitStatus::BootFinished {
                note: "no cloud-init command".into(),
            }
        } else {
            CloudInitStatus::NotInstalled
        };
    }
    let text: Vec<&str> = output
        .lines()
        .filter(|l| !l.starts_with(RC) && l.trim() != BOOT_FINISHED)
        .collect();
    let json_text = text.join("\n");
    let parsed = json_text
        .find('{')
        .and_then(|start| serde_json::from_str::<serde_json::Value>(&json_text[start..]).ok());
    let Some(v) = parsed else {
        // Too old for `--format json`, or not executable: the marker is all we have.
        let first = text.first().map_or("", |l| l.trim()).to_owned();
        return if marker {
            CloudInitStatus::BootFinished {
                note: format!("`cloud-init status --format json` unusable: {first}"),
            }
        } else {
            CloudInitStatus::Unrecognized {
                output: json_text.trim().to_owned(),
            }
        };
    };
    let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("");
    let extended = v
        .get("extended_status")
        .and_then(|s| s.as_str())
        .unwrap_or(status)
        .to_ascii_lowercase();
    let errors = strings(v.get("errors"));
    let mut warnings = Vec::new();
    if let Some(obj) = v.get("recoverable_errors").and_then(|r| r.as_object()) {
        for (level, list) in obj {
            for w in strings(Some(list)) {
                warnings.push(format!("{level}: {w}"));
            }
        }
    }
    let status = status.to_ascii_lowercase();
    if status == "error" || extended.contains("error") || (!errors.is_empty() && status == "done") {
        CloudInitStatus::Error { errors }
    } else if extended.contains("running") || status == "running" {
        CloudInitStatus::Running
    } else if status == "done" || extended.contains("done") {
        if extended.contains("degraded") || !warnings.is_empty() {
            CloudInitStatus::Degraded { warnings }
        } else {
            CloudInitStatus::Done
        }
    } else if status == "disabled" {
        CloudInitStatus::Disabled
    } else if matches!(status.as_str(), "not run" | "not started" | "not_run") {
        CloudInitStatus::NotStarted
    } else {
        CloudInitStatus::Unrecognized {
            output: output.trim().to_owned(),
        }
    }
}

/// The command behind [`cloud_init_status`].
pub fn cloud_init_command() -> String {
    format!(
        "if command -v cloud-init >/dev/null 2>&1; then cloud-init status --format json 2>&1; echo \"{RC}$?\"; \
         else echo {NO_CLOUD_INIT}; fi; if [ -e {BOOT_FINISHED_MARKER} ]; then echo {BOOT_FINISHED}; fi"
    )
}

/// Asks the node how cloud-init went.
///
/// # Errors
/// [`SshError`] when the command cannot run.
pub async fn cloud_init_status(session: &SshSession) -> Result<CloudInitStatus, SshError> {
    let out = session
        .exec_with(&cloud_init_command(), check_opts())
        .await?;
    Ok(parse_cloud_init(&out.stdout_text()))
}

fn check_opts() -> crate::ssh::ExecOptions {
    crate::ssh::ExecOptions::default()
        .timeout(Duration::from_secs(20))
        .max_output(256 * 1024)
}

/// What the node's `wg0` looks like to `ip -o link` and `ip -o -4 addr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "wg0", rename_all = "snake_case")]
pub enum WireguardStatus {
    /// Up with the expected address.
    Up,
    /// `ip link show` failed: usually there is no such interface.
    Missing,
    /// The link is down.
    Down,
    /// Up but without the expected address.
    WrongAddress {
        /// Its IPv4 addresses with prefix (`10.0.0.2/24`); empty when it has none.
        found: Vec<String>,
    },
}

/// Parses the output of the wg0 check command. Pure.
pub fn parse_wireguard(output: &str, expected: Ipv4Addr) -> WireguardStatus {
    let mut lines = output.lines();
    let link = lines.next().unwrap_or("");
    let rc_ok = lines.next().is_some_and(|l| l.trim() == format!("{RC}0"));
    if !rc_ok {
        return WireguardStatus::Missing;
    }
    let flags = link
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map_or("", |(f, _)| f);
    if !flags.split(',').any(|f| f == "UP") {
        return WireguardStatus::Down;
    }
    let found: Vec<String> = lines
        .flat_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.windows(2)
                .filter(|p| p[0] == "inet")
                .map(|p| p[1].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    if found
        .iter()
        .any(|a| a.split('/').next() == Some(expected.to_string().as_str()))
    {
        WireguardStatus::Up
    } else {
        WireguardStatus::WrongAddress { found }
    }
}

/// Checks the node's `wg0` (link up, tunnel address `expected`).
///
/// # Errors
/// [`SshError`] when the command cannot run.
pub async fn wireguard_status(
    session: &SshSession,
    expected: Ipv4Addr,
) -> Result<WireguardStatus, SshError> {
    let cmd = format!(
        "ip -o link show dev {NODE_INTERFACE} 2>&1; echo \"{RC}$?\"; ip -o -4 addr show dev {NODE_INTERFACE} 2>&1"
    );
    let out = session.exec_with(&cmd, check_opts()).await?;
    Ok(parse_wireguard(&out.stdout_text(), expected))
}

/// Whether `sudo` works without a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "sudo", rename_all = "snake_case")]
pub enum SudoStatus {
    /// `sudo -n true` succeeded.
    Works,
    /// sudo wants a password.
    NeedsPassword,
    /// sudo is not installed.
    NotInstalled,
    /// sudo refused for another reason.
    Refused {
        /// sudo's output, on one line.
        message: String,
    },
}

/// Parses the output of the sudo check command. Pure.
pub fn parse_sudo(output: &str) -> SudoStatus {
    let rc = output
        .lines()
        .find_map(|l| l.trim().strip_prefix(RC))
        .and_then(|r| r.parse::<i32>().ok());
    let message: String = output
        .lines()
        .filter(|l| !l.starts_with(RC))
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned();
    match rc {
        Some(0) => SudoStatus::Works,
        Some(127) => SudoStatus::NotInstalled,
        _ if message.contains("password is required") => SudoStatus::NeedsPassword,
        _ => SudoStatus::Refused { message },
    }
}

/// Checks `sudo -n true` on the node.
///
/// # Errors
/// [`SshError`] when the command cannot run.
pub async fn sudo_status(session: &SshSession) -> Result<SudoStatus, SshError> {
    let out = session
        .exec_with(&format!("sudo -n true 2>&1; echo \"{RC}$?\""), check_opts())
        .await?;
    Ok(parse_sudo(&out.stdout_text()))
}

/// Which check a [`NodeCheckGate`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeCheck {
    /// cloud-init finished successfully (or degraded).
    CloudInit,
    /// `wg0` is up with this tunnel address.
    Wireguard {
        /// The node's tunnel address.
        address: Ipv4Addr,
    },
    /// `sudo -n true` succeeds: nothing asks for a password.
    Sudo,
}

impl NodeCheck {
    fn gate_name(&self) -> &'static str {
        match self {
            NodeCheck::CloudInit => "cloud_init_done",
            NodeCheck::Wireguard { .. } => "node_wireguard_up",
            NodeCheck::Sudo => "node_sudo_works",
        }
    }

    /// Runs the check on a session and turns the result into a verdict.
    pub async fn run(&self, session: &SshSession) -> GateVerdict {
        let node = session.node().to_owned();
        let res = match self {
            NodeCheck::CloudInit => cloud_init_status(session)
                .await
                .map(|s| cloud_init_verdict(&node, &s)),
            NodeCheck::Wireguard { address } => wireguard_status(session, *address)
                .await
                .map(|s| wireguard_verdict(&node, *address, &s)),
            NodeCheck::Sudo => sudo_status(session).await.map(|s| sudo_verdict(&node, &s)),
        };
        res.unwrap_or_else(|e| GateVerdict::from_error(&e))
    }
}

/// The verdict for a cloud-init status.
pub fn cloud_init_verdict(node: &str, s: &CloudInitStatus) -> GateVerdict {
    let log = format!(
        "inspect /var/log/cloud-init-output.log on {node} (`sudo cloud-init status --long`); its custom data is fixed at creation, so a broken bootstrap means recreating the VM"
    );
    match s {
        CloudInitStatus::Done => GateVerdict::pass(format!("{node}: cloud-init done")),
        CloudInitStatus::Degraded { warnings } => GateVerdict::pass(format!(
            "{node}: cloud-init done with recoverable errors: {}",
            warnings.join("; ")
        )),
        CloudInitStatus::BootFinished { note } => {
            GateVerdict::pass(format!("{node}: {BOOT_FINISHED_MARKER} present ({note})"))
        }
        CloudInitStatus::Error { errors } => GateVerdict::fail_with(
            format!("{node}: cloud-init failed: {}", errors.join("; ")),
            log,
        ),
        CloudInitStatus::Running | CloudInitStatus::NotStarted => GateVerdict::fail_with(
            format!("{node}: cloud-init has not finished yet"),
            "wait; the first boot installs packages",
        ),
        CloudInitStatus::Disabled => GateVerdict::fail_with(
            format!("{node}: cloud-init is disabled, so the node's bootstrap never ran"),
            log,
        ),
        CloudInitStatus::NotInstalled => GateVerdict::fail_with(
            format!("{node}: no cloud-init command and no {BOOT_FINISHED_MARKER}"),
            "use an image with cloud-init (Ubuntu and Debian cloud images have it)",
        ),
        CloudInitStatus::Unrecognized { output } => GateVerdict::fail_with(
            format!("{node}: unreadable cloud-init status: {output}"),
            log,
        ),
    }
}

fn wireguard_verdict(node: &str, address: Ipv4Addr, s: &WireguardStatus) -> GateVerdict {
    let remedy = format!(
        "on {node}: `sudo systemctl status wg-quick@{NODE_INTERFACE}` and `sudo journalctl -u wg-quick@{NODE_INTERFACE}`"
    );
    match s {
        WireguardStatus::Up => {
            GateVerdict::pass(format!("{node}: {NODE_INTERFACE} is up with {address}"))
        }
        WireguardStatus::Missing => {
            GateVerdict::fail_with(format!("{node}: {NODE_INTERFACE} does not exist"), remedy)
        }
        WireguardStatus::Down => {
            GateVerdict::fail_with(format!("{node}: {NODE_INTERFACE} is down"), remedy)
        }
        WireguardStatus::WrongAddress { found } => GateVerdict::fail_with(
            format!(
                "{node}: {NODE_INTERFACE} has {} instead of {address}",
                if found.is_empty() {
                    "no address".to_owned()
                } else {
                    found.join(", ")
                }
            ),
            remedy,
        ),
    }
}

fn sudo_verdict(node: &str, s: &SudoStatus) -> GateVerdict {
    match s {
        SudoStatus::Works => GateVerdict::pass(format!("{node}: sudo works without a password")),
        SudoStatus::NeedsPassword => GateVerdict::fail_with(
            format!("{node}: sudo asks for a password"),
            "give the admin user NOPASSWD sudo (Azure images do this for the admin user)",
        ),
        SudoStatus::NotInstalled => GateVerdict::fail_with(
            format!("{node}: sudo is not installed"),
            "install sudo on the node",
        ),
        SudoStatus::Refused { message } => GateVerdict::fail_with(
            format!("{node}: sudo refused: {message}"),
            "check the admin user's sudoers entry",
        ),
    }
}

/// A [`NodeCheck`] as a gate: connects through the connector (so the VPN precondition and
/// host-key pinning apply) and runs the check. As a gate its pins are the state's as of the
/// check, not as of the gate's making: a VM recreated earlier in the same run had its pins
/// cleared by `create_vms`, and its new keys are learned as on first contact (and recorded by
/// the step, not by this read-only check).
pub struct NodeCheckGate {
    check: NodeCheck,
    target: NodeTarget,
    connector: Arc<SshConnector>,
    wait: Option<WaitBudget>,
}

impl std::fmt::Debug for NodeCheckGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCheckGate")
            .field("check", &self.check)
            .field("target", &self.target)
            .finish()
    }
}

impl NodeCheckGate {
    /// Cloud-init checks wait up to 20 minutes (the first boot installs packages); the other
    /// checks fail at once.
    pub fn new(check: NodeCheck, target: NodeTarget, connector: Arc<SshConnector>) -> Self {
        let wait = match check {
            // The first boot installs packages: allow 20 minutes, polling every 10 s.
            NodeCheck::CloudInit => Some(WaitBudget {
                deadline: Deadline::After(Duration::from_secs(20 * 60)),
                interval: Duration::from_secs(10),
            }),
            _ => None,
        };
        NodeCheckGate {
            check,
            target,
            connector,
            wait,
        }
    }

    /// Overrides the wait budget.
    #[must_use]
    pub fn with_wait(mut self, wait: Option<WaitBudget>) -> Self {
        self.wait = wait;
        self
    }

    /// Runs the check once, with host keys pinned in `pins`.
    pub async fn verdict(&self, pins: &dyn PinStore) -> GateVerdict {
        match self.connector.session(&self.target, pins).await {
            Ok(s) => self.check.run(&s).await,
            Err(e) => GateVerdict::from_error(&e),
        }
    }
}

#[async_trait]
impl Gate for NodeCheckGate {
    fn name(&self) -> &str {
        self.check.gate_name()
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn wait(&self, _state: &DeploymentState) -> Option<WaitBudget> {
        self.wait
    }

    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        let pins = crate::ssh::StatePins::new((*ctx.state).clone());
        self.verdict(&pins).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_init_json_is_classified() {
        let done = r#"{"status": "done", "errors": [], "detail": "DataSourceAzure"}"#;
        assert_eq!(
            parse_cloud_init(&format!("{done}\n{RC}0")),
            CloudInitStatus::Done
        );
        let err =
            r#"{"status": "error", "errors": ["('scripts_user', RuntimeError('runcmd failed'))"]}"#;
        assert!(
            matches!(parse_cloud_init(&format!("{err}\n{RC}1")), CloudInitStatus::Error { errors } if errors.len() == 1)
        );
        let degraded = r#"{"status": "done", "extended_status": "degraded done", "errors": [],
            "recoverable_errors": {"WARNING": ["Package list empty"]}}"#;
        assert_eq!(
            parse_cloud_init(&format!("{degraded}\n{RC}2")),
            CloudInitStatus::Degraded {
                warnings: vec!["WARNING: Package list empty".into()]
            }
        );
        let running = r#"{"status": "running", "extended_status": "degraded running"}"#;
        assert_eq!(parse_cloud_init(running), CloudInitStatus::Running);
        // Debian 12's cloud-init 22.4 on a machine it never ran on.
        let not_run = r#"{"_schema_version": "1", "status": "not run", "errors": []}"#;
        assert_eq!(parse_cloud_init(not_run), CloudInitStatus::NotStarted);
        assert_eq!(
            parse_cloud_init(r#"{"status": "disabled"}"#),
            CloudInitStatus::Disabled
        );
        assert!(matches!(
            parse_cloud_init("usage: cloud-init [-h]\n__K0RDENT_RC=2"),
            CloudInitStatus::Unrecognized { .. }
        ));
    }

    #[test]
    fn without_cloud_init_the_marker_decides() {
        assert_eq!(
            parse_cloud_init(&format!("{NO_CLOUD_INIT}\n{BOOT_FINISHED}\n")),
            CloudInitStatus::BootFinished {
                note: "no cloud-init command".into()
            }
        );
        // An old cloud-init without `--format json`, with the marker.
        let old = format!("usage: cloud-init [-h] {{init,modules}}\n{RC}2\n{BOOT_FINISHED}");
        assert!(
            matches!(parse_cloud_init(&old), CloudInitStatus::BootFinished { note } if note.contains("usage"))
        );
        assert_eq!(
            parse_cloud_init(NO_CLOUD_INIT),
            CloudInitStatus::NotInstalled
        );
    }

    #[test]
    fn wg0_output_is_classified() {
        let ip: Ipv4Addr = "172.24.24.11".parse().unwrap();
        let up = "7: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc fq state UNKNOWN\n__K0RDENT_RC=0\n7: wg0    inet 172.24.24.11/32 scope global wg0\\       valid_lft forever";
        assert_eq!(parse_wireguard(up, ip), WireguardStatus::Up);
        let missing =
            "Device \"wg0\" does not exist.\n__K0RDENT_RC=1\nDevice \"wg0\" does not exist.";
        assert_eq!(parse_wireguard(missing, ip), WireguardStatus::Missing);
        let down = "7: wg0: <POINTOPOINT,NOARP> mtu 1420\n__K0RDENT_RC=0\n";
        assert_eq!(parse_wireguard(down, ip), WireguardStatus::Down);
        let wrong = "7: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420\n__K0RDENT_RC=0\n7: wg0    inet 172.24.24.99/32 scope global wg0";
        assert!(matches!(
            parse_wireguard(wrong, ip),
            WireguardStatus::WrongAddress { .. }
        ));
    }

    #[test]
    fn sudo_output_is_classified() {
        assert_eq!(parse_sudo("__K0RDENT_RC=0"), SudoStatus::Works);
        assert_eq!(
            parse_sudo("sudo: a password is required\n__K0RDENT_RC=1"),
            SudoStatus::NeedsPassword
        );
        assert_eq!(
            parse_sudo("bash: sudo: command not found\n__K0RDENT_RC=127"),
            SudoStatus::NotInstalled
        );
        assert!(matches!(
            parse_sudo("sudo: x is not in the sudoers file\n__K0RDENT_RC=1"),
            SudoStatus::Refused { .. }
        ));
    }
}
