//! [`Running`]: a started child, its bounded output, and how it is waited for and stopped.
//!
//! # Guarantees
//! - Cancel (the `stop` future), timeout: SIGTERM to the child's process group, the grace
//!   period (the user is told through `on_stop`), SIGKILL to the group.
//! - A child that fails: whatever it left in its group is SIGKILLed.
//! - A child that succeeds: nothing is signalled (a daemon it started lives on).
//! - Dropping the future (or the [`Running`]) before the child succeeded SIGKILLs the group.
//! - Reading output never hangs on a grandchild that keeps the pipe open: after the child
//!   exits, the pipes are read for a bounded time only.

use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::time::Instant;

use crate::command::{Command, stripped};
use crate::error::{ProcessError, ProcessStatus, human, tail};
use crate::group::{Guard, Target};
use crate::mode::Mode;
use crate::record::ChildRecord;
use crate::redact::redact_with;
use crate::{os, spawner};

/// How long the pipes are still read after a successful child exited (a process it started
/// may hold them open; its output is then cut off, nothing is killed).
const EOF_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How long the pipes are still read after the group was killed.
const EOF_AFTER_KILL: Duration = Duration::from_millis(500);
/// Lines of stderr kept in an error.
const ERROR_LINES: usize = 12;

/// How a [`Command`] is run: here, beside the [`Running`] child and the [`Output`] it returns,
/// so that `command.rs` describes a program without depending on how children are run.
impl Command {
    /// Starts it. The child is stopped when the returned [`Running`] is dropped before it
    /// finished successfully.
    ///
    /// # Errors
    /// [`ProcessError`] with [`ProcessStatus::NotStarted`]
    /// when it cannot be started or there is no tokio runtime with IO enabled.
    pub async fn spawn(self) -> Result<Running, ProcessError> {
        Running::start(self).await
    }

    /// Runs it to completion.
    ///
    /// # Errors
    /// [`ProcessError`] if it cannot start, exits non-zero, is killed or times out.
    pub async fn run(self) -> Result<Output, ProcessError> {
        self.spawn().await?.wait().await
    }

    /// Runs it to completion unless `stop` completes first; then it is stopped gracefully
    /// (SIGTERM to its process group, the grace period, SIGKILL) and `on_stop` is told each
    /// stage so the user can be shown it.
    ///
    /// # Errors
    /// As [`Command::run`]; a stop gives [`ProcessStatus::Cancelled`].
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()>,
        on_stop: impl FnMut(&StopNotice),
    ) -> Result<Output, ProcessError> {
        self.spawn().await?.wait_until(stop, on_stop).await
    }
}

/// What a successful program printed.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// Standard output as printed (the caller's data: never logged), up to the limit.
    pub stdout: String,
    /// Standard error, redacted, its last bytes up to the limit.
    pub stderr: String,
    /// Bytes of stdout beyond the limit that were dropped (0: complete).
    pub stdout_dropped: u64,
    /// Bytes of stderr before the kept tail that were dropped.
    pub stderr_dropped: u64,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("stdout_bytes", &self.stdout.len())
            .field("stderr", &self.stderr)
            .field("stdout_dropped", &self.stdout_dropped)
            .field("stderr_dropped", &self.stderr_dropped)
            .finish()
    }
}

/// Why a child is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The caller's `stop` future completed (Ctrl-C, a failed watch).
    Cancelled,
    /// Its time limit passed.
    TimedOut(Duration),
}

/// Which stage of a stop was just taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopStage {
    /// SIGTERM was sent to the group; SIGKILL follows after the grace period.
    Terminating,
    /// The grace period passed: SIGKILL was sent to the group.
    Killing,
}

/// Told to the caller at each stage of a stop, to show the user (e.g. "stopping helm
/// (cancelled): SIGTERM sent, waiting up to 30 s").
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct StopNotice {
    pub program: String,
    /// Its pid (and process group).
    pub pid: u32,
    pub reason: StopReason,
    /// What was just done.
    pub stage: StopStage,
    /// How long SIGKILL waits after SIGTERM.
    pub grace: Duration,
}

impl fmt::Display for StopNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            StopReason::Cancelled => "cancelled".to_owned(),
            StopReason::TimedOut(d) => format!("no result within {}", human(d)),
        };
        match self.stage {
            StopStage::Terminating => write!(
                f,
                "stopping {} ({why}): SIGTERM sent, waiting up to {}",
                self.program,
                human(self.grace)
            ),
            StopStage::Killing => write!(
                f,
                "{} did not stop within {}: SIGKILL sent",
                self.program,
                human(self.grace)
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Head,
    Tail,
}

/// Reads one pipe into a bounded buffer.
struct Collector<R> {
    reader: Option<R>,
    buf: Vec<u8>,
    chunk: Vec<u8>,
    limit: usize,
    keep: Keep,
    dropped: u64,
}

impl<R: AsyncRead + Unpin> Collector<R> {
    fn new(reader: Option<R>, limit: usize, keep: Keep) -> Self {
        Collector {
            reader,
            buf: Vec::new(),
            chunk: vec![0; 16 << 10],
            limit,
            keep,
            dropped: 0,
        }
    }

    fn done(&self) -> bool {
        self.reader.is_none()
    }

    /// Reads one chunk (cancel-safe: a dropped read loses nothing).
    async fn fill(&mut self) {
        let Some(r) = self.reader.as_mut() else {
            return std::future::pending().await;
        };
        match r.read(&mut self.chunk).await {
            Ok(0) | Err(_) => self.reader = None,
            Ok(n) => {
                let data = &self.chunk[..n];
                match self.keep {
                    Keep::Head => {
                        let room = self.limit.saturating_sub(self.buf.len()).min(n);
                        self.buf.extend_from_slice(&data[..room]);
                        self.dropped += (n - room) as u64;
                    }
                    Keep::Tail => {
                        self.buf.extend_from_slice(data);
                        // Trim in batches so a chatty program costs linear time.
                        if self.buf.len() > self.limit.saturating_mul(2).max(64 << 10) {
                            self.trim();
                        }
                    }
                }
            }
        }
    }

    fn trim(&mut self) {
        if self.keep == Keep::Tail && self.buf.len() > self.limit {
            let cut = self.buf.len() - self.limit;
            self.buf.drain(..cut);
            self.dropped += cut as u64;
        }
    }

    fn finish(mut self) -> (String, u64) {
        self.trim();
        (
            String::from_utf8_lossy(&self.buf).into_owned(),
            self.dropped,
        )
    }
}

/// A started child. Dropping it before it finished successfully SIGKILLs its process group.
pub struct Running {
    child: Child,
    guard: Guard,
    out: Collector<ChildStdout>,
    err: Collector<ChildStderr>,
    record: ChildRecord,
    program: String,
    args: Vec<String>,
    secrets: Vec<String>,
    grace: Duration,
    timeout: Option<Duration>,
    started: Instant,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

enum End {
    Exited(std::io::Result<ExitStatus>),
    Stop(StopReason),
}

impl Running {
    pub(crate) async fn start(cmd: Command) -> Result<Running, ProcessError> {
        let program = cmd.program_name();
        let args = cmd.shown_args();
        let mut std_cmd = std::process::Command::new(&cmd.program);
        std_cmd.args(cmd.real_args());
        for (k, _) in std::env::vars_os() {
            if stripped(&k) {
                std_cmd.env_remove(&k);
            }
        }
        for (k, v) in &cmd.env {
            std_cmd.env(k, v);
        }
        if let Some(d) = &cmd.current_dir {
            std_cmd.current_dir(d);
        }
        if cmd.mode != Mode::Foreground {
            std_cmd
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        os::configure(&mut std_cmd, cmd.mode, rustix::process::getpid());
        let target = match cmd.mode {
            Mode::Foreground => Target::process,
            Mode::Attached | Mode::Daemon => Target::group,
        };
        tracing::debug!(program = %program, args = ?args, mode = ?cmd.mode, "starting");
        let spawned = spawner::spawn(tokio::process::Command::from(std_cmd), target)
            .await
            .map_err(|e| ProcessError {
                program: program.clone(),
                args: args.clone(),
                status: ProcessStatus::NotStarted(e.to_string()),
                stderr: String::new(),
            })?;
        let mut child = spawned.child;
        let pgid = match cmd.mode {
            Mode::Foreground => {
                u32::try_from(rustix::process::getpgrp().as_raw_pid()).unwrap_or(spawned.pid)
            }
            Mode::Attached | Mode::Daemon => spawned.pid,
        };
        let record = ChildRecord::read(program.clone(), spawned.pid, pgid);
        tracing::debug!(program = %program, pid = spawned.pid, "started");
        Ok(Running {
            out: Collector::new(child.stdout.take(), cmd.stdout_limit, Keep::Head),
            err: Collector::new(child.stderr.take(), cmd.stderr_limit, Keep::Tail),
            child,
            guard: spawned.guard,
            record,
            program,
            args,
            secrets: cmd.secrets,
            grace: cmd.grace,
            timeout: cmd.timeout,
            started: Instant::now(),
        })
    }

    /// What to journal about it (pid, process group, start time, host, boot id). A
    /// foreground child shares our process group, so only its own pid is ever checked.
    pub fn record(&self) -> &ChildRecord {
        &self.record
    }

    /// Its pid (also its process group, unless it runs in the foreground).
    pub fn pid(&self) -> u32 {
        self.record.pid
    }

    /// Waits for it to finish (stopping it only at its time limit).
    ///
    /// # Errors
    /// [`ProcessError`] if it exits non-zero, is killed or times out.
    pub async fn wait(self) -> Result<Output, ProcessError> {
        self.wait_until(std::future::pending(), |_| {}).await
    }

    /// Waits for it to finish unless `stop` completes first (see [`Command::run_until`]).
    ///
    /// # Errors
    /// [`ProcessError`] if it exits non-zero, is killed, times out or was stopped.
    pub async fn wait_until(
        mut self,
        stop: impl Future<Output = ()>,
        mut on_stop: impl FnMut(&StopNotice),
    ) -> Result<Output, ProcessError> {
        let mut stop = pin!(stop);
        let deadline = self.timeout.map(|t| self.started + t);
        let mut timer = pin!(async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        });
        let limit = self.timeout.unwrap_or_default();
        let ended = loop {
            let (child, out, err) = (&mut self.child, &mut self.out, &mut self.err);
            tokio::select! {
                r = child.wait() => break End::Exited(r),
                () = &mut stop => break End::Stop(StopReason::Cancelled),
                () = &mut timer => break End::Stop(StopReason::TimedOut(limit)),
                () = out.fill(), if !out.done() => {}
                () = err.fill(), if !err.done() => {}
            }
        };
        let status = match ended {
            End::Exited(r) => r,
            End::Stop(reason) => {
                let r = self.stop(reason, &mut on_stop).await;
                self.drain(EOF_AFTER_KILL).await;
                let status = match (reason, r) {
                    (_, Err(e)) => ProcessStatus::NotStarted(format!("waiting for it: {e}")),
                    (StopReason::Cancelled, Ok(_)) => ProcessStatus::Cancelled,
                    (StopReason::TimedOut(d), Ok(_)) => ProcessStatus::TimedOut(d),
                };
                return Err(self.fail(status));
            }
        };
        match status {
            Ok(s) if s.success() => {
                // Never signal a successful child's group: a daemon it started lives on.
                self.guard.disarm();
                if !self.drain(EOF_AFTER_EXIT).await {
                    tracing::warn!(
                        program = %self.program,
                        "a process it started still holds its output open; stopped reading after {}",
                        human(EOF_AFTER_EXIT)
                    );
                }
                let (stdout, stdout_dropped) = self.out.finish();
                let (stderr, stderr_dropped) = self.err.finish();
                let stderr = redact_with(&stderr, &self.secrets);
                tracing::debug!(program = %self.program, stdout_bytes = stdout.len(), "finished");
                tracing::trace!(program = %self.program, %stderr, "stderr");
                Ok(Output {
                    stdout,
                    stderr,
                    stdout_dropped,
                    stderr_dropped,
                })
            }
            Ok(s) => {
                // What a failed program left in its group goes with it.
                self.guard.signal(Signal::KILL);
                self.guard.disarm();
                self.drain(EOF_AFTER_KILL).await;
                use std::os::unix::process::ExitStatusExt;
                let st = match (s.code(), s.signal()) {
                    (Some(code), _) => ProcessStatus::Exited(code),
                    (None, Some(sig)) => ProcessStatus::Signaled(sig),
                    (None, None) => ProcessStatus::Exited(-1),
                };
                Err(self.fail(st))
            }
            Err(e) => {
                self.guard.signal(Signal::KILL);
                self.guard.disarm();
                Err(self.fail(ProcessStatus::NotStarted(format!("waiting for it: {e}"))))
            }
        }
    }

    /// SIGTERM to the group, up to the grace period for the child to exit, SIGKILL; then the
    /// rest of the group is killed too. Returns the child's exit status.
    async fn stop(
        &mut self,
        reason: StopReason,
        on_stop: &mut impl FnMut(&StopNotice),
    ) -> std::io::Result<ExitStatus> {
        let notice = |stage| StopNotice {
            program: self.program.clone(),
            pid: self.record.pid,
            reason,
            stage,
            grace: self.grace,
        };
        tracing::info!(program = %self.program, pid = self.record.pid, ?reason, "stopping");
        on_stop(&notice(StopStage::Terminating));
        self.guard.signal(Signal::TERM);
        let kill_at = Instant::now() + self.grace;
        let mut killed = false;
        let r = loop {
            let (child, out, err) = (&mut self.child, &mut self.out, &mut self.err);
            tokio::select! {
                r = child.wait() => break r,
                () = tokio::time::sleep_until(kill_at), if !killed => {
                    killed = true;
                    on_stop(&notice(StopStage::Killing));
                    self.guard.signal(Signal::KILL);
                }
                () = out.fill(), if !out.done() => {}
                () = err.fill(), if !err.done() => {}
            }
        };
        // Grandchildren that ignored SIGTERM must not outlive the stop.
        self.guard.signal(Signal::KILL);
        self.guard.disarm();
        r
    }

    /// Reads what is left in the pipes for at most `limit`; true when both reached EOF.
    async fn drain(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while !(self.out.done() && self.err.done()) {
            tokio::select! {
                () = self.out.fill(), if !self.out.done() => {}
                () = self.err.fill(), if !self.err.done() => {}
                () = tokio::time::sleep_until(until) => return false,
            }
        }
        true
    }

    fn fail(self, status: ProcessStatus) -> ProcessError {
        let (stderr, _) = self.err.finish();
        let stderr = tail(&redact_with(&stderr, &self.secrets), ERROR_LINES);
        tracing::debug!(program = %self.program, %status, "failed");
        ProcessError {
            program: self.program,
            args: self.args,
            status,
            stderr,
        }
    }
}
