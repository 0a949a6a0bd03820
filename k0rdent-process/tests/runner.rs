//! The runner with real processes: `sh` stand-ins that ignore SIGTERM, fork grandchildren that
//! hold the output pipe, and helper processes (this test binary run again) that die under
//! their children.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k0rdent_process::{
    ChildRecord, ChildStatus, Command, ProcessStatus, StopReason, StopStage, Stopped,
};

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .and_then(|(_, r)| r.chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X')
    })
}

fn session_of(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = s.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn pgid_of(pid: u32) -> u32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = s.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn kill(pid: u32) {
    let p = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
}

/// Polls `cond` every 20 ms for up to `limit`.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a file holding a pid.
fn read_pid(path: &Path) -> u32 {
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_to_string(path)
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

/// A stand-in: ignores SIGTERM, forks a grandchild that ignores it too and holds the output
/// pipe, writes both pids into `dir`, then waits forever.
fn stubborn(dir: &Path) -> Command {
    let script = format!(
        "trap '' TERM; sleep 600 & echo $! > {d}/grandchild.pid; echo $$ > {d}/child.pid; \
         echo started; wait",
        d = dir.display()
    );
    Command::new("sh").args(["-c", &script])
}

#[tokio::test]
async fn a_child_that_ignores_sigterm_is_killed_with_its_group_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let notices = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let d = dir.path().to_path_buf();
    let canceller = tokio::task::spawn_blocking(move || {
        let child = read_pid(&d.join("child.pid"));
        let grandchild = read_pid(&d.join("grandchild.pid"));
        tx.send(()).unwrap();
        (child, grandchild)
    });
    let n2 = Arc::clone(&notices);
    let started = Instant::now();
    let err = stubborn(dir.path())
        .grace(Duration::from_millis(700))
        .run_until(
            async {
                let _ = rx.await;
            },
            move |n| n2.lock().unwrap().push(n.clone()),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    let (child, grandchild) = canceller.await.unwrap();
    assert_eq!(err.status, ProcessStatus::Cancelled, "{err}");
    assert!(
        err.to_string()
            .contains("was stopped because the work was cancelled")
    );
    let notices = notices.lock().unwrap().clone();
    let stages: Vec<StopStage> = notices.iter().map(|n| n.stage).collect();
    assert_eq!(stages, [StopStage::Terminating, StopStage::Killing]);
    assert_eq!(notices[0].reason, StopReason::Cancelled);
    assert_eq!(
        notices[0].to_string(),
        "stopping sh (cancelled): SIGTERM sent, waiting up to 700 ms"
    );
    assert_eq!(
        notices[1].to_string(),
        "sh did not stop within 700 ms: SIGKILL sent"
    );
    assert!(
        took >= Duration::from_millis(700),
        "the grace was honoured: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        wait_for(Duration::from_secs(1), || !alive(child)
            && !alive(grandchild)),
        "child {child} and grandchild {grandchild} are gone"
    );
}

#[tokio::test]
async fn a_child_that_honours_sigterm_is_not_killed_and_the_stop_is_quick() {
    let started = Instant::now();
    let mut stages = Vec::new();
    let err = Command::new("sleep")
        .arg("600")
        .grace(Duration::from_secs(30))
        .run_until(tokio::time::sleep(Duration::from_millis(100)), |n| {
            stages.push(n.stage);
        })
        .await
        .unwrap_err();
    assert_eq!(err.status, ProcessStatus::Cancelled);
    assert_eq!(stages, [StopStage::Terminating]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_timeout_stops_the_group_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut notices = Vec::new();
    let err = stubborn(dir.path())
        .timeout(Duration::from_millis(300))
        .grace(Duration::from_millis(200))
        .run_until(std::future::pending(), |n| notices.push(n.to_string()))
        .await
        .unwrap_err();
    assert_eq!(
        err.status,
        ProcessStatus::TimedOut(Duration::from_millis(300))
    );
    assert_eq!(
        notices[0],
        "stopping sh (no result within 300 ms): SIGTERM sent, waiting up to 200 ms"
    );
    let (c, g) = (
        read_pid(&dir.path().join("child.pid")),
        read_pid(&dir.path().join("grandchild.pid")),
    );
    assert!(wait_for(Duration::from_secs(1), || !alive(c) && !alive(g)));
}

#[tokio::test]
async fn dropping_the_future_kills_the_child_and_its_grandchild() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let run = stubborn(dir.path()).grace(Duration::from_secs(60)).run();
    // Dropped as soon as both pids are known (well before any grace period).
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            r = run => Some(r),
            () = async {
                while !d.join("grandchild.pid").exists() || !d.join("child.pid").exists() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } => None,
        }
    })
    .await
    .unwrap();
    assert!(r.is_none(), "the stand-in never finishes by itself");
    let (c, g) = (
        read_pid(&dir.path().join("child.pid")),
        read_pid(&dir.path().join("grandchild.pid")),
    );
    assert!(
        wait_for(Duration::from_secs(1), || !alive(c) && !alive(g)),
        "dropping the future left {c} or {g} running"
    );
}

#[tokio::test]
async fn a_failed_child_takes_its_group_with_it_and_reading_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "sleep 600 & echo $! > {}/gc.pid; echo 'Error: release pending' >&2; exit 3",
        dir.path().display()
    );
    let started = Instant::now();
    let err = Command::new("sh")
        .args(["-c", &script])
        .run()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "did not hang");
    assert_eq!(err.status, ProcessStatus::Exited(3));
    assert_eq!(err.stderr, "Error: release pending");
    let gc = read_pid(&dir.path().join("gc.pid"));
    assert!(wait_for(Duration::from_secs(1), || !alive(gc)));
}

#[tokio::test]
async fn a_successful_child_is_never_signalled_even_if_its_grandchild_holds_the_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "sleep 600 & echo $! > {}/gc.pid; echo done",
        dir.path().display()
    );
    let started = Instant::now();
    let out = Command::new("sh")
        .args(["-c", &script])
        .run()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.stdout, "done\n");
    assert!(
        took < Duration::from_secs(4),
        "bounded wait for EOF: {took:?}"
    );
    let gc = read_pid(&dir.path().join("gc.pid"));
    assert!(alive(gc), "never killed after success");
    kill(gc);
}

#[tokio::test]
async fn output_is_bounded_and_says_how_much_was_dropped() {
    let out = Command::new("sh")
        .args([
            "-c",
            "head -c 100000 /dev/zero | tr '\\0' a; \
             i=0; while [ $i -lt 3000 ]; do echo noise >&2; i=$((i+1)); done; echo LAST >&2",
        ])
        .output_limits(1000, 100)
        .run()
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(out.stdout_dropped, 99_000);
    assert_eq!(out.stderr.len(), 100);
    assert!(out.stderr.ends_with("noise\nLAST\n"), "{}", out.stderr);
    assert_eq!(out.stderr_dropped, 3000 * 6 + 5 - 100);
    assert!(
        !format!("{out:?}").contains("aaaa"),
        "Debug shows no stdout"
    );
}

#[tokio::test]
async fn stderr_and_arguments_in_errors_are_redacted() {
    let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    let err = Command::new("sh")
        .args([
            "-c",
            "echo \"PrivateKey = $2\" >&2; echo \"bad password $1\" >&2; exit 4",
            "sh",
        ])
        .secret_arg("hunter2")
        .arg(key)
        .run()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("hunter2") && !text.contains(key), "{text}");
    assert_eq!(err.args[3..], ["[redacted]", "[redacted]"]);
    assert_eq!(err.stderr, "[redacted]\nbad password [redacted]");
}

#[tokio::test]
async fn a_missing_program_is_reported_as_not_installed() {
    let err = Command::new("/nonexistent/k0sctl")
        .arg("version")
        .run()
        .await
        .unwrap_err();
    assert!(err.not_installed(), "{err}");
    assert!(
        err.to_string()
            .starts_with("`/nonexistent/k0sctl version` could not be started")
    );
}

#[test]
fn a_child_spawned_while_the_spawning_thread_exits_survives_it() {
    // The caller's thread (with its own runtime) starts a child and ends: the parent-death
    // signal must not follow it (it would if the fork happened on this thread).
    let (pid, record) = std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let running = Command::new("sleep").arg("600").spawn().await.unwrap();
            let r = (running.pid(), running.record().clone());
            // Keep it running past this thread; the test stops it below.
            std::mem::forget(running);
            r
        })
    })
    .join()
    .unwrap();
    assert!(alive(pid));
    // The signal is delivered at thread exit; give it time to land if it were set wrongly.
    assert!(
        !wait_for(Duration::from_millis(500), || !alive(pid)),
        "the child died with the thread that asked for it"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stopped = rt
        .block_on(record.stop(Duration::from_secs(1), |_| {}))
        .unwrap();
    assert_eq!(stopped, Stopped::Terminated);
    assert!(!alive(pid));
}

#[test]
fn children_run_from_many_runtimes_at_once() {
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut seen = Vec::new();
                    for j in 0..5 {
                        let out = Command::new("sh")
                            .args(["-c", &format!("echo {i}-{j}")])
                            .run()
                            .await
                            .unwrap();
                        seen.push(out.stdout);
                    }
                    seen
                })
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let seen = t.join().unwrap();
        let want: Vec<String> = (0..5).map(|j| format!("{i}-{j}\n")).collect();
        assert_eq!(seen, want);
    }
}

#[tokio::test]
async fn the_record_detects_a_reused_pid_another_boot_and_another_host() {
    let first = Command::new("sleep").arg("600").spawn().await.unwrap();
    let old = first.record().clone();
    assert_eq!(old.status(), ChildStatus::Running);
    assert_eq!(old.pgid, old.pid, "it leads its own group");
    drop(first);
    assert!(wait_for(Duration::from_secs(1), || old.status() == ChildStatus::Gone));

    // Another process now holds the journaled pid (as after a pid wrap-around): same pid,
    // other start time.
    let second = Command::new("sleep").arg("600").spawn().await.unwrap();
    let reused = ChildRecord {
        pid: second.pid(),
        pgid: second.pid(),
        ..old.clone()
    };
    assert_ne!(reused.start_ticks, second.record().start_ticks);
    assert_eq!(
        reused.status(),
        ChildStatus::Gone,
        "a reused pid is not ours"
    );
    assert_eq!(
        reused.stop(Duration::from_millis(100), |_| {}).await,
        Ok(Stopped::NothingRunning)
    );
    assert!(
        alive(second.pid()),
        "the unrelated process was not signalled"
    );

    let rebooted = ChildRecord {
        boot_id: Some("00000000-0000-0000-0000-000000000000".into()),
        ..second.record().clone()
    };
    assert_eq!(rebooted.status(), ChildStatus::Gone);
    let elsewhere = ChildRecord {
        host: "build-agent-7".into(),
        ..second.record().clone()
    };
    assert_eq!(
        elsewhere.status(),
        ChildStatus::OtherHost {
            host: "build-agent-7".into()
        }
    );
    let e = elsewhere
        .stop(Duration::from_millis(100), |_| {})
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("started on host build-agent-7"),
        "{e}"
    );
    assert!(
        alive(second.pid()),
        "nothing on another host is signalled here"
    );

    // The record survives the journal (JSON) unchanged.
    let json = serde_json::to_string(second.record()).unwrap();
    let back: ChildRecord = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, second.record());
    assert_eq!(back.status(), ChildStatus::Running);
}

// ---- Helper processes: this test binary run again with K0RDENT_PROCESS_HELPER set. ----

fn helper(action: &str, dir: &Path) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_process", "--ignored", "--nocapture"])
        .env("K0RDENT_PROCESS_HELPER", action)
        .env("K0RDENT_PROCESS_DIR", dir)
        .env("KUBECONFIG", "/home/user/.kube/other-cluster")
        .env("HELM_DRIVER", "sql")
        .env("K0RDENT_KEPT", "yes")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a helper process for the other tests, run by them"]
async fn helper_process() {
    let Ok(action) = std::env::var("K0RDENT_PROCESS_HELPER") else {
        return;
    };
    let dir = PathBuf::from(std::env::var("K0RDENT_PROCESS_DIR").unwrap());
    match action.as_str() {
        "env" => {
            let plain = Command::new("env").run().await.unwrap().stdout;
            let explicit = Command::new("env")
                .env("KUBECONFIG", "/state/kubeconfig")
                .run()
                .await
                .unwrap()
                .stdout;
            std::fs::write(dir.join("plain"), plain).unwrap();
            std::fs::write(dir.join("explicit"), explicit).unwrap();
        }
        "stubborn" => {
            let running = stubborn(&dir).spawn().await.unwrap();
            std::fs::write(
                dir.join("record.json"),
                serde_json::to_string(running.record()).unwrap(),
            )
            .unwrap();
            let _ = running.wait().await;
        }
        "daemon" | "attached" => {
            // Waits for `go`, then leaves a detached sleep behind, as wg-quick leaves
            // wireguard-go.
            let script = format!(
                "echo $$ > {d}/starter.pid; while [ ! -e {d}/go ]; do sleep 0.02; done; \
                 sleep 600 >/dev/null 2>&1 & echo $! > {d}/daemon.pid",
                d = dir.display()
            );
            let cmd = Command::new("sh").args(["-c", &script]);
            let cmd = if action == "daemon" {
                cmd.daemon()
            } else {
                cmd
            };
            let _ = cmd.run().await;
        }
        other => panic!("unknown helper action {other}"),
    }
}

#[test]
fn kubeconfig_and_helm_variables_are_not_inherited_unless_set_explicitly() {
    let dir = tempfile::tempdir().unwrap();
    let status = helper("env", dir.path()).wait().unwrap();
    assert!(status.success());
    let plain = std::fs::read_to_string(dir.path().join("plain")).unwrap();
    assert!(plain.contains("K0RDENT_KEPT=yes"), "{plain}");
    assert!(!plain.contains("KUBECONFIG="), "{plain}");
    assert!(!plain.contains("HELM_DRIVER="), "{plain}");
    let explicit = std::fs::read_to_string(dir.path().join("explicit")).unwrap();
    assert!(
        explicit.contains("KUBECONFIG=/state/kubeconfig"),
        "{explicit}"
    );
    assert!(!explicit.contains("other-cluster"), "{explicit}");
}

#[test]
fn after_sigkill_of_the_parent_the_child_dies_and_its_journaled_group_is_stopped_later() {
    let dir = tempfile::tempdir().unwrap();
    let mut parent = helper("stubborn", dir.path());
    let child = read_pid(&dir.path().join("child.pid"));
    let grandchild = read_pid(&dir.path().join("grandchild.pid"));
    assert!(wait_for(Duration::from_secs(10), || dir
        .path()
        .join("record.json")
        .exists()));
    let record: ChildRecord =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("record.json")).unwrap())
            .unwrap();
    assert_eq!(record.pid, child);
    assert_eq!(pgid_of(grandchild), record.pgid);

    parent.kill().unwrap();
    let killed = Instant::now();
    parent.wait().unwrap();
    assert!(
        wait_for(Duration::from_secs(1), || !alive(child)),
        "the child outlived its parent by more than 1 s"
    );
    println!(
        "child gone {:?} after the parent's SIGKILL",
        killed.elapsed()
    );
    // The grandchild has no parent-death signal: only the journal can find it.
    assert!(alive(grandchild));
    assert_eq!(
        record.status(),
        ChildStatus::GroupRemains {
            pids: vec![grandchild]
        }
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut said = Vec::new();
    let stopped = rt
        .block_on(record.stop(Duration::from_millis(300), |m| said.push(m.to_owned())))
        .unwrap();
    assert_eq!(stopped, Stopped::Killed, "it ignores SIGTERM");
    assert!(!alive(grandchild));
    assert_eq!(record.status(), ChildStatus::Gone);
    assert!(
        said[0].starts_with(&format!(
            "stopping sh left by an earlier run (process group {child}, exited, but processes it started still run (pids {grandchild})): SIGTERM sent"
        )),
        "{said:?}"
    );
}

#[test]
fn a_daemon_finishes_its_work_and_outlives_the_process_that_started_it() {
    for mode in ["daemon", "attached"] {
        let dir = tempfile::tempdir().unwrap();
        let mut parent = helper(mode, dir.path());
        let starter = read_pid(&dir.path().join("starter.pid"));
        let parent_session = session_of(parent.id());
        parent.kill().unwrap();
        parent.wait().unwrap();
        // The starter (wg-quick's part) is told to go on only after its parent died.
        std::fs::write(dir.path().join("go"), b"").unwrap();
        if mode == "attached" {
            assert!(
                wait_for(Duration::from_secs(1), || !alive(starter)),
                "an attached child dies with its parent"
            );
            assert!(!dir.path().join("daemon.pid").exists());
            continue;
        }
        let daemon = read_pid(&dir.path().join("daemon.pid"));
        assert!(
            alive(daemon),
            "the daemon outlives the process that started it"
        );
        assert_ne!(
            session_of(daemon),
            parent_session,
            "in a session of its own"
        );
        assert_eq!(session_of(daemon), starter, "the starter's session");
        kill(daemon);
    }
}

#[tokio::test]
async fn a_successful_daemon_starter_leaves_its_daemon_running() {
    let out = Command::new("sh")
        .args(["-c", "sleep 600 >/dev/null 2>&1 & echo $!"])
        .daemon()
        .run()
        .await
        .unwrap();
    let daemon: u32 = out.stdout.trim().parse().unwrap();
    assert!(alive(daemon));
    assert_ne!(session_of(daemon), session_of(std::process::id()));
    kill(daemon);
}
