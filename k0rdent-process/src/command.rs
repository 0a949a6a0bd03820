//! [`Command`]: what to run and how (mode, time limit, grace period, output bounds, secrets).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::mode::Mode;
use crate::redact::redact_with;

/// One argument, possibly secret.
#[derive(Debug, Clone)]
struct Arg {
    value: OsString,
    secret: bool,
}

/// An external program to run through the runner.
///
/// Defaults: [`Mode::Attached`], no time limit, 5 s grace between SIGTERM and SIGKILL,
/// stdout kept up to 16 MiB (the head), stderr up to 256 KiB (the tail), standard input
/// `/dev/null`, the environment inherited without `KUBECONFIG` and `HELM_*`.
#[derive(Debug, Clone)]
pub struct Command {
    pub(crate) program: PathBuf,
    args: Vec<Arg>,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) current_dir: Option<PathBuf>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) grace: Duration,
    pub(crate) stdout_limit: usize,
    pub(crate) stderr_limit: usize,
    pub(crate) mode: Mode,
    pub(crate) secrets: Vec<String>,
}

/// Variables never inherited from our environment (set them explicitly to pass them): a
/// user's `KUBECONFIG` or `HELM_*` settings must not redirect our kubectl or helm to another
/// cluster or release store.
pub(crate) fn stripped(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n == "KUBECONFIG" || n.starts_with("HELM_")
}

impl Command {
    /// Runs `program` (a path, or a bare name looked up on `PATH`).
    pub fn new(program: impl AsRef<Path>) -> Self {
        Command {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            timeout: None,
            grace: Duration::from_secs(5),
            stdout_limit: 16 << 20,
            stderr_limit: 256 << 10,
            mode: Mode::Attached,
            secrets: Vec::new(),
        }
    }

    /// Adds an argument, shown as given in errors (see [`secret_arg`](Self::secret_arg)).
    #[must_use]
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(Arg {
            value: a.into(),
            secret: false,
        });
        self
    }

    #[allow(missing_docs)]
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// Adds an argument that is shown as `[redacted]` in errors and logs, and removed from
    /// what the program prints to stderr.
    #[must_use]
    pub fn secret_arg(mut self, a: impl Into<String>) -> Self {
        let a = a.into();
        self.secrets.push(a.clone());
        self.args.push(Arg {
            value: a.into(),
            secret: true,
        });
        self
    }

    /// A string to redact wherever it appears in stderr (e.g. a password passed in a file).
    #[must_use]
    pub fn redact(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Sets an environment variable (also one of those stripped by default).
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs it in `dir`.
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Stops it (SIGTERM, the grace period, SIGKILL) when it runs longer than `limit`.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// How long it may take to stop after SIGTERM before SIGKILL (per tool: a helm killed
    /// outright can leave its release `pending-upgrade`).
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How many bytes of stdout (the first) and stderr (the last) are kept.
    #[must_use]
    pub fn output_limits(mut self, stdout: usize, stderr: usize) -> Self {
        self.stdout_limit = stdout;
        self.stderr_limit = stderr;
        self
    }

    /// Sets [`Mode::Daemon`]: for programs that leave a daemon behind (wg-quick).
    #[must_use]
    pub fn daemon(mut self) -> Self {
        self.mode = Mode::Daemon;
        self
    }

    /// Sets [`Mode::Foreground`]: for programs that talk to the user (`sudo -v`).
    #[must_use]
    pub fn foreground(mut self) -> Self {
        self.mode = Mode::Foreground;
        self
    }

    /// The program's name as shown.
    pub fn program_name(&self) -> String {
        self.program.display().to_string()
    }

    /// The arguments as given to the program.
    ///
    /// `sudo` outside [`Mode::Foreground`] always gets `-n` first: a password prompt from a
    /// background process group would stop the program (SIGTTIN) and hang the run. Ask for
    /// the password up front in the foreground (`sudo -v`) instead.
    pub(crate) fn real_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::with_capacity(self.args.len() + 1);
        if self.needs_non_interactive_sudo() {
            out.push("-n".into());
        }
        out.extend(self.args.iter().map(|a| a.value.clone()));
        out
    }

    fn needs_non_interactive_sudo(&self) -> bool {
        self.mode != Mode::Foreground
            && self.program.file_name().is_some_and(|n| n == "sudo")
            && !self
                .args
                .iter()
                .take_while(|a| a.value.to_string_lossy().starts_with('-'))
                .any(|a| {
                    let v = a.value.to_string_lossy();
                    v == "-n" || v == "--non-interactive"
                })
    }

    /// The arguments as shown in errors and logs: secret ones replaced, keys redacted.
    pub fn shown_args(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.args.len() + 1);
        if self.needs_non_interactive_sudo() {
            out.push("-n".to_owned());
        }
        out.extend(self.args.iter().map(|a| {
            if a.secret {
                "[redacted]".to_owned()
            } else {
                redact_with(&a.value.to_string_lossy(), &self.secrets)
            }
        }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudo_never_prompts_outside_the_foreground() {
        let c = Command::new("/usr/bin/sudo").args(["wg-quick", "up", "x"]);
        assert_eq!(c.real_args(), ["-n", "wg-quick", "up", "x"]);
        assert_eq!(c.shown_args(), ["-n", "wg-quick", "up", "x"]);
        let c = Command::new("sudo").args(["-n", "true"]);
        assert_eq!(c.real_args(), ["-n", "true"]);
        let c = Command::new("sudo").arg("-v").foreground();
        assert_eq!(c.real_args(), ["-v"]);
        let c = Command::new("not-sudo").arg("x");
        assert_eq!(c.real_args(), ["x"]);
    }

    #[test]
    fn secret_arguments_are_never_shown() {
        let c = Command::new("az")
            .args(["login", "--password"])
            .secret_arg("hunter2")
            .arg("--note=hunter2");
        assert_eq!(
            c.shown_args(),
            ["login", "--password", "[redacted]", "--note=[redacted]"]
        );
        assert_eq!(c.real_args()[2], "hunter2");
    }

    #[test]
    fn kubeconfig_and_helm_variables_are_stripped() {
        for (name, gone) in [
            ("KUBECONFIG", true),
            ("HELM_DRIVER", true),
            ("HELM_KUBECONTEXT", true),
            ("HOME", false),
            ("KUBECONFIG_EXTRA", false),
        ] {
            assert_eq!(stripped(name.as_ref()), gone, "{name}");
        }
    }
}
