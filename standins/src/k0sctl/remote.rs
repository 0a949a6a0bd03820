//! Reaching a host the way rig's `openSSH` client does: the system `ssh`, never a library, so
//! host-key checking, `-F`, identities and options are OpenSSH's own.
//!
//! Read at rig v0.18.7 (`openssh.go`) and v2.1.1 (`protocol/openssh/connection.go`), which
//! agree on the command lines:
//! - defaults merged under the host's `options` (an option the host sets wins):
//!   `ControlPath=~/.ssh/ctrl-%C`, `ControlMaster=no`, `ServerAliveInterval=60`,
//!   `ServerAliveCountMax=3`, `StrictHostKeyChecking=no`, `Compression=no`,
//!   `ConnectTimeout=10` (so without an explicit `StrictHostKeyChecking` rig accepts and
//!   records any host key);
//! - booleans become `yes`/`no`, every option one `-o Key=Value`;
//! - then `-i keyPath`, `-p port`, `-F configPath`, `user@address` (user and port only when
//!   set);
//! - connecting starts a control master (`ssh -N -f` with `ControlMaster=yes`,
//!   `ControlPersist=600`, `TCPKeepalive=yes`) unless `disableMultiplexing`, which instead
//!   runs `exit 0`; every command is `ssh <options> -o BatchMode=yes <args> -- <command>`;
//!   disconnecting is `ssh -O exit -S <ControlPath> <args>`.
//!
//! `SSH_KNOWN_HOSTS` is read only by rig's Go client (`ssh:` hosts), never by this one.
//! Go iterates option maps in random order; here they are sorted, and since OpenSSH keeps
//! the first value of an option given twice, a host's own `BatchMode` wins over the
//! appended `BatchMode=yes` in both.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::config::OpenSsh;
use super::failure::Failure;

/// k0sctl's `retry.Interval`.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);

/// How long k0sctl's `Connect` phase retries a host (`phase/connect.go`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(600);

/// One host's connection, as rig builds it from the host's `openSSH` block.
#[derive(Debug, Clone)]
pub struct Remote {
    /// rig's name for the connection, `[OpenSSH] user@address[:port]`, which k0sctl puts in
    /// front of every message about the host.
    pub name: String,
    /// The host's address (`IPAddress()`).
    pub address: String,
    options: BTreeMap<String, String>,
    args: Vec<String>,
    multiplexing: bool,
    connected: bool,
    /// Whether commands need `sudo`, known once connected (rig's `configureSudo`).
    sudo: Option<bool>,
    /// `K0RDENT_STANDIN_ROOT` passed to every remote script.
    root: String,
}

/// What a remote command returned.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status (`-1` when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

fn option_text(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Bool(true) => "yes".into(),
        serde_yaml::Value::Bool(false) => "no".into(),
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

/// Single-quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Remote {
    /// Builds the connection as rig's `SetDefaults` does; `root` is the node-side path prefix
    /// given to every remote script (empty on real machines).
    pub fn new(conn: &OpenSsh, root: &str) -> Remote {
        let mut options: BTreeMap<String, String> = conn
            .options
            .iter()
            .map(|(k, v)| (k.clone(), option_text(v)))
            .collect();
        for (k, v) in [
            ("ControlPath", "~/.ssh/ctrl-%C"),
            ("ControlMaster", "no"),
            ("ServerAliveInterval", "60"),
            ("ServerAliveCountMax", "3"),
            ("StrictHostKeyChecking", "no"),
            ("Compression", "no"),
            ("ConnectTimeout", "10"),
        ] {
            options.entry(k.into()).or_insert_with(|| v.into());
        }
        if conn.disable_multiplexing {
            options.remove("ControlMaster");
            options.remove("ControlPath");
        }
        let userhost = match &conn.user {
            Some(u) => format!("{u}@{}", conn.address),
            None => conn.address.clone(),
        };
        let mut args = Vec::new();
        if let Some(k) = conn.key_path.as_deref().filter(|k| !k.is_empty()) {
            args.extend(["-i".to_owned(), expand_home(k)]);
        }
        if let Some(p) = conn.port {
            args.extend(["-p".to_owned(), p.to_string()]);
        }
        if let Some(c) = conn.config_path.as_deref().filter(|c| !c.is_empty()) {
            args.extend(["-F".to_owned(), expand_home(c)]);
        }
        args.push(userhost.clone());
        let name = match conn.port {
            Some(p) => format!("[OpenSSH] {userhost}:{p}"),
            None => format!("[OpenSSH] {userhost}"),
        };
        Remote {
            name,
            address: conn.address.clone(),
            options,
            args,
            multiplexing: !conn.disable_multiplexing,
            connected: false,
            sudo: None,
            root: root.to_owned(),
        }
    }

    fn option_args(options: &BTreeMap<String, String>) -> Vec<String> {
        options
            .iter()
            .flat_map(|(k, v)| ["-o".to_owned(), format!("{k}={v}")])
            .collect()
    }

    /// The `ssh` argv (without `ssh`) that runs `command` on the host.
    pub fn exec_argv(&self, command: &str) -> Vec<String> {
        let mut argv = Self::option_args(&self.options);
        argv.extend(["-o".to_owned(), "BatchMode=yes".to_owned()]);
        argv.extend(self.args.iter().cloned());
        argv.extend(["--".to_owned(), command.to_owned()]);
        argv
    }

    /// rig's `Connect` followed by its sudo detection (`[ "$(id -u)" = 0 ]`, then
    /// `sudo -n -l`).
    ///
    /// # Errors
    /// [`Failure::Connect`] with ssh's own words (e.g. `Host key verification failed.`).
    pub fn connect(&mut self) -> Result<(), Failure> {
        if self.connected {
            return Ok(());
        }
        if self.multiplexing {
            let mut opts = self.options.clone();
            opts.insert("ControlMaster".into(), "yes".into());
            opts.insert("ControlPersist".into(), "600".into());
            opts.insert("TCPKeepalive".into(), "yes".into());
            let mut argv = vec!["-N".to_owned(), "-f".to_owned()];
            argv.extend(Self::option_args(&opts));
            argv.extend(self.args.iter().cloned());
            // A file, not a pipe: the daemonised master keeps its stderr open.
            let err_file = tempfile_for_stderr()?;
            let status = Command::new("ssh")
                .args(&argv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    err_file
                        .reopen()
                        .map_err(|e| Failure::io("ssh stderr file", e))?,
                )
                .status()
                .map_err(|e| Failure::io("run ssh", e))?;
            if !status.success() {
                let detail = std::fs::read_to_string(err_file.path()).unwrap_or_default();
                return Err(Failure::Connect {
                    host: self.name.clone(),
                    detail: format!(
                        "failed to start ssh multiplexing control master: {status} ({})",
                        detail.trim()
                    ),
                });
            }
        } else {
            let out = self.run_raw("exit 0", "")?;
            if out.code != 0 {
                return Err(Failure::Connect {
                    host: self.name.clone(),
                    detail: format!(
                        "failed to connect: exit status {} ({})",
                        out.code,
                        out.stderr.trim()
                    ),
                });
            }
        }
        self.connected = true;
        if self.run_raw(r#"[ "$(id -u)" = 0 ]"#, "")?.code == 0 {
            self.sudo = Some(false);
        } else if self.run_raw("sudo -n -l", "")?.code == 0 {
            self.sudo = Some(true);
        } else {
            return Err(Failure::Connect {
                host: self.name.clone(),
                detail: "user is not an administrator".into(),
            });
        }
        Ok(())
    }

    /// k0sctl's `Connect` phase around [`Remote::connect`]: retried every 5 s for up to
    /// `timeout` (k0sctl: 10 minutes), except a host-key failure, which rig v2 marks
    /// non-retryable and k0sctl gives up on at once.
    ///
    /// # Errors
    /// The last attempt's failure.
    pub fn connect_within(&mut self, timeout: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.connect() {
                Err(Failure::Connect { detail, .. })
                    if !detail.contains("Host key verification failed")
                        && !detail.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                        && Instant::now() + RETRY_INTERVAL < deadline =>
                {
                    std::thread::sleep(RETRY_INTERVAL);
                }
                other => return other,
            }
        }
    }

    /// Closes the control master (rig's `Disconnect`); errors are ignored as rig does.
    pub fn disconnect(&mut self) {
        if !self.connected || !self.multiplexing {
            self.connected = false;
            return;
        }
        if let Some(path) = self.options.get("ControlPath") {
            let mut argv = vec![
                "-O".to_owned(),
                "exit".to_owned(),
                "-S".to_owned(),
                path.clone(),
            ];
            argv.extend(self.args.iter().cloned());
            let _ = Command::new("ssh")
                .args(&argv)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        self.connected = false;
    }

    /// Runs `command` as the login user, `stdin` fed to it.
    ///
    /// # Errors
    /// Only when `ssh` cannot be started; a failing command is an [`Output`] with its code.
    pub fn run_raw(&self, command: &str, stdin: &str) -> Result<Output, Failure> {
        let mut child = Command::new("ssh")
            .args(self.exec_argv(command))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure::io("run ssh", e))?;
        if let Some(mut input) = child.stdin.take() {
            // A command that does not read its input closes the pipe early: not an error.
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Failure::io("wait for ssh", e))?;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs a shell script as root (through `sudo` when the user is not root, as rig's
    /// `Sudo()` wraps commands: `sudo K=V -- cmd`), with `K0RDENT_STANDIN_ROOT` set to this
    /// run's root, or kept from the node's session. `args` become `$1`...
    ///
    /// # Errors
    /// [`Failure::Remote`] when the script exits non-zero, with its stderr.
    pub fn sudo_script(&self, what: &str, script: &str, args: &[&str]) -> Result<String, Failure> {
        let mut cmd = String::new();
        let sudo = self.sudo.unwrap_or(false);
        // The node's own value (sshd `SetEnv`) unless this run names one; sudo's env_reset
        // would drop it, so it is handed over explicitly as rig hands over assignments.
        let assign = if self.root.is_empty() {
            "K0RDENT_STANDIN_ROOT=\"${K0RDENT_STANDIN_ROOT:-}\"".to_owned()
        } else {
            format!("K0RDENT_STANDIN_ROOT={}", shell_quote(&self.root))
        };
        if sudo {
            cmd.push_str(&format!("sudo {assign} -- "));
        } else if !self.root.is_empty() {
            cmd.push_str(&format!("{assign} "));
        }
        cmd.push_str("sh -s --");
        for a in args {
            cmd.push(' ');
            cmd.push_str(&shell_quote(a));
        }
        let out = self.run_raw(&cmd, script)?;
        if out.code == 0 {
            Ok(out.stdout)
        } else {
            Err(Failure::Remote {
                host: self.name.clone(),
                what: what.to_owned(),
                detail: format!("exit status {}: {}", out.code, out.stderr.trim()),
            })
        }
    }
}

fn tempfile_for_stderr() -> Result<tempfile_lite::TempFile, Failure> {
    tempfile_lite::TempFile::new().map_err(|e| Failure::io("create a temporary file", e))
}

/// `~/` expanded as rig's `homedir.Expand` does.
fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => path.to_owned(),
    }
}

/// A named temporary file removed when dropped, without a dependency for it.
mod tempfile_lite {
    use std::fs::File;
    use std::path::{Path, PathBuf};

    pub struct TempFile {
        path: PathBuf,
    }

    impl TempFile {
        pub fn new() -> std::io::Result<TempFile> {
            let path = std::env::temp_dir().join(format!(
                "k0sctl-standin-ssh-{}-{}.stderr",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            File::create(&path)?;
            Ok(TempFile { path })
        }

        pub fn path(&self) -> &Path {
            &self.path
        }

        pub fn reopen(&self) -> std::io::Result<File> {
            File::options().append(true).open(&self.path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
