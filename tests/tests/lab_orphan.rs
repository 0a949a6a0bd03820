//! A child that outlives the CLI, on lab VMs through the real CLI: the stand-in k0sctl clears
//! its parent-death signal (as a program that re-parents itself would), the CLI is SIGKILLed
//! while k0sctl sits between `k0s install` and the service start, and k0sctl lives on. The
//! next `deploy` finds it by the pid and start time the step journaled, stops it (k0sctl
//! cannot run twice) before repairing, and converges.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use k0rdent_process::ChildRecord;
use k0rdent_tests::lab::cli::harness;
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::pipeline::PipelineLab;

fn main() -> ExitCode {
    harness(
        "lab_orphan",
        &[(
            "a_k0sctl_that_outlived_a_killed_run_is_found_and_stopped_before_the_repair",
            || {
                Box::pin(
                    a_k0sctl_that_outlived_a_killed_run_is_found_and_stopped_before_the_repair(),
                )
            },
        )],
    )
}

fn k0sctl_applies() -> Vec<i32> {
    String::from_utf8_lossy(&cmd::output("pgrep", &["-f", "k0sctl apply"]).stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

async fn a_k0sctl_that_outlived_a_killed_run_is_found_and_stopped_before_the_repair() {
    let lab = PipelineLab::start().await;
    let cli = &lab.cli;
    cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    let api = lab.api().await;

    lab.pause_k0sctl_after_install(Some(60));
    lab.detach_k0sctl(true);
    let killer = lab.when_k0s_installed(|_| PipelineLab::kill_deploys());
    let r = cli.run(&["deploy", "-y"]);
    assert!(
        killer.join().unwrap().is_some(),
        "k0sctl never installed k0s"
    );
    assert_eq!(r.code, -1, "the CLI was killed");
    lab.detach_k0sctl(false);
    lab.pause_k0sctl_after_install(None);

    // k0sctl lives on, and it is the child the step journaled.
    std::thread::sleep(Duration::from_secs(2));
    let left = k0sctl_applies();
    assert_eq!(left.len(), 1, "the orphaned k0sctl: {left:?}");
    let state = cli.state().await;
    let rec: ChildRecord = state.phases["install_k0s"]
        .journal
        .latest_as("k0sctl")
        .expect("a journaled k0sctl");
    assert_eq!(rec.pid as i32, left[0]);
    eprintln!("orphaned k0sctl: pid {}, journaled {rec:?}", left[0]);

    // The next run stops it first, then repairs and converges.
    let r = cli.run(&["deploy", "-y"]);
    eprintln!("{}", r.stderr);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "left by an earlier run (process group {}",
            rec.pgid
        )),
        "{}",
        r.stderr
    );
    assert!(!cmd::alive(left[0]), "the orphan was stopped");
    assert!(k0sctl_applies().is_empty());
    cli.ok(&["status"]);
    let again = cli.ok(&["deploy", "-y"]);
    assert!(again.started_steps().is_empty(), "{}", again.stderr);
    lab.finish(Some(api));
}
