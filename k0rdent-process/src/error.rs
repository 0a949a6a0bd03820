//! [`ProcessError`]: one error for every external program, naming the command line (secrets
//! redacted), how it ended and the last lines of its (redacted) standard error.

use std::fmt;
use std::time::Duration;

/// How a program ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessStatus {
    /// It could not be started (not installed, not executable, no runtime).
    NotStarted(String),
    /// It exited with this code.
    Exited(i32),
    /// This signal killed it (not one the runner sent).
    Signaled(i32),
    /// It did not finish within its time limit and was stopped (SIGTERM, then SIGKILL).
    TimedOut(Duration),
    /// The caller asked it to stop (cancellation, a failed watch) and it was stopped.
    Cancelled,
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessStatus::NotStarted(e) => write!(f, "could not be started ({e})"),
            ProcessStatus::Exited(code) => write!(f, "exited with status {code}"),
            ProcessStatus::Signaled(sig) => write!(f, "was killed by signal {sig}"),
            ProcessStatus::TimedOut(d) => write!(f, "did not finish within {}", human(*d)),
            ProcessStatus::Cancelled => f.write_str("was stopped because the work was cancelled"),
        }
    }
}

/// `1.5 s`, `30 s`, `250 ms`: durations as people read them.
pub(crate) fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A failed external command: program, arguments (secrets redacted), status and the last
/// lines of its redacted standard error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` {status}{}", self.command_line(), stderr_suffix(&self.stderr))]
pub struct ProcessError {
    /// The program as invoked.
    pub program: String,
    /// Its arguments, with secret ones replaced by `[redacted]`.
    pub args: Vec<String>,
    /// How it ended, or that it never started.
    pub status: ProcessStatus,
    /// Its standard error, with key material redacted and cut to the last few lines.
    pub stderr: String,
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

impl ProcessError {
    /// `program arg1 arg2 …` for messages.
    pub fn command_line(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Whether the program is missing (or could not be started at all).
    pub fn not_installed(&self) -> bool {
        matches!(self.status, ProcessStatus::NotStarted(_))
    }

    /// The command a script could not find (`…: readlink: command not found`, a shell's exit
    /// status 127): what must be installed or put on `PATH`.
    pub fn missing_command(&self) -> Option<&str> {
        self.stderr.lines().find_map(|l| {
            let before = l.strip_suffix(": command not found")?;
            before.rsplit(": ").next().map(str::trim)
        })
    }

    /// Whether it was stopped because the caller cancelled it.
    pub fn cancelled(&self) -> bool {
        self.status == ProcessStatus::Cancelled
    }

    /// Whether it ran out of time.
    pub fn timed_out(&self) -> bool {
        matches!(self.status, ProcessStatus::TimedOut(_))
    }
}

/// Keeps the last `n` non-empty lines.
pub(crate) fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_command_status_and_stderr() {
        let e = ProcessError {
            program: "helm".into(),
            args: vec!["upgrade".into(), "[redacted]".into()],
            status: ProcessStatus::TimedOut(Duration::from_secs(30)),
            stderr: "Error: context deadline exceeded".into(),
        };
        assert_eq!(
            e.to_string(),
            "`helm upgrade [redacted]` did not finish within 30 s: Error: context deadline exceeded"
        );
        assert!(e.timed_out() && !e.cancelled() && !e.not_installed());
    }

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n \nd\n", 2), "c\nd");
        assert_eq!(human(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
    }

    #[test]
    fn a_script_without_a_command_names_it() {
        let e = |stderr: &str| ProcessError {
            program: "/usr/bin/wg-quick".into(),
            args: vec!["up".into()],
            status: ProcessStatus::Exited(127),
            stderr: stderr.into(),
        };
        let bash = e("/usr/bin/wg-quick: line 11: readlink: command not found");
        assert_eq!(bash.missing_command(), Some("readlink"));
        assert_eq!(
            e("sh: 1: wg: command not found").missing_command(),
            Some("wg")
        );
        assert_eq!(e("Unable to access interface").missing_command(), None);
    }
}
