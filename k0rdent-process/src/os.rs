//! Everything that differs between Linux and macOS, in one place: what the child does between
//! `fork` and `exec` (its own process group, or its own session for daemons; on Linux the
//! parent-death signal), and how a journaled process is recognised later (`/proc` on Linux:
//! start time in clock ticks since boot, process group, session; the boot id).

use std::io;
use std::process::Command as StdCommand;

use rustix::process::Pid;

use crate::mode::Mode;

/// Prepares `cmd` for `mode`. `parent` is this process's pid, taken before the fork: the child
/// checks it after setting the parent-death signal, because a parent that died between `fork`
/// and `prctl` never sends it.
///
/// - [`Mode::Attached`]: its own process group (so the group can be signalled as a whole and a
///   terminal's Ctrl-C does not reach it); on Linux `PR_SET_PDEATHSIG=SIGKILL`.
/// - [`Mode::Daemon`]: its own session (no controlling terminal, so no SIGHUP or Ctrl-C from
///   it later) and no parent-death signal: what it leaves running must outlive us.
/// - [`Mode::Foreground`]: stays in our process group (it may use the terminal, e.g. to ask
///   for a password); on Linux the parent-death signal.
#[allow(unsafe_code)]
pub(crate) fn configure(cmd: &mut StdCommand, mode: Mode, parent: Pid) {
    use std::os::unix::process::CommandExt;
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
    match mode {
        Mode::Attached => {
            cmd.process_group(0);
            #[cfg(target_os = "linux")]
            // SAFETY: the closure runs in the forked child before exec, where only
            // async-signal-safe operations are allowed. It makes two raw system calls
            // (prctl, getppid) through rustix, allocates nothing, takes no lock and touches
            // no state shared with other threads; its errors are built from raw errno values
            // without allocating.
            unsafe {
                cmd.pre_exec(move || die_with_parent(parent));
            }
        }
        Mode::Foreground => {
            #[cfg(target_os = "linux")]
            // SAFETY: as for `Mode::Attached`: two raw system calls, no allocation, no lock.
            unsafe {
                cmd.pre_exec(move || die_with_parent(parent));
            }
        }
        Mode::Daemon => {
            // SAFETY: `setsid` is a single async-signal-safe system call; nothing is allocated
            // or locked, and the error is built from the raw errno value.
            unsafe {
                cmd.pre_exec(|| {
                    rustix::process::setsid()
                        .map(drop)
                        .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))
                });
            }
        }
    }
}

/// In the forked child: SIGKILL when the spawning thread exits, and exit now if our parent
/// already died (it would never send the signal).
#[cfg(target_os = "linux")]
fn die_with_parent(parent: Pid) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| io::Error::from_raw_os_error(e.raw_os_error()))?;
    if rustix::process::getppid() != Some(parent) {
        // Returning an error makes the child exit before exec (std reports it to a parent
        // that is no longer there).
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::SRCH.raw_os_error(),
        ));
    }
    Ok(())
}

/// This machine's host name.
pub(crate) fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Whether our standard input is a terminal whose foreground process group is ours: only then
/// may a program ask the user something (from a background group it would be stopped).
pub fn terminal_is_ours() -> bool {
    let stdin = std::io::stdin();
    rustix::termios::isatty(&stdin)
        && rustix::termios::tcgetpgrp(&stdin).is_ok_and(|g| g == rustix::process::getpgrp())
}

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) pid: u32,
    /// `R`, `S`, `Z`, …
    pub(crate) state: char,
    pub(crate) pgrp: u32,
    pub(crate) session: u32,
    /// Clock ticks after boot at which it started (field 22).
    pub(crate) start_ticks: u64,
}

impl ProcStat {
    pub(crate) fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the text of `/proc/PID/stat` (the command name may contain spaces and parentheses,
/// so fields are counted after the last `)`).
pub(crate) fn parse_stat(pid: u32, text: &str) -> Option<ProcStat> {
    let (_, rest) = text.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        pid,
        state: f.first()?.chars().next()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start_ticks: f.get(19)?.parse().ok()?,
    })
}

/// The boot id (a random UUID per boot).
#[cfg(target_os = "linux")]
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The process `pid`, if it exists.
#[cfg(target_os = "linux")]
pub(crate) fn stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Why a process group's members cannot be listed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GroupError {
    /// `/proc` cannot be listed.
    #[cfg(target_os = "linux")]
    #[error("/proc: {0}")]
    Proc(#[source] io::Error),
    /// There is no `/proc` here.
    #[cfg(not(target_os = "linux"))]
    #[error("process groups cannot be inspected on this platform")]
    Unsupported,
}

/// Every process (zombies included) whose process group is `pgid`.
///
/// # Errors
/// [`GroupError::Proc`] when `/proc` cannot be listed.
#[cfg(target_os = "linux")]
pub(crate) fn group_members(pgid: u32) -> Result<Vec<ProcStat>, GroupError> {
    let dir = std::fs::read_dir("/proc").map_err(GroupError::Proc)?;
    Ok(dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .filter(|s| s.pgrp == pgid)
        .collect())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn boot_id() -> Option<String> {
    None
}

/// Without `/proc`, only existence can be told (no start time): callers treat a live pid as
/// "cannot tell".
#[cfg(not(target_os = "linux"))]
pub(crate) fn stat(_pid: u32) -> Option<ProcStat> {
    None
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn group_members(_pgid: u32) -> Result<Vec<ProcStat>, GroupError> {
    Err(GroupError::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "4242 (a (weird) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(4242, text).unwrap();
        assert_eq!(
            s,
            ProcStat {
                pid: 4242,
                state: 'S',
                pgrp: 4240,
                session: 4240,
                start_ticks: 987_654
            }
        );
        assert!(parse_stat(1, "garbage").is_none());
    }

    /// The negative control for the spawner thread: a child forked directly on a short-lived
    /// thread with the same setup is SIGKILLed when that thread exits. (Through the runner it
    /// survives: `a_child_spawned_while_the_spawning_thread_exits_survives_it`.)
    #[cfg(target_os = "linux")]
    #[test]
    fn the_parent_death_signal_follows_the_forking_thread() {
        let child = std::thread::spawn(|| {
            let mut cmd = StdCommand::new("sleep");
            cmd.arg("600");
            configure(&mut cmd, Mode::Attached, rustix::process::getpid());
            cmd.spawn().unwrap()
        })
        .join()
        .unwrap();
        let pid = child.id();
        let mut child = child;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(9),
            "child {pid} was not SIGKILLed when its forking thread exited"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_found_in_its_own_group() {
        let me = std::process::id();
        let s = stat(me).unwrap();
        assert!(!s.is_zombie());
        let members = group_members(s.pgrp).unwrap();
        assert!(members.iter().any(|m| m.pid == me), "{members:?}");
        assert!(boot_id().is_some_and(|b| b.len() == 36));
    }
}
