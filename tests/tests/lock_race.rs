//! The run lock across processes, through the real CLI over the file-backed fake world:
//! exactly one of two racing runs proceeds; the other exits 4 naming the holder; a SIGKILLed
//! holder is taken over by the next run without manual steps; read-only commands work while
//! a run holds the lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn fake(state: &Path, delay_ms: u64) -> Command {
    k0rdent_tests::fake_world::command(
        Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")),
        state,
        delay_ms,
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn of_two_runs_racing_for_one_state_dir_exactly_one_proceeds_100_times() {
    for round in 0..100 {
        let dir = tempfile::tempdir().unwrap();
        let a = fake(dir.path(), 40).arg("deploy").spawn().unwrap();
        let b = fake(dir.path(), 40).arg("deploy").spawn().unwrap();
        let (pa, pb) = (a.id(), b.id());
        let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut codes = [oa.status.code(), ob.status.code()];
        codes.sort();
        assert_eq!(
            codes,
            [Some(0), Some(4)],
            "round {round}: {} / {}",
            stderr(&oa),
            stderr(&ob)
        );
        let (loser, winner_pid) = if oa.status.code() == Some(4) {
            (&oa, pb)
        } else {
            (&ob, pa)
        };
        let msg = stderr(loser);
        assert!(
            msg.contains(&format!("locked by pid {winner_pid} ")),
            "round {round}: {msg}"
        );
        assert!(msg.contains("hint:"), "round {round}: {msg}");
    }
}

fn wait_for_lock(state: &Path, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = fake(state, 0)
            .args(["-o", "json", "state", "show"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        if v["locked_by"]["pid"] == serde_json::json!(pid)
            && v["state"]["phases"]["prepare_deployment"]["status"] == "in_progress"
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the run never took the lock: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill9(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

#[test]
fn a_sigkilled_holder_is_taken_over_and_read_only_commands_work_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let holder = fake(state, 60_000).arg("deploy").spawn().unwrap();
    let pid = holder.id();
    wait_for_lock(state, pid);

    // state show works while the lock is held (and says who holds it).
    let show = fake(state, 0).args(["state", "show"]).output().unwrap();
    assert_eq!(show.status.code(), Some(0), "{}", stderr(&show));
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("prepare_deployment") && text.contains("in_progress"),
        "{text}"
    );
    assert!(
        stderr(&show).contains(&format!("pid {pid}")),
        "{}",
        stderr(&show)
    );
    // So does plan (lock-free): work is pending.
    let plan = fake(state, 0).arg("plan").output().unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    // Another deploy is refused, naming the holder; so is unlocking a live holder.
    let second = fake(state, 0).arg("deploy").output().unwrap();
    assert_eq!(second.status.code(), Some(4));
    assert!(
        stderr(&second).contains(&format!("pid {pid}")),
        "{}",
        stderr(&second)
    );
    let unlock = fake(state, 0).args(["state", "unlock"]).output().unwrap();
    assert_eq!(unlock.status.code(), Some(4), "{}", stderr(&unlock));

    kill9(holder);

    // The next run proceeds without manual steps and resumes the interrupted step.
    let next = fake(state, 0).arg("deploy").output().unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let err = stderr(&next);
    assert!(
        err.contains(&format!("pid {pid}) ended without recording an outcome")),
        "{err}"
    );
    assert!(err.contains("> prepare_deployment: resume"), "{err}");
    let o = fake(state, 0)
        .args(["-o", "json", "state", "show"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"]["run"]["outcome"], "succeeded");
    assert_eq!(v["locked_by"], serde_json::Value::Null);
    // And a rerun has nothing to do.
    let plan = fake(state, 0).arg("plan").output().unwrap();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}
