//! [`SshSession`]: one authenticated session per host, reused for many commands (each on its
//! own channel), with timeouts, exit status, bounded output and small uploads.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::SshError;
use super::hostkey::HostKey;
use super::transport::{Conn, Fail, RawOutput};
use k0rdent_process::redact;

/// The largest upload [`SshSession::upload`] accepts: it is for config files, not images.
pub const MAX_UPLOAD: usize = 4 * 1024 * 1024;

/// Per-command settings. Defaults: 60 s, no stdin, 1 MiB kept of each output stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// Give up (and close the channel) after this long.
    pub timeout: Duration,
    /// Bytes sent to the command's stdin (then EOF).
    pub stdin: Option<Vec<u8>>,
    /// Keep at most this many bytes of stdout and of stderr each; the rest is counted as
    /// truncated.
    pub max_output: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            timeout: Duration::from_secs(60),
            stdin: None,
            max_output: 1024 * 1024,
        }
    }
}

#[allow(missing_docs)] // setters named after the field they set
impl ExecOptions {
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    #[must_use]
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    #[must_use]
    pub fn max_output(mut self, n: usize) -> Self {
        self.max_output = n;
        self
    }
}

/// What a remote command did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct ExecOutput {
    pub node: String,
    pub command: String,
    /// Exit status (`-1`-like values come from signals; see `signal`).
    pub status: i32,
    /// The signal that killed it, if any (`TERM`, `KILL`).
    pub signal: Option<String>,
    /// Standard output (at most `max_output` bytes).
    pub stdout: Vec<u8>,
    /// Standard error (at most `max_output` bytes).
    pub stderr: Vec<u8>,
    /// Whether stdout was cut.
    pub stdout_truncated: bool,
    /// Whether stderr was cut.
    pub stderr_truncated: bool,
    /// How long it took.
    pub elapsed: Duration,
}

impl ExecOutput {
    /// Exit status 0 and no signal.
    pub fn success(&self) -> bool {
        self.status == 0 && self.signal.is_none()
    }

    /// Stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// `Ok(self)` on success, else [`SshError::CommandFailed`] with redacted stderr.
    ///
    /// # Errors
    /// [`SshError::CommandFailed`].
    pub fn check(self) -> Result<Self, SshError> {
        if self.success() {
            return Ok(self);
        }
        let text = redact(&self.stderr_text());
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n");
        Err(SshError::CommandFailed {
            node: self.node,
            command: self.command,
            status: self.status,
            stderr: tail,
        })
    }
}

/// An authenticated SSH session to one node. Commands run one at a time per session; the
/// session is `Send + Sync` and cheap to share behind an `Arc`.
pub struct SshSession {
    node: String,
    addr: SocketAddr,
    host_key: HostKey,
    conn: Arc<Mutex<Conn>>,
    broken: Arc<AtomicBool>,
    commands: AtomicU64,
    defaults: ExecOptions,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("node", &self.node)
            .field("addr", &self.addr)
            .field("host_key", &self.host_key)
            .finish()
    }
}

impl SshSession {
    pub(crate) fn new(
        node: String,
        addr: SocketAddr,
        host_key: HostKey,
        conn: Conn,
        defaults: ExecOptions,
    ) -> Self {
        SshSession {
            node,
            addr,
            host_key,
            conn: Arc::new(Mutex::new(conn)),
            broken: Arc::new(AtomicBool::new(false)),
            commands: AtomicU64::new(0),
            defaults,
        }
    }

    #[allow(missing_docs)]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The address connected to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host key the server presented (and that was verified).
    pub fn host_key(&self) -> &HostKey {
        &self.host_key
    }

    /// Whether a transport error made the session unusable.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Commands run on this session so far.
    pub fn commands_run(&self) -> u64 {
        self.commands.load(Ordering::SeqCst)
    }

    /// Runs `command` with the default options (60 s, 1 MiB of output each).
    ///
    /// # Errors
    /// [`SshError::Timeout`] or a transport error; a non-zero exit is *not* an error here
    /// (see [`ExecOutput::check`]).
    pub async fn exec(&self, command: &str) -> Result<ExecOutput, SshError> {
        self.exec_with(command, self.defaults.clone()).await
    }

    /// Runs `command` with `opts`.
    ///
    /// # Errors
    /// [`SshError::Timeout`] or a transport error.
    pub async fn exec_with(
        &self,
        command: &str,
        opts: ExecOptions,
    ) -> Result<ExecOutput, SshError> {
        if self.is_broken() {
            return Err(self.error(Fail::Ssh(
                "reusing the session".into(),
                ssh2::Error::new(ssh2::ErrorCode::Session(-13), "session was broken earlier"),
            )));
        }
        let conn = Arc::clone(&self.conn);
        let cmd = command.to_owned();
        let start = Instant::now();
        let deadline = start + opts.timeout;
        let res = tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| {
                Fail::Io(
                    "locking the session".into(),
                    std::io::Error::other("poisoned"),
                )
            })?;
            guard.exec(&cmd, opts.stdin.as_deref(), deadline, opts.max_output)
        })
        .await
        .map_err(|e| {
            self.error(Fail::Io(
                "running the command".into(),
                std::io::Error::other(e.to_string()),
            ))
        })?;
        self.commands.fetch_add(1, Ordering::SeqCst);
        match res {
            Ok(raw) => Ok(self.output(command, raw, start.elapsed())),
            Err(Fail::Timeout(_)) => Err(SshError::Timeout {
                node: self.node.clone(),
                addr: self.addr,
                operation: format!("`{command}`"),
                after: opts.timeout,
            }),
            Err(f) => {
                self.broken.store(true, Ordering::SeqCst);
                Err(self.error(f))
            }
        }
    }

    /// Writes `contents` to the absolute `path` on the node atomically (temp file in the same
    /// directory, then rename) with `mode`, through `sudo -n` when `sudo` is set.
    ///
    /// # Errors
    /// [`SshError::BadInput`] for a relative path or more than [`MAX_UPLOAD`] bytes;
    /// [`SshError::CommandFailed`] when the remote write fails.
    pub async fn upload(
        &self,
        path: &str,
        contents: &[u8],
        mode: u32,
        sudo: bool,
    ) -> Result<(), SshError> {
        if !path.starts_with('/') || path.contains(['\n', '\0']) || path.ends_with('/') {
            return Err(SshError::BadInput {
                node: self.node.clone(),
                detail: format!("upload path {path:?} must be an absolute file path"),
            });
        }
        if contents.len() > MAX_UPLOAD {
            return Err(SshError::BadInput {
                node: self.node.clone(),
                detail: format!(
                    "upload of {} bytes to {path} exceeds the {} byte limit",
                    contents.len(),
                    MAX_UPLOAD
                ),
            });
        }
        let q = shell_quote(path);
        let script = format!(
            "set -e; umask 077; d=$(dirname -- {q}); t=$(mktemp \"$d/.k0rdent-upload.XXXXXX\"); \
             trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; chmod {mode:o} \"$t\"; mv -f \"$t\" {q}"
        );
        let command = if sudo {
            format!("sudo -n sh -c {}", shell_quote(&script))
        } else {
            format!("sh -c {}", shell_quote(&script))
        };
        let opts = ExecOptions::default()
            .timeout(self.defaults.timeout)
            .stdin(contents.to_vec())
            .max_output(64 * 1024);
        self.exec_with(&command, opts).await?.check().map(|_| ())
    }

    fn output(&self, command: &str, raw: RawOutput, elapsed: Duration) -> ExecOutput {
        ExecOutput {
            node: self.node.clone(),
            command: command.to_owned(),
            status: raw.status,
            signal: raw.signal,
            stdout: raw.stdout,
            stderr: raw.stderr,
            stdout_truncated: raw.stdout_truncated,
            stderr_truncated: raw.stderr_truncated,
            elapsed,
        }
    }

    fn error(&self, f: Fail) -> SshError {
        fail_to_error(&self.node, self.addr, "", f)
    }
}

/// Classifies a blocking-layer failure for `node`.
pub(crate) fn fail_to_error(node: &str, addr: SocketAddr, user: &str, f: Fail) -> SshError {
    let node = node.to_owned();
    match f {
        Fail::Connect(e) => SshError::Unreachable {
            node,
            addr,
            detail: match e.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    "no answer to the TCP connection".into()
                }
                _ => e.to_string(),
            },
        },
        Fail::Timeout(operation) => SshError::Timeout {
            node,
            addr,
            operation,
            after: Duration::ZERO,
        },
        Fail::Auth(detail) => SshError::AuthRefused {
            node,
            addr,
            user: user.to_owned(),
            detail,
        },
        Fail::Ssh(operation, e) => SshError::Protocol {
            node,
            addr,
            operation,
            detail: e.to_string(),
        },
        Fail::Io(operation, e) => SshError::Protocol {
            node,
            addr,
            operation,
            detail: e.to_string(),
        },
    }
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn failed_commands_carry_redacted_stderr() {
        let out = ExecOutput {
            node: "n1".into(),
            command: "wg show".into(),
            status: 1,
            signal: None,
            stdout: vec![],
            stderr: b"private_key=abc\nUnable to access interface: No such device\n".to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            elapsed: Duration::ZERO,
        };
        let e = out.check().unwrap_err();
        assert_eq!(
            e.to_string(),
            "n1: `wg show` exited with status 1: [redacted]\nUnable to access interface: No such device"
        );
    }
}
