//! Running commands from test code: failures panic with the command line and its output.

use std::process::{Command, Output};

/// Runs `program args…`, returning its output whatever its status.
pub fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"))
}

/// Runs `program args…`; `Ok(stdout)` on success, `Err(stdout+stderr)` otherwise.
pub fn try_run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = output(program, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}{}",
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `program args…` and panics on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    try_run(program, args).unwrap_or_else(|e| panic!("{e}"))
}

/// `sh -c script`, panicking on failure.
pub fn sh(script: &str) -> String {
    run("sh", &["-c", script])
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Sends SIGKILL to `pid` (ignoring a pid that is already gone).
pub fn kill(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// Sends SIGTERM to `pid`.
pub fn terminate(pid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::TERM);
    }
}

/// Waits up to `secs` for `cond`, polling every 50 ms.
pub fn wait_for(secs: f64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The wireguard-go process serving `iface` in this network namespace.
pub fn find_wireguard_go(iface: &str) -> Option<i32> {
    let my_net = std::fs::read_link("/proc/self/ns/net").ok()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        if comm.trim() != "wireguard-go" {
            return None;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let last = cmdline
            .split(|b| *b == 0)
            .rfind(|a| !a.is_empty())?
            .to_vec();
        let net = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
        (last == iface.as_bytes() && net == my_net && alive(pid)).then_some(pid)
    })
}
