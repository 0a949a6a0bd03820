//! [`ChildRecord`]: what a step journals about a child it started, so that the next run, after
//! a crash or a kill, can tell whether that child (or anything left in its process group) is
//! still running here, and wait for it or stop it before repairing.
//!
//! A pid alone is not enough: pids are reused. The record keeps the start time in clock
//! ticks since boot (`/proc/PID/stat` field 22) and the boot id, so a reused pid or a reboot
//! reads as "gone", and the host, so a record written on another machine reads as "cannot
//! tell" instead of touching an unrelated local process.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;
use serde::{Deserialize, Serialize};

use crate::error::human;
use crate::group::Target;
use crate::os;

/// A child as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct ChildRecord {
    /// The program as shown (no arguments: they may hold secrets).
    pub program: String,
    pub pid: u32,
    /// Its process group (its own pid for attached and daemon children).
    pub pgid: u32,
    /// Its session, when known: members of the group must share it.
    #[serde(default)]
    pub sid: Option<u32>,
    /// When it started, in clock ticks after boot (Linux); detects a reused pid.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// The machine it runs on.
    pub host: String,
    /// The boot it runs in (Linux); another boot means it is gone.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// Wall-clock start, seconds since the Unix epoch, for messages.
    #[serde(default)]
    pub started_unix: u64,
}

/// What became of a journaled child.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // fields named after what they hold
#[non_exhaustive]
pub enum ChildStatus {
    /// The child itself still runs here (same pid, same start time, same boot).
    Running,
    /// The child is gone, but processes of its group remain (e.g. a grandchild that ignored
    /// SIGTERM and did not get the parent-death signal, or everything under a `sudo`).
    GroupRemains { pids: Vec<u32> },
    /// Nothing of it remains here (or the machine rebooted since, or its pid was reused).
    Gone,
    /// It was started on another host: this machine cannot tell.
    OtherHost { host: String },
    /// This machine cannot tell (no `/proc`, unreadable boot id).
    Unknown { reason: String },
}

impl ChildStatus {
    /// Whether something of it may still be running here and can be stopped.
    pub fn is_alive(&self) -> bool {
        matches!(
            self,
            ChildStatus::Running | ChildStatus::GroupRemains { .. }
        )
    }
}

impl fmt::Display for ChildStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildStatus::Running => f.write_str("still running"),
            ChildStatus::GroupRemains { pids } => {
                write!(f, "exited, but processes it started still run (pids ")?;
                for (i, p) in pids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                f.write_str(")")
            }
            ChildStatus::Gone => f.write_str("no longer running"),
            ChildStatus::OtherHost { host } => {
                write!(f, "started on host {host}; this machine cannot tell")
            }
            ChildStatus::Unknown { reason } => write!(f, "cannot tell: {reason}"),
        }
    }
}

/// What [`ChildRecord::stop`] found and had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing of it was running here; no signal was sent.
    NothingRunning,
    /// It ended after SIGTERM, within the grace period.
    Terminated,
    /// It outlived the grace period and got SIGKILL.
    Killed,
}

/// A journaled child could not be dealt with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{program} (pid {pid}, process group {pgid}): {status}")]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct SettleError {
    pub program: String,
    pub pid: u32,
    pub pgid: u32,
    /// What is known about it.
    pub status: ChildStatus,
}

const POLL: Duration = Duration::from_millis(50);

impl ChildRecord {
    /// A record of the child `pid` leading the process group `pgid`, read now.
    pub(crate) fn read(program: String, pid: u32, pgid: u32) -> ChildRecord {
        let stat = os::stat(pid);
        ChildRecord {
            program,
            pid,
            pgid,
            sid: stat.map(|s| s.session),
            start_ticks: stat.map(|s| s.start_ticks),
            host: os::hostname(),
            boot_id: os::boot_id(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// What became of it, as seen from this machine now.
    pub fn status(&self) -> ChildStatus {
        let host = os::hostname();
        if self.host != host {
            return ChildStatus::OtherHost {
                host: self.host.clone(),
            };
        }
        let (Some(boot), Some(start)) = (&self.boot_id, self.start_ticks) else {
            return ChildStatus::Unknown {
                reason: "the record has no boot id or start time (not written on Linux)".into(),
            };
        };
        match os::boot_id() {
            Some(now) if now != *boot => return ChildStatus::Gone,
            Some(_) => {}
            None => {
                return ChildStatus::Unknown {
                    reason: "the boot id cannot be read".into(),
                };
            }
        }
        match os::stat(self.pid) {
            Some(l) if l.start_ticks == start && !l.is_zombie() => return ChildStatus::Running,
            // A group's number is never given to a new process while any member of the group
            // exists: if the leader's pid now belongs to another process, our group ended.
            Some(l) if l.start_ticks != start && self.pgid == self.pid => {
                return ChildStatus::Gone;
            }
            _ => {}
        }
        // A foreground child shares our own group: only its own pid counts.
        let ours = u32::try_from(rustix::process::getpgrp().as_raw_pid()).ok();
        if ours == Some(self.pgid) {
            return ChildStatus::Gone;
        }
        let members = match os::group_members(self.pgid) {
            Ok(m) => m,
            Err(e) => {
                return ChildStatus::Unknown {
                    reason: e.to_string(),
                };
            }
        };
        let pids: Vec<u32> = members
            .iter()
            .filter(|m| !m.is_zombie())
            .filter(|m| m.start_ticks >= start)
            .filter(|m| self.sid.is_none_or(|sid| m.session == sid))
            .map(|m| m.pid)
            .collect();
        if pids.is_empty() {
            ChildStatus::Gone
        } else {
            ChildStatus::GroupRemains { pids }
        }
    }

    /// Waits up to `limit` for it (and its group) to be gone; returns the last status.
    pub async fn wait_gone(&self, limit: Duration) -> ChildStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let s = self.status();
            if !s.is_alive() || tokio::time::Instant::now() >= deadline {
                return s;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops whatever of it still runs here: SIGTERM to its process group, up to `grace` for
    /// it to end, then SIGKILL. `on_stop` is told each stage (for the user).
    ///
    /// # Errors
    /// [`SettleError`] when it was started elsewhere or this machine cannot tell (nothing is
    /// signalled then), or when it still runs after SIGKILL.
    pub async fn stop(
        &self,
        grace: Duration,
        mut on_stop: impl FnMut(&str),
    ) -> Result<Stopped, SettleError> {
        let fail = |status| SettleError {
            program: self.program.clone(),
            pid: self.pid,
            pgid: self.pgid,
            status,
        };
        let status = self.status();
        match status {
            ChildStatus::Gone => return Ok(Stopped::NothingRunning),
            ChildStatus::Running | ChildStatus::GroupRemains { .. } => {}
            other => return Err(fail(other)),
        }
        let group = Target::Group(self.pgid);
        on_stop(&format!(
            "stopping {} left by an earlier run (process group {}, {status}): SIGTERM sent, \
             waiting up to {}",
            self.program,
            self.pgid,
            human(grace)
        ));
        group.signal(Signal::TERM);
        if !self.wait_gone(grace).await.is_alive() {
            return Ok(Stopped::Terminated);
        }
        on_stop(&format!(
            "{} (process group {}) did not stop within {}: SIGKILL sent",
            self.program,
            self.pgid,
            human(grace)
        ));
        // Re-check before killing: only a group that is still ours is signalled.
        if self.status().is_alive() {
            group.kill();
        }
        match self.wait_gone(Duration::from_secs(2)).await {
            s if s.is_alive() => Err(fail(s)),
            _ => Ok(Stopped::Killed),
        }
    }
}
