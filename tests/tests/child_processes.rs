//! External tools run by a step, through the real CLI, engine and store over the fake world
//! (`k0rdent_tests::fake_world`): a stand-in child that ignores SIGTERM and forks a grandchild
//! that ignores it too and holds the output pipe. After a SIGKILL of the CLI the child dies
//! within 1 s (parent-death signal) and the next run stops the grandchild by its journaled
//! process group (unless the journal says another host: then it blocks and signals nothing);
//! after a time limit, a failed watch or Ctrl-C both are gone and nothing hangs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use k0rdent_core::{FileStore, StepId};
use k0rdent_process::ChildRecord;
use k0rdent_tests::fake_world::{self, CHILD_KEY};
use k0rdent_tests::lab::cmd::{alive, kill, wait_for};

/// How long a stopped run may take to exit: holds with the engine's 10 s grace for a
/// cancelled step as well as with the 2 s (watch interval + 2 s) it is moving to.
const NOTHING_HANGS: Duration = Duration::from_secs(15);

fn fake(state: &Path, child_step: Option<&str>) -> Command {
    let mut c = fake_world::command(Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")), state, 0);
    if let Some(step) = child_step {
        c.env("FAKE_CHILD_STEP", step)
            .env("FAKE_CHILD_GRACE_MS", "1000");
    }
    c
}

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Waits for the CLI to exit within `limit` (killing it and failing the test otherwise).
fn finish_within(child: Child, limit: Duration) -> (i32, String, String, Duration) {
    let pid = i32::try_from(child.id()).unwrap();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let (code, stdout, stderr) = text(&out);
            (code, stdout, stderr, started.elapsed())
        }
        Err(_) => {
            kill(pid);
            panic!("the CLI did not exit within {limit:?}");
        }
    }
}

fn read_pid(path: &Path) -> i32 {
    assert!(
        wait_for(20.0, || std::fs::read_to_string(path)
            .is_ok_and(|s| s.ends_with('\n'))),
        "{} never appeared",
        path.display()
    );
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The stand-in's pids once it runs: (child, grandchild).
fn stand_in(state: &Path) -> (i32, i32) {
    let dir = state.join("child");
    (
        read_pid(&dir.join("child.pid")),
        read_pid(&dir.join("grandchild.pid")),
    )
}

fn pgid_of(pid: i32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = s.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn step() -> StepId {
    StepId::parse("prepare_deployment").unwrap()
}

/// The child journaled by the step, as the state file has it.
fn journaled_child(state: &Path) -> Option<ChildRecord> {
    let s = FileStore::new(state).load_sync().ok()??;
    s.record(&step())?.journal.latest_as(CHILD_KEY)
}

/// Rewrites the journaled child's host (as if the run had been on another machine).
fn set_journaled_host(state: &Path, host: &str) {
    let store = FileStore::new(state);
    let mut s = store.load_sync().unwrap().unwrap();
    let entry = s
        .record_mut(&step())
        .journal
        .0
        .iter_mut()
        .rev()
        .find(|e| e.key == CHILD_KEY)
        .unwrap();
    entry.value["host"] = serde_json::Value::from(host);
    store.save_sync(&mut s).unwrap();
}

fn both_gone(child: i32, grandchild: i32) -> bool {
    wait_for(1.0, || !alive(child) && !alive(grandchild))
}

#[test]
fn after_sigkill_of_the_cli_the_child_is_gone_within_1s_and_the_next_run_stops_the_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cli = fake(s, Some("prepare_deployment"))
        .arg("deploy")
        .spawn()
        .unwrap();
    let (child, grandchild) = stand_in(s);
    assert!(wait_for(20.0, || journaled_child(s).is_some()));
    let record = journaled_child(s).unwrap();
    assert_eq!(i64::from(record.pid), i64::from(child));
    assert_eq!(pgid_of(grandchild), record.pgid, "one process group");

    cli.kill().unwrap();
    let killed = Instant::now();
    cli.wait().unwrap();
    assert!(
        wait_for(1.0, || !alive(child)),
        "the child outlived the CLI by more than 1 s"
    );
    println!("child gone {:?} after the CLI's SIGKILL", killed.elapsed());
    assert!(
        alive(grandchild),
        "the grandchild has no parent-death signal (only the journal can find it)"
    );

    // Journaled on another host: this machine cannot tell, so the run blocks and signals
    // nothing.
    let host = record.host.clone();
    set_journaled_host(s, "build-agent-7");
    let (code, _, err) = text(&fake(s, None).arg("deploy").output().unwrap());
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("started on host build-agent-7; this machine cannot tell"),
        "{err}"
    );
    assert!(err.contains("run the command on build-agent-7"), "{err}");
    assert!(alive(grandchild), "nothing was signalled");

    // Back on this host: the next run stops the grandchild by its journaled process group,
    // shows the grace period, then does its work.
    set_journaled_host(s, &host);
    let (code, out, err) = text(&fake(s, None).arg("deploy").output().unwrap());
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&format!(
            "prepare_deployment: stopping sh left by an earlier run (process group {}, exited, \
             but processes it started still run (pids {grandchild})): SIGTERM sent, waiting up to 1 s",
            record.pgid
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "sh (process group {}) did not stop within 1 s: SIGKILL sent",
            record.pgid
        )),
        "{err}"
    );
    assert!(!alive(grandchild), "the grandchild was stopped");
    assert!(out.contains("Deployment converged."), "{out}");
}

#[test]
fn when_the_step_runs_out_of_time_child_and_grandchild_are_gone_and_nothing_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let cli = fake(s, Some("prepare_deployment"))
        .env("FAKE_STEP_TIMEOUT_MS", "1500")
        .arg("deploy")
        .spawn()
        .unwrap();
    let (child, grandchild) = stand_in(s);
    let (code, out, err, took) = finish_within(cli, NOTHING_HANGS);
    println!("exited {took:?} after the stand-in started");
    assert_eq!(code, 1, "{out}{err}");
    // The time limit asks the step to stop: the tool gets SIGTERM and its grace first, and
    // the step (a tool that must not simply be started again) is not retried.
    assert!(
        err.contains("stopping sh (cancelled): SIGTERM sent, waiting up to 1 s"),
        "{err}"
    );
    assert!(
        err.contains("did not finish within 1 s; it is not started again in this run"),
        "{err}"
    );
    assert!(
        both_gone(child, grandchild),
        "child {child} or grandchild {grandchild} survived the time limit"
    );
}

#[test]
fn when_a_watched_gate_fails_the_child_gets_sigterm_then_sigkill_and_nothing_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let cli = fake(s, Some("prepare_deployment"))
        .arg("deploy")
        .spawn()
        .unwrap();
    let (child, grandchild) = stand_in(s);
    std::fs::write(s.join("child/watch-fails"), b"").unwrap();
    let (code, out, err, took) = finish_within(cli, NOTHING_HANGS);
    println!("exited {took:?} after the watched gate started failing");
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains(
            "prepare_deployment: stopping sh (cancelled): SIGTERM sent, waiting up to 1 s"
        ),
        "{err}"
    );
    assert!(
        err.contains("prepare_deployment: sh did not stop within 1 s: SIGKILL sent"),
        "{err}"
    );
    assert!(
        both_gone(child, grandchild),
        "child {child} or grandchild {grandchild} survived the failed watch"
    );
}

#[test]
fn on_ctrl_c_the_child_is_stopped_with_its_grace_period_shown_and_the_run_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let cli = fake(s, Some("prepare_deployment"))
        .arg("deploy")
        .spawn()
        .unwrap();
    let (child, grandchild) = stand_in(s);
    let pid = rustix::process::Pid::from_raw(i32::try_from(cli.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let (code, out, err, took) = finish_within(cli, NOTHING_HANGS);
    println!("exited {took:?} after Ctrl-C");
    assert_eq!(code, 130, "{out}{err}");
    assert!(
        err.contains("stopping sh (cancelled): SIGTERM sent, waiting up to 1 s"),
        "{err}"
    );
    assert!(both_gone(child, grandchild));
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_takes_the_tools_whole_group_with_it() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cli = fake(s, Some("prepare_deployment"))
        .env("FAKE_CHILD_GRACE_MS", "10000")
        .arg("deploy")
        .spawn()
        .unwrap();
    let (child, grandchild) = stand_in(s);
    let stderr = cli.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let pid = rustix::process::Pid::from_raw(i32::try_from(cli.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    // The first Ctrl-C started the graceful stop (a 10 s grace)…
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the stop was announced");
        if line.contains("stopping sh (cancelled): SIGTERM sent, waiting up to 10 s") {
            break;
        }
    }
    // …the second one does not wait for it, and leaves nothing of the tool running.
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let asked = Instant::now();
    let (code, _, _, _) = finish_within(cli, Duration::from_secs(3));
    assert_eq!(code, 130);
    println!("exited {:?} after the second Ctrl-C", asked.elapsed());
    assert!(
        both_gone(child, grandchild),
        "child {child} or grandchild {grandchild} outlived the second Ctrl-C"
    );
}
