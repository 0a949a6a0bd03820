//! Issue #7, must show 4, with real processes and real signals: the `fake-k0rdent` binary
//! (the real CLI, engine and file store over the file-backed fake world) gets SIGINT during a
//! slow observation, during a gate wait and during a retry back-off, and exits 130 within 2 s
//! each; a second SIGINT against a step that ignores cancellation exits within 1 s with its
//! message, and the state still loads. SIGTERM is handled like the first Ctrl-C. Each signal
//! is sent when the run is seen (on its JSON event stream or in its state file) to be in the
//! wait in question, never after a guessed sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn fake(state: &Path) -> Command {
    k0rdent_tests::fake_world::command(Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")), state, 0)
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {}", child.id());
}

/// A run with `-o json`, its stdout event stream read line by line.
struct Run {
    child: Child,
    events: mpsc::Receiver<serde_json::Value>,
    stderr: std::thread::JoinHandle<String>,
}

impl Run {
    fn start(mut cmd: Command) -> Run {
        let mut child = cmd.args(["-o", "json", "deploy"]).spawn().unwrap();
        let (tx, events) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut err, &mut s);
            s
        });
        Run {
            child,
            events,
            stderr,
        }
    }

    /// Waits for the first event `is` accepts (bounded: a run that never gets there fails).
    fn wait_for(&self, what: &str, is: impl Fn(&serde_json::Value) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if is(&v) => return,
                Ok(_) => {}
                Err(_) => panic!("the run never reached: {what}"),
            }
        }
    }

    /// Waits for the exit; returns the code, the time since `since` and stderr.
    fn exit(mut self, since: Instant) -> (i32, Duration, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the run did not exit");
            std::thread::sleep(Duration::from_millis(5));
        };
        let took = since.elapsed();
        let err = self.stderr.join().unwrap();
        (status.code().unwrap_or(-1), took, err)
    }
}

fn state_show(s: &Path) -> serde_json::Value {
    let o = fake(s)
        .args(["-o", "json", "state", "show"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "the state loads: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

fn assert_recorded_interrupted(s: &Path) {
    let v = state_show(s);
    assert_eq!(v["state"]["run"]["outcome"], "interrupted", "{v}");
}

/// Sends `sig` and checks the run exits 130 within 2 s with the interruption recorded.
fn interrupt_within_2_s(run: Run, sig: &str, s: &Path) {
    signal(&run.child, sig);
    let asked = Instant::now();
    let (code, took, err) = run.exit(asked);
    assert_eq!(code, 130, "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}: {err}");
    assert_recorded_interrupted(s);
}

fn event_is(v: &serde_json::Value, event: &str) -> bool {
    v["event"] == event
}

#[test]
fn sigint_during_a_slow_observation_exits_130_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cmd = fake(s);
    cmd.env("FAKE_OBSERVE_DELAY_MS", "60000");
    let run = Run::start(cmd);
    // The run record is saved right before the first observation starts.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.join("deployment-state.yaml").exists() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let v = state_show(s);
    assert!(
        v["state"]["run"]["outcome"].is_null(),
        "still observing: {v}"
    );
    interrupt_within_2_s(run, "-INT", s);
    assert!(
        !s.join("world").exists(),
        "nothing was done from a half observation"
    );
}

#[test]
fn sigint_during_a_gate_wait_exits_130_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cmd = fake(s);
    cmd.env("FAKE_GATE_WAIT", "1");
    let run = Run::start(cmd);
    run.wait_for("a gate wait", |v| event_is(v, "gate_waiting"));
    interrupt_within_2_s(run, "-INT", s);
}

#[test]
fn sigint_during_a_retry_back_off_exits_130_within_2_s() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cmd = fake(s);
    cmd.env("FAKE_TRANSIENT", "1");
    let run = Run::start(cmd);
    run.wait_for("a back-off of minutes", |v| {
        event_is(v, "step_retrying") && v["delay_ms"].as_u64().unwrap_or(0) >= 60_000
    });
    interrupt_within_2_s(run, "-INT", s);
    let v = state_show(s);
    assert_eq!(
        v["state"]["phases"]["setup_network"]["status"], "in_progress",
        "it resumes next run: {v}"
    );
}

#[test]
fn sigterm_is_handled_like_the_first_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cmd = fake(s);
    cmd.env("FAKE_GATE_WAIT", "1");
    let run = Run::start(cmd);
    run.wait_for("a gate wait", |v| event_is(v, "gate_waiting"));
    interrupt_within_2_s(run, "-TERM", s);
}

#[test]
fn a_second_sigint_against_a_step_that_ignores_cancellation_exits_within_1_s() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let mut cmd = fake(s);
    cmd.env("FAKE_STEP_DELAY_MS", "60000")
        .env("FAKE_IGNORE_CANCEL", "1");
    let run = Run::start(cmd);
    run.wait_for("the first step running", |v| {
        event_is(v, "step_started") && v["step"] == "prepare_deployment"
    });
    signal(&run.child, "-INT");
    // The first interrupt was taken (the stop is under way, the step ignores it)...
    run.wait_for("the stop request", |v| event_is(v, "stop_requested"));
    // ...so only the second one can end the run before the 2 s grace.
    signal(&run.child, "-INT");
    let asked = Instant::now();
    let (code, took, err) = run.exit(asked);
    assert_eq!(code, 130, "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}: {err}");
    assert!(
        err.contains(
            "Second interrupt: exiting now. The state is valid; run the command again to continue."
        ),
        "{err}"
    );
    // The state loads, and the step left in progress resumes.
    let v = state_show(s);
    assert_eq!(
        v["state"]["phases"]["prepare_deployment"]["status"], "in_progress",
        "{v}"
    );
    let o = fake(s).arg("deploy").output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
