//! Every step has a time limit, a timeout that may not be retried fails the step and keeps its
//! journal, and a failed watched gate stops a step that does not cooperate within the watch
//! interval plus 2 s, with watch checks running concurrently (issue #7 item 4). Virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k0rdent_core::*;
use k0rdent_core::{
    engine::{DEFAULT_STEP_TIMEOUT, RunReport, StepResult},
    gate::{FnGate, Gate, GateVerdict},
    state::{RunOutcome, Status},
    step::RetryPolicy,
};
use k0rdent_testkit::{FakeWorld, applies, deployment_pipeline, sid};

#[tokio::test(start_paused = true)]
async fn a_timeout_that_may_not_be_retried_fails_once_and_keeps_the_journal() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = deployment_pipeline(&world, |s| {
        if s.id().as_str() == "install_k0s" {
            // Like `k0sctl apply`: interrupted, it must be inspected, not started again.
            s.delay(Duration::from_secs(3600))
                .time_limit(Duration::from_secs(600), false)
        } else {
            s
        }
    });
    let start = tokio::time::Instant::now();
    let r = Engine::builder(p, Arc::new(store.clone()))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(600) && took < Duration::from_secs(603),
        "one attempt, then stop: {took:?}"
    );
    assert_eq!(
        applies(&world)
            .iter()
            .filter(|a| *a == "install_k0s")
            .count(),
        1
    );
    let rec = store.state().unwrap().phases["install_k0s"].clone();
    assert_eq!(rec.status, Status::Failed);
    assert!(
        rec.last_error
            .as_deref()
            .unwrap()
            .contains("not started again"),
        "{rec:?}"
    );
    assert!(rec.journal.latest("started").is_some(), "journal kept");
}

#[tokio::test(start_paused = true)]
async fn a_step_without_a_limit_gets_the_engine_default() {
    let world = FakeWorld::new();
    let p = deployment_pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.delay(Duration::from_secs(100_000))
                .retry(RetryPolicy::none())
        } else {
            s
        }
    });
    let start = tokio::time::Instant::now();
    let r = Engine::builder(p, Arc::new(MemoryStore::new()))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed);
    let took = start.elapsed();
    assert!(
        took >= DEFAULT_STEP_TIMEOUT && took < DEFAULT_STEP_TIMEOUT + Duration::from_secs(3),
        "{took:?}"
    );
}

fn vpn_gate(up: &Arc<AtomicBool>, every: Duration) -> Arc<dyn Gate> {
    let u2 = up.clone();
    Arc::new(
        FnGate::new("vpn_up", move |_| {
            let ok = u2.load(Ordering::SeqCst);
            async move {
                if ok {
                    GateVerdict::pass("all peers answer")
                } else {
                    GateVerdict::fail("peer vm-1: no reply")
                }
            }
        })
        .watch(every),
    )
}

async fn watched_run(gates: Vec<Arc<dyn Gate>>, up: &Arc<AtomicBool>) -> (RunReport, Duration) {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = deployment_pipeline(&world, |s| {
        if s.id().as_str() == "install_k0s" {
            gates
                .iter()
                .fold(s, |s, g| s.gate(g.clone()))
                .delay(Duration::from_secs(3600))
                .ignore_cancel()
        } else {
            s
        }
    });
    let e = Engine::builder(p, Arc::new(store.clone())).build().unwrap();
    let run = tokio::spawn(async move { e.deploy().await });
    tokio::time::sleep(Duration::from_secs(60)).await;
    let dropped = tokio::time::Instant::now();
    up.store(false, Ordering::SeqCst);
    let r = run.await.unwrap().unwrap();
    assert_eq!(
        store.state().unwrap().status(&sid("install_k0s")),
        Status::InProgress
    );
    (r, dropped.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_failed_watch_stops_a_step_that_ignores_it_within_the_interval_plus_two_seconds() {
    let up = Arc::new(AtomicBool::new(true));
    let every = Duration::from_secs(5);
    let (r, took) = watched_run(vec![vpn_gate(&up, every)], &up).await;
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert!(
        took <= every + Duration::from_secs(2),
        "stopped {took:?} after the VPN dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_watch_check_does_not_delay_another_gates_verdict() {
    let up = Arc::new(AtomicBool::new(true));
    let hangs_once_down = {
        let u2 = up.clone();
        Arc::new(
            FnGate::new("cloud_api", move |_| {
                let ok = u2.load(Ordering::SeqCst);
                async move {
                    if !ok {
                        std::future::pending::<()>().await;
                    }
                    GateVerdict::pass("answers")
                }
            })
            .timeout(Duration::from_secs(120))
            .watch(Duration::from_secs(1)),
        )
    };
    let every = Duration::from_secs(5);
    let (r, took) = watched_run(vec![hangs_once_down, vpn_gate(&up, every)], &up).await;
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert!(
        took <= every + Duration::from_secs(2),
        "a 120 s check held up the verdict: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_phase_limit_from_the_configuration_applies_to_its_items() {
    let world = FakeWorld::new();
    let p = deployment_pipeline(&world, |s| {
        if s.id().as_str() == "create_vms/vm-2" {
            s.delay(Duration::from_secs(100_000))
                .retry(RetryPolicy::none())
        } else {
            s
        }
    });
    let start = tokio::time::Instant::now();
    let r = Engine::builder(p, Arc::new(MemoryStore::new()))
        .phase_time_limit("create_vms", Duration::from_secs(15 * 60))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(900) && took < Duration::from_secs(903),
        "{took:?}"
    );
    assert!(r.steps.iter().any(|s| matches!(
        &s.result,
        StepResult::Failed { error, .. } if s.step.as_str() == "create_vms/vm-2" && error.contains("timed out after 900 s")
    )));
}
