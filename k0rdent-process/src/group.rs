//! Signalling a child's process group, and the guard that kills it when the future that owns
//! it is dropped before the child finished successfully.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{Pid, Signal};

/// What a signal goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Every process in the group (attached and daemon children lead their own group).
    Group(u32),
    /// One process (a foreground child shares our group).
    Process(u32),
}

impl Target {
    pub(crate) fn group(pid: u32) -> Target {
        Target::Group(pid)
    }

    pub(crate) fn process(pid: u32) -> Target {
        Target::Process(pid)
    }

    /// Sends `sig`; a target that no longer exists is not an error.
    pub(crate) fn signal(self, sig: Signal) {
        let raw = match self {
            Target::Group(p) | Target::Process(p) => i32::try_from(p).ok(),
        };
        let Some(pid) = raw.and_then(Pid::from_raw) else {
            return;
        };
        // Never signal init or our own group by mistake.
        if pid.is_init() || (matches!(self, Target::Group(_)) && pid == rustix::process::getpgrp())
        {
            return;
        }
        let r = match self {
            Target::Group(_) => rustix::process::kill_process_group(pid, sig),
            Target::Process(_) => rustix::process::kill_process(pid, sig),
        };
        if let Err(e) = r
            && e != rustix::io::Errno::SRCH
        {
            tracing::debug!(target = ?self, error = %e, "could not signal");
        }
    }

    pub(crate) fn kill(self) {
        self.signal(Signal::KILL);
    }
}

/// Groups of children that are running now, for [`kill_all_now`].
static LIVE: Mutex<BTreeMap<u64, Target>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

/// SIGKILLs every child (and its process group) that the runner started and that has not
/// finished yet. For the last moment before the process exits without unwinding (a second
/// Ctrl-C): futures are not dropped then, so their guards would not run.
pub fn kill_all_now() {
    let live = match LIVE.lock() {
        Ok(l) => l.values().copied().collect::<Vec<_>>(),
        Err(p) => p.into_inner().values().copied().collect(),
    };
    for t in live {
        t.kill();
    }
}

/// Kills its target with SIGKILL when dropped while armed.
#[derive(Debug)]
pub(crate) struct Guard {
    target: Target,
    token: u64,
    armed: bool,
}

impl Guard {
    pub(crate) fn new(target: Target) -> Guard {
        let token = NEXT.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = LIVE.lock() {
            l.insert(token, target);
        }
        Guard {
            target,
            token,
            armed: true,
        }
    }

    pub(crate) fn signal(&self, sig: Signal) {
        if self.armed {
            self.target.signal(sig);
        }
    }

    /// The child finished and is dealt with: never signal it again (its pid may be reused).
    pub(crate) fn disarm(&mut self) {
        if self.armed {
            self.armed = false;
            if let Ok(mut l) = LIVE.lock() {
                l.remove(&self.token);
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.armed {
            tracing::debug!(target = ?self.target, "dropped before it finished: SIGKILL");
            self.target.kill();
            self.disarm();
        }
    }
}
