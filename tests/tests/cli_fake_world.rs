//! The real CLI and engine over the file-backed fake world: exit codes of plan/status/deploy,
//! drift naming the resource, unknown blocking, Ctrl-C (stop at a safe point, exit 130), resume,
//! reset. Interrupts in every kind of wait and the second Ctrl-C are in `interrupts.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fake(state: &Path, delay_ms: u64) -> Command {
    k0rdent_tests::fake_world::command(
        Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")),
        state,
        delay_ms,
    )
}

fn text(o: &Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run(state: &Path, args: &[&str]) -> (i32, String, String) {
    text(&fake(state, 0).args(args).output().unwrap())
}

#[test]
fn plan_status_and_deploy_exit_codes_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let (code, out, _) = run(s, &["plan"]);
    assert_eq!(code, 2, "a fresh deployment has pending changes:\n{out}");
    insta::assert_snapshot!("fresh_plan", out);
    let (code, out, _) = run(s, &["status"]);
    assert_eq!(code, 2, "{out}");
    insta::with_settings!({filters => vec![(s.to_str().unwrap(), "[STATE_DIR]")]}, {
        insta::assert_snapshot!("fresh_status", out);
    });

    // Half done: up to setup_network; plan and status name what is left and why.
    let (code, out, err) = run(s, &["deploy", "--until", "setup_network"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(s, &["plan"]);
    assert_eq!(code, 2, "{out}");
    insta::assert_snapshot!("half_done_plan", out);
    let (code, out, _) = run(s, &["status"]);
    assert_eq!(code, 2, "{out}");
    insta::assert_snapshot!("half_done_status", out);
    let (code, out, _) = run(s, &["status", "--until", "setup_network"]);
    assert_eq!(code, 0, "{out}");

    let (code, out, err) = run(s, &["deploy"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Deployment converged."));
    assert!(err.contains("+ create_vms/k0s-worker-1: done"), "{err}");

    let (code, out, _) = run(s, &["plan"]);
    assert_eq!(code, 0);
    assert_eq!(out, "Nothing to do: all 6 steps are up to date.\n");
    let (code, out, _) = run(s, &["status"]);
    assert_eq!(code, 0, "{out}");
    insta::assert_snapshot!("complete_status", out);

    // A resource deleted behind our back: status names it and exits 2.
    std::fs::remove_file(s.join("world/create_vms--k0s-worker-1")).unwrap();
    let (code, out, _) = run(s, &["status"]);
    assert_eq!(code, 2, "{out}");
    let line = out.lines().find(|l| l.contains("DRIFT")).unwrap();
    assert!(line.starts_with("create_vms/k0s-worker-1"), "{out}");
    insta::assert_snapshot!("status_with_drift", out);
    let (code, out, _) = run(s, &["plan"]);
    assert_eq!(code, 2, "{out}");
    insta::assert_snapshot!("plan_with_drift", out);
    let (code, out, _) = run(s, &["-o", "json", "status"]);
    assert_eq!(code, 2);
    // JSON Lines: events first, the result last.
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().any(|l| l["event"] == "observed"));
    let v = lines.last().unwrap();
    assert_eq!(v["result"], "status");
    let drifted: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["drift"] == true)
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["create_vms/k0s-worker-1"]);

    // The next deploy recreates only that resource.
    let (code, _, err) = run(s, &["deploy"]);
    assert_eq!(code, 0);
    let ran: Vec<&str> = err.lines().filter(|l| l.starts_with("> ")).collect();
    assert_eq!(ran, ["> create_vms/k0s-worker-1: rerun"], "{err}");

    // An observer that cannot observe blocks (3) and nothing runs.
    std::fs::write(s.join("world/observer-fails"), b"").unwrap();
    let (code, out, _) = run(s, &["plan"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("403"), "{out}");
    let (code, _, err) = run(s, &["deploy"]);
    assert_eq!(code, 3, "{err}");
    assert!(!err.contains("> "), "nothing started: {err}");
}

fn interrupt(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
}

fn wait_until(s: &Path, what: &str, f: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = run(s, &["-o", "json", "state", "show"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        if f(&v) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn ctrl_c_stops_at_a_safe_point_with_exit_130_and_the_next_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    let child = fake(s, 30_000)
        .args(["deploy", "--until", "setup_network"])
        .spawn()
        .unwrap();
    wait_until(s, "setup to start", |v| {
        v["state"]["phases"]["prepare_deployment"]["status"] == "in_progress"
    });
    let asked = Instant::now();
    interrupt(child.id());
    let (code, out, err) = text(&child.wait_with_output().unwrap());
    assert_eq!(code, 130, "{out}{err}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "stopped within a bounded time"
    );
    assert!(err.contains("Stopping at the next safe point"), "{err}");
    // The advice repeats what the user gave: the state directory and `--until`.
    assert!(
        out.contains(&format!(
            "Interrupted. The state is saved; run `k0rdent deploy --state-dir {} --until setup_network` again to continue.",
            s.display()
        )),
        "{out}"
    );
    let (_, out, _) = run(s, &["-o", "json", "state", "show"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["state"]["run"]["outcome"], "interrupted");
    assert_eq!(
        v["state"]["phases"]["prepare_deployment"]["status"],
        "in_progress"
    );

    let (code, _, err) = run(s, &["deploy"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("> prepare_deployment: resume"), "{err}");
}

#[test]
fn reset_needs_confirmation_then_tears_down_and_archives() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path();
    assert_eq!(run(s, &["deploy"]).0, 0);
    let (code, _, err) = text(
        &fake(s, 0)
            .arg("reset")
            .stdin(Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("reset -y"), "{err}");
    assert!(
        s.join("world/connect_vpn").exists(),
        "nothing was torn down"
    );
    let (code, out, err) = run(s, &["reset", "-y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("archived to"), "{out}");
    let left: Vec<_> = std::fs::read_dir(s.join("world")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!s.join("deployment-state.yaml").exists());
    let (code, _, _) = run(s, &["plan"]);
    assert_eq!(code, 2, "after a reset, everything is to be done again");
}
