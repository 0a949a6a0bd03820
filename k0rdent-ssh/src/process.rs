//! Shelling out: one [`ProcessError`] for every external program (wg-quick, wireguard-go,
//! `ip`), naming the command, its exit status and its (redacted) stderr.

use std::fmt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How a program ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessStatus {
    /// It could not be started (not installed, not executable).
    NotStarted(String),
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled,
    /// It did not finish in time and was killed.
    TimedOut(Duration),
}

impl fmt::Display for ProcessStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessStatus::NotStarted(e) => write!(f, "could not be started ({e})"),
            ProcessStatus::Exited(code) => write!(f, "exited with status {code}"),
            ProcessStatus::Signaled => f.write_str("was killed by a signal"),
            ProcessStatus::TimedOut(d) => write!(f, "did not finish within {} s", d.as_secs()),
        }
    }
}

/// A failed external command: program, arguments, status and redacted stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` {status}{}", self.command_line(), stderr_suffix(&self.stderr))]
pub struct ProcessError {
    /// The program as invoked.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// How it ended.
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

    /// Whether the program is missing.
    pub fn not_installed(&self) -> bool {
        matches!(self.status, ProcessStatus::NotStarted(_))
    }
}

/// What a successful command printed.
#[derive(Debug, Clone, Default)]
pub struct ProcessOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error (redacted).
    pub stderr: String,
}

/// Runs `program args` to completion within `timeout`, capturing stdout and stderr.
///
/// # Errors
/// [`ProcessError`] if it cannot start, exits non-zero, is killed or times out.
pub async fn run(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<ProcessOutput, ProcessError> {
    let shown = program.display().to_string();
    let fail = |status: ProcessStatus, stderr: String| ProcessError {
        program: shown.clone(),
        args: args.to_vec(),
        status,
        stderr,
    };
    tracing::debug!(program = %shown, ?args, "running");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .map_err(|e| fail(ProcessStatus::NotStarted(e.to_string()), String::new()))?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(fail(
                ProcessStatus::NotStarted(e.to_string()),
                String::new(),
            ));
        }
        Err(_) => return Err(fail(ProcessStatus::TimedOut(timeout), String::new())),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = redact(&String::from_utf8_lossy(&out.stderr));
    tracing::trace!(program = %shown, %stdout, %stderr, "finished");
    if out.status.success() {
        return Ok(ProcessOutput { stdout, stderr });
    }
    let status = match out.status.code() {
        Some(code) => ProcessStatus::Exited(code),
        None => ProcessStatus::Signaled,
    };
    Err(fail(status, tail(&stderr, 12)))
}

/// Keeps the last `n` non-empty lines.
fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Replaces anything that looks like a WireGuard key (44 base64 characters ending in `=`) and
/// the value of any `PrivateKey`/`private_key` assignment with `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let lower = line.to_ascii_lowercase();
        if let Some(pos) = lower
            .find("privatekey")
            .or_else(|| lower.find("private_key"))
            .or_else(|| lower.find("private-key"))
        {
            out.push_str(&line[..pos]);
            out.push_str("[redacted]");
            continue;
        }
        out.push_str(&redact_keys(line));
    }
    out
}

fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

fn redact_keys(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if is_b64(chars[i]) && (i == 0 || !is_b64(chars[i - 1])) {
            let mut j = i;
            while j < chars.len() && is_b64(chars[j]) {
                j += 1;
            }
            if j - i == 43 && chars.get(j) == Some(&'=') {
                out.push_str("[redacted]");
                i = j + 1;
                continue;
            }
            out.extend(&chars[i..j]);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_private_key_lines_are_redacted() {
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        let text = format!("peer {key} endpoint\nPrivateKey = {key}\nplain line");
        let r = redact(&text);
        assert!(!r.contains(key), "{r}");
        assert_eq!(r, "peer [redacted] endpoint\n[redacted]\nplain line");
    }

    #[test]
    fn ordinary_words_survive_redaction() {
        let t = "wg-quick: `wgk0abc' already exists";
        assert_eq!(redact(t), t);
    }

    #[tokio::test]
    async fn failures_name_the_command_status_and_stderr() {
        let e = run(
            Path::new("sh"),
            &["-c".into(), "echo nope >&2; exit 3".into()],
            &[],
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, ProcessStatus::Exited(3));
        assert_eq!(
            e.to_string(),
            "`sh -c echo nope >&2; exit 3` exited with status 3: nope"
        );
        let e = run(
            Path::new("/nonexistent/prog"),
            &[],
            &[],
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(e.not_installed(), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_program_times_out() {
        let e = run(
            Path::new("sleep"),
            &["5".into()],
            &[],
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
        assert!(matches!(e.status, ProcessStatus::TimedOut(_)), "{e}");
    }
}
