//! [`SshError`]: every SSH failure, classified (VPN down, unreachable, auth refused, host key
//! changed, timeout, …), naming the node and what to do.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use k0rdent_core::Remedy;
use serde::Serialize;

/// The class of an SSH failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SshFailure {
    /// The VPN gate failed for the node: no connection was attempted.
    VpnDown,
    /// TCP could not reach the node.
    Unreachable,
    /// The node refused our key.
    AuthRefused,
    /// The node's host key differs from the pinned one.
    HostKeyChanged,
    /// An operation did not finish in time.
    Timeout,
    /// A remote command exited non-zero.
    CommandFailed,
    /// Anything else in the SSH protocol.
    Protocol,
    /// Bad input (a relative upload path, an oversized upload).
    BadInput,
    /// The pinned keys could not be recorded.
    PinStore,
}

/// An SSH failure. `node` is the node's name in the deployment, `addr` the address dialled.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // `node`, `addr`, `user` and `operation` say what they hold
pub enum SshError {
    /// The VPN gate failed for this node; no connection was attempted.
    #[error("{node}: not connecting, the VPN is not up: {diagnosis}")]
    VpnDown {
        node: String,
        /// The gate's diagnosis.
        diagnosis: String,
        /// The gate's [`Remedy`] (else: check `k0rdent vpn status`).
        remedy: Option<String>,
    },
    /// TCP could not reach the node.
    #[error("{node} ({addr}) is unreachable: {detail}")]
    Unreachable {
        node: String,
        addr: SocketAddr,
        /// The connect error.
        detail: String,
    },
    /// The node refused our key.
    #[error("{node} ({addr}) refused public-key authentication for user {user}: {detail}")]
    AuthRefused {
        node: String,
        addr: SocketAddr,
        user: String,
        /// libssh2's message.
        detail: String,
    },
    /// The node's host key differs from the pinned one.
    #[error(
        "the SSH host key of {node} ({addr}) changed: it presented {offered}, but {pinned} is pinned"
    )]
    HostKeyChanged {
        node: String,
        addr: SocketAddr,
        /// What it presented (algorithm and fingerprint).
        offered: String,
        /// What is pinned.
        pinned: String,
    },
    /// An operation did not finish in time.
    #[error("{node} ({addr}): {operation} timed out after {} s", after.as_secs_f64())]
    Timeout {
        node: String,
        addr: SocketAddr,
        /// What timed out.
        operation: String,
        /// The limit that ran out.
        after: Duration,
    },
    /// A remote command exited non-zero (from [`ExecOutput::check`](super::ExecOutput::check)).
    #[error(
        "{node}: `{command}` exited with status {status}{}",
        stderr_suffix(stderr)
    )]
    CommandFailed {
        node: String,
        command: String,
        status: i32,
        /// Last lines of stderr (redacted).
        stderr: String,
    },
    /// Anything else in the SSH protocol or transport.
    #[error("{node} ({addr}): {operation} failed: {detail}")]
    Protocol {
        node: String,
        addr: SocketAddr,
        operation: String,
        /// The SSH library's or the I/O error.
        detail: String,
    },
    /// Bad input.
    #[error("{node}: {detail}")]
    BadInput {
        node: String,
        /// What is wrong.
        detail: String,
    },
    /// The pinned keys could not be recorded (nothing was pinned; the session was dropped).
    #[error("{node}: could not record its pinned host keys: {source}")]
    PinStore {
        node: String,
        #[source]
        source: std::sync::Arc<super::pins::PinError>,
    },
}

fn stderr_suffix(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

impl SshError {
    /// The class of the failure.
    pub fn kind(&self) -> SshFailure {
        match self {
            SshError::VpnDown { .. } => SshFailure::VpnDown,
            SshError::Unreachable { .. } => SshFailure::Unreachable,
            SshError::AuthRefused { .. } => SshFailure::AuthRefused,
            SshError::HostKeyChanged { .. } => SshFailure::HostKeyChanged,
            SshError::Timeout { .. } => SshFailure::Timeout,
            SshError::CommandFailed { .. } => SshFailure::CommandFailed,
            SshError::Protocol { .. } => SshFailure::Protocol,
            SshError::BadInput { .. } => SshFailure::BadInput,
            SshError::PinStore { .. } => SshFailure::PinStore,
        }
    }

    /// Whether trying again later may help (a transient network condition).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind(),
            SshFailure::VpnDown
                | SshFailure::Unreachable
                | SshFailure::Timeout
                | SshFailure::Protocol
        )
    }
}

impl Remedy for SshError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            SshError::VpnDown { remedy, .. } => remedy
                .as_deref()
                .unwrap_or("run `k0rdent vpn status`")
                .into(),
            SshError::Unreachable { node, .. } => format!(
                "check that {node} is running and sshd listens on port 22 (`k0rdent vpn status`)"
            )
            .into(),
            SshError::AuthRefused { node, user, .. } => format!(
                "check that {node} has the deployment's public key in ~{user}/.ssh/authorized_keys (it is set at VM creation) and that keys/ssh-admin.key is the matching private key"
            )
            .into(),
            SshError::HostKeyChanged { node, .. } => format!(
                "nothing was sent to {node}. If you rebuilt that VM yourself, verify its new key out of band (Azure serial console: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then remove nodes.{node}.ssh_host_keys from deployment-state.yaml to pin it again; otherwise someone may be intercepting the connection"
            )
            .into(),
            SshError::Timeout { .. } => {
                "the node or the tunnel is slow or stuck; run `k0rdent vpn status` and try again"
                    .into()
            }
            SshError::CommandFailed { .. } => "see the command's output above".into(),
            SshError::Protocol { .. } => "try again; if it persists, run with -v".into(),
            SshError::BadInput { .. } => "this is a bug in the caller; please report it".into(),
            SshError::PinStore { .. } => "check that the state directory is writable".into(),
        })
    }
}
