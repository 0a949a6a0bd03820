//! The engine end to end with fake steps: ordering, resumption, retries, gates, watches,
//! cancellation, replace confirmation, optional phases, invalidation by outputs, reset.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k0rdent_core::*;
use k0rdent_core::{
    cancel::Cancellation,
    engine::{EngineError, StepResult},
    event::{Event, EventSink, RecordingSink},
    gate::{Deadline, FnGate, GateVerdict, WaitBudget},
    id::RunId,
    plan::{Decision, Reason},
    state::{RunOutcome, Status},
    store::{EventLog, StateStore},
};
use k0rdent_testkit::{FakeObserver, FakeStep, FakeWorld, applies, deployment_pipeline, sid};

fn pipeline(world: &Arc<FakeWorld>, tweak: impl Fn(FakeStep) -> FakeStep) -> Pipeline {
    deployment_pipeline(world, tweak)
}

fn engine(p: Pipeline, store: &MemoryStore) -> Engine {
    Engine::builder(p, Arc::new(store.clone())).build().unwrap()
}

/// One `deploy` of `p` on `store`, its events recorded.
async fn deploy_recorded(
    p: Pipeline,
    store: MemoryStore,
) -> (k0rdent_core::engine::RunReport, Arc<RecordingSink>) {
    let sink = Arc::new(RecordingSink::new());
    let r = Engine::builder(p, Arc::new(store))
        .sink(sink.clone())
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    (r, sink)
}

#[tokio::test]
async fn a_fresh_run_converges_in_dependency_order_and_a_rerun_does_nothing() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let e = engine(pipeline(&world, |s| s), &store);
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    let order = applies(&world);
    assert_eq!(order.len(), 7);
    let pos = |s: &str| order.iter().position(|x| x == s).unwrap();
    assert!(pos("prepare_deployment") < pos("setup_network"));
    assert!(pos("create_vms/vm-1") < pos("setup_vpn") && pos("create_vms/vm-2") < pos("setup_vpn"));
    assert!(pos("connect_vpn") < pos("install_k0s"));
    let state = store.state().unwrap();
    assert_eq!(state.phases["create_vms"].status, Status::Completed);
    assert!(state.phases.values().all(|r| r.status == Status::Completed));
    assert!(
        state.phases.values().all(|r| r.journal.is_empty()),
        "journals are cleared on completion"
    );

    let again = e.deploy().await.unwrap();
    assert_eq!(again.outcome, RunOutcome::Succeeded);
    assert!(again.steps.is_empty(), "{:?}", again.steps);
    assert_eq!(applies(&world).len(), 7);
    assert!(
        again
            .initial_plan
            .entries
            .iter()
            .all(|e| e.decision == Decision::Skip)
    );
}

#[tokio::test]
async fn observation_is_bulk_not_per_step() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    let after_first = world.observations();
    // One observation at the start plus one per wave of newly-ready steps, never one per step.
    assert!(after_first <= 6, "{after_first} observations for 7 steps");
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(
        world.observations() - after_first,
        1,
        "a no-op rerun observes once"
    );
}

/// An observer of the later layers only: finishing an earlier step does not change what it
/// sees, so the engine does not ask it again then.
struct LateLayer {
    calls: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl Observer for LateLayer {
    fn name(&self) -> &str {
        "late"
    }
    async fn observe(
        &self,
        _state: &state::DeploymentState,
    ) -> Result<observation::Facts, observation::ObserveError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(observation::Facts::new(7_u8))
    }
    fn affected_by(&self, step: &StepId) -> bool {
        step.phase() == "connect_vpn"
    }
}

#[tokio::test]
async fn only_the_layers_a_finished_step_affects_are_observed_again() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let calls = Arc::new(AtomicU32::new(0));
    let steps = [
        FakeStep::new("prepare_deployment", &world),
        FakeStep::new("setup_network", &world).after(&["prepare_deployment"]),
        FakeStep::new("create_vms/vm-1", &world).after(&["setup_network"]),
        FakeStep::new("setup_vpn", &world).after(&["create_vms"]),
        FakeStep::new("connect_vpn", &world).after(&["setup_vpn"]),
        FakeStep::new("install_k0s", &world).after(&["connect_vpn"]),
    ];
    let p = steps
        .into_iter()
        .fold(Pipeline::builder(), |b, s| b.step(s))
        .observer(FakeObserver(world.clone()))
        .observer(LateLayer {
            calls: calls.clone(),
        })
        .build()
        .unwrap();
    let r = engine(p, &store).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    // The world's observer (affected by every step) observes after each wave; the late
    // layer once at the start and once after connect_vpn finished.
    assert!(world.observations() >= 5, "{}", world.observations());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Stops the run after `n` steps have completed, as a Ctrl-C at a step boundary would.
struct StopAfter {
    n: u32,
    seen: AtomicU32,
    cancel: Cancellation,
}

impl EventSink for StopAfter {
    fn emit(&self, event: &Event) {
        if matches!(event, Event::StepCompleted { .. })
            && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.n
        {
            self.cancel.cancel("test: stop at a step boundary");
        }
    }
}

#[tokio::test]
async fn interrupting_at_every_step_boundary_then_resuming_applies_each_step_once() {
    for n in 1..7 {
        let world = FakeWorld::new();
        let store = MemoryStore::new();
        let cancel = Cancellation::new();
        let e = Engine::builder(pipeline(&world, |s| s), Arc::new(store.clone()))
            .cancellation(cancel.clone())
            .concurrency(1)
            .sink(Arc::new(StopAfter {
                n,
                seen: AtomicU32::new(0),
                cancel,
            }))
            .build()
            .unwrap();
        let r = e.deploy().await.unwrap();
        assert_eq!(r.outcome, RunOutcome::Interrupted, "n={n}");
        let state = store.state().unwrap();
        assert_eq!(
            state.run.as_ref().unwrap().outcome,
            Some(RunOutcome::Interrupted)
        );
        let done = applies(&world).len();
        assert_eq!(done as u32, n, "nothing new starts after the stop (n={n})");

        let r = engine(pipeline(&world, |s| s), &store)
            .deploy()
            .await
            .unwrap();
        assert_eq!(r.outcome, RunOutcome::Succeeded, "n={n}");
        let all = applies(&world);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(
            all.len(),
            dedup.len(),
            "a step was applied twice (n={n}): {all:?}"
        );
        assert_eq!(all.len(), 7);
    }
}

#[tokio::test]
async fn a_crash_inside_a_step_resumes_it_with_its_journal() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.delay(Duration::from_secs(30))
        } else {
            s
        }
    });
    let e = engine(p, &store);
    // Drop the run while setup_network is in its long apply: like kill -9.
    let _ = tokio::time::timeout(Duration::from_millis(300), e.deploy()).await;
    drop(e);
    // Let the runtime drop the aborted step task (a killed process would release at once).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let state = store.state().unwrap();
    let rec = state.record(&sid("setup_network")).unwrap();
    assert_eq!(rec.status, Status::InProgress);
    assert!(
        rec.journal.latest("started").is_some(),
        "the journal was persisted before the crash"
    );
    assert_eq!(state.run.as_ref().unwrap().outcome, None);

    let r = engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    let first = r.initial_plan.entry(&sid("setup_network")).unwrap();
    assert_eq!(first.decision, Decision::Resume);
    assert_eq!(
        store.state().unwrap().run.unwrap().outcome,
        Some(RunOutcome::Succeeded)
    );
    // The dead run was recorded as crashed in the event log.
    let h = store.history().await.unwrap();
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e.event, Event::PreviousRunDied { .. }))
    );
}

#[tokio::test]
async fn transient_failures_are_retried_and_permanent_ones_fail_the_run() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| match s.id().as_str() {
        "setup_network" => s.transient_failures(2),
        "install_k0s" => s.fails("k0sctl apply: exit status 1"),
        _ => s,
    });
    let sink = Arc::new(RecordingSink::new());
    let e = Engine::builder(p, Arc::new(store.clone()))
        .sink(sink.clone())
        .build()
        .unwrap();
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed);
    let retries = sink
        .events()
        .iter()
        .filter(|e| matches!(e, Event::StepRetrying { .. }))
        .count();
    assert_eq!(retries, 2);
    let state = store.state().unwrap();
    assert_eq!(state.status(&sid("setup_network")), Status::Completed);
    let k0s = state.record(&sid("install_k0s")).unwrap();
    assert_eq!(k0s.status, Status::Failed);
    assert!(k0s.last_error.as_deref().unwrap().contains("k0sctl apply"));
    let failed = r
        .steps
        .iter()
        .find(|s| s.step == sid("install_k0s"))
        .unwrap();
    assert!(matches!(
        &failed.result,
        StepResult::Failed {
            remedy: Some(_),
            ..
        }
    ));
}

#[tokio::test]
async fn retries_are_bounded() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "prepare_deployment" {
            s.transient_failures(10)
        } else {
            s
        }
    });
    let r = engine(p, &store).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed);
    let rec = store
        .state()
        .unwrap()
        .record(&sid("prepare_deployment"))
        .cloned()
        .unwrap();
    assert!(rec.last_error.unwrap().contains("after 3 attempts"));
    assert_eq!(
        applies(&world).len(),
        3,
        "nothing behind the failed step ran"
    );
}

#[tokio::test]
async fn a_failing_gate_blocks_the_step_and_everything_behind_it() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "install_k0s" {
            s.gate(Arc::new(FnGate::new("vpn_up", |_| async {
                GateVerdict::fail_with(
                    "peer vm-2: no reply to the probe within 2 s",
                    "run `k0rdent vpn status`",
                )
            })))
        } else {
            s
        }
    });
    let r = engine(p, &store).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert!(!applies(&world).contains(&"install_k0s".to_owned()));
    let e = r.final_plan.entry(&sid("install_k0s")).unwrap();
    assert_eq!(e.decision, Decision::Blocked);
    assert_eq!(
        e.reason.remedy().as_deref(),
        Some("run `k0rdent vpn status`")
    );
    // Blocked is not failed: the record keeps its status and the reason.
    let rec = store
        .state()
        .unwrap()
        .record(&sid("install_k0s"))
        .cloned()
        .unwrap();
    assert_eq!(rec.status, Status::Pending);
    assert!(rec.blocked.unwrap().contains("vpn_up"));
}

#[tokio::test(start_paused = true)]
async fn a_gate_with_a_wait_budget_is_polled_until_it_passes() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = calls.clone();
    let gate = FnGate::new("cloud_init_done", move |_| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 3 {
                GateVerdict::fail("cloud-init status: running")
            } else {
                GateVerdict::pass("cloud-init status: done")
            }
        }
    })
    .wait(WaitBudget {
        deadline: Deadline::After(Duration::from_secs(600)),
        interval: Duration::from_secs(10),
    });
    let gate = Arc::new(gate);
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_vpn" {
            s.gate(gate.clone())
        } else {
            s
        }
    });
    let (r, sink) = deploy_recorded(p, store).await;
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let waiting = sink
        .events()
        .iter()
        .filter(|e| matches!(e, Event::GateWaiting { .. }))
        .count();
    assert_eq!(waiting, 3, "progress is reported while waiting");
}

#[tokio::test(start_paused = true)]
async fn a_gate_that_never_passes_gives_up_at_its_budget() {
    let world = FakeWorld::new();
    let gate = Arc::new(
        FnGate::new("cloud_init_done", |_| async {
            GateVerdict::fail("still running")
        })
        .wait(WaitBudget {
            deadline: Deadline::After(Duration::from_secs(60)),
            interval: Duration::from_secs(10),
        }),
    );
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_vpn" {
            s.gate(gate.clone())
        } else {
            s
        }
    });
    let start = tokio::time::Instant::now();
    let r = engine(p, &MemoryStore::new()).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(75),
        "{waited:?}"
    );
    let e = r.final_plan.entry(&sid("setup_vpn")).unwrap();
    assert!(e.message.contains("gave up waiting"), "{}", e.message);
}

#[tokio::test(start_paused = true)]
async fn a_gate_check_that_hangs_is_cut_off_by_its_timeout() {
    let world = FakeWorld::new();
    let gate = Arc::new(
        FnGate::new("vpn_up", |_| async {
            std::future::pending::<()>().await;
            GateVerdict::pass("never")
        })
        .timeout(Duration::from_secs(3)),
    );
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "install_k0s" {
            s.gate(gate.clone())
        } else {
            s
        }
    });
    let r = engine(p, &MemoryStore::new()).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    let e = r.final_plan.entry(&sid("install_k0s")).unwrap();
    assert!(
        e.message.contains("did not finish within 3 s"),
        "{}",
        e.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_watched_gate_failing_mid_step_stops_it_within_seconds() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let u2 = up.clone();
    let gate = Arc::new(
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
        .watch(Duration::from_secs(2)),
    );
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "install_k0s" {
            s.gate(gate.clone()).delay(Duration::from_secs(600))
        } else {
            s
        }
    });
    let e = engine(p, &store);
    let run = tokio::spawn(async move { e.deploy().await });
    // Let install_k0s start, then drop the VPN.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let dropped = tokio::time::Instant::now();
    up.store(false, Ordering::SeqCst);
    let r = run.await.unwrap().unwrap();
    let took = dropped.elapsed();
    assert!(took <= Duration::from_secs(3), "stopped after {took:?}");
    assert_eq!(r.outcome, RunOutcome::Blocked);
    let rec = store
        .state()
        .unwrap()
        .record(&sid("install_k0s"))
        .cloned()
        .unwrap();
    assert_eq!(
        rec.status,
        Status::InProgress,
        "work was under way: it resumes next run"
    );
    assert!(rec.blocked.unwrap().contains("peer vm-1"));
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_lets_running_steps_reach_a_safe_point_and_records_the_interruption() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.delay(Duration::from_secs(100))
        } else {
            s
        }
    });
    let cancel = Cancellation::new();
    let e = Engine::builder(p, Arc::new(store.clone()))
        .cancellation(cancel.clone())
        .build()
        .unwrap();
    let run = tokio::spawn(async move { e.deploy().await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let asked = tokio::time::Instant::now();
    cancel.cancel("Ctrl-C");
    let r = run.await.unwrap().unwrap();
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(r.outcome, RunOutcome::Interrupted);
    let s = store.state().unwrap();
    assert_eq!(s.run.unwrap().outcome, Some(RunOutcome::Interrupted));
    let rec = s.phases["setup_network"].clone();
    assert_eq!(rec.status, Status::InProgress);
    assert!(rec.last_error.unwrap().contains("Ctrl-C"));
    assert!(!applies(&world).contains(&"create_vms/vm-1".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn a_step_that_ignores_the_stop_is_dropped_two_seconds_after_ctrl_c() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.delay(Duration::from_secs(1000)).ignore_cancel()
        } else {
            s
        }
    });
    let cancel = Cancellation::new();
    let e = Engine::builder(p, Arc::new(store.clone()))
        .cancellation(cancel.clone())
        .build()
        .unwrap();
    let run = tokio::spawn(async move { e.deploy().await });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let asked = tokio::time::Instant::now();
    cancel.cancel("Ctrl-C");
    let r = run.await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2100),
        "{took:?}"
    );
    assert_eq!(r.outcome, RunOutcome::Interrupted);
    assert!(r.steps.iter().any(
        |s| matches!(&s.result, StepResult::Interrupted { reason } if reason.contains("abandoned"))
    ));
    assert_eq!(
        store.state().unwrap().phases["setup_network"].status,
        Status::InProgress
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_and_independent_steps_run_together() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let mut b = Pipeline::builder().observer(FakeObserver(world.clone()));
    for i in 0..10 {
        b = b.step(
            FakeStep::new(&format!("create_vms/vm-{i}"), &world).delay(Duration::from_secs(10)),
        );
    }
    let running = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    struct Peak(Arc<AtomicU32>, Arc<AtomicU32>);
    impl EventSink for Peak {
        fn emit(&self, e: &Event) {
            match e {
                Event::StepStarted { .. } => {
                    let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
                    self.1.fetch_max(n, Ordering::SeqCst);
                }
                Event::StepCompleted { .. } => {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
                _ => {}
            }
        }
    }
    let start = tokio::time::Instant::now();
    let r = Engine::builder(b.build().unwrap(), Arc::new(store))
        .concurrency(3)
        .sink(Arc::new(Peak(running, peak.clone())))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // 10 steps of 10 s, 3 at a time: 4 waves.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(40) && took < Duration::from_secs(45),
        "{took:?}"
    );
}

#[tokio::test]
async fn pending_outcomes_are_polled_by_the_engine() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.pending_polls(3)
        } else {
            s
        }
    });
    let r = engine(p, &store).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    let n = applies(&world)
        .iter()
        .filter(|s| *s == "setup_network")
        .count();
    assert_eq!(n, 4);
}

#[tokio::test]
async fn an_immutable_change_needs_confirmation_before_replacing() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    let changed = |s: FakeStep| {
        if s.id().as_str() == "create_vms/vm-2" {
            s.immutable("new-custom-data")
        } else {
            s
        }
    };
    let r = engine(pipeline(&world, changed), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    let e = r.final_plan.entry(&sid("create_vms/vm-2")).unwrap();
    assert!(
        matches!(&e.reason, Reason::NeedsConfirmation { detail } if detail.contains("delete and create")),
        "{e:?}"
    );
    assert_eq!(applies(&world).len(), 7);

    let r = Engine::builder(pipeline(&world, changed), Arc::new(store.clone()))
        .confirm_replace(true)
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(
        r.initial_plan
            .entry(&sid("create_vms/vm-2"))
            .unwrap()
            .decision,
        Decision::Replace
    );
    // Same outputs: nothing downstream reran.
    assert_eq!(applies(&world).len(), 8);
}

#[tokio::test]
async fn a_session_step_restored_with_the_same_outputs_reruns_nothing_downstream() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    // Reboot: the tunnel is gone, and the cluster cannot be seen without it.
    world.delete(&sid("connect_vpn"));
    world.set_unknown(&sid("install_k0s"), true);
    let p = pipeline(&world, |s| s);
    let plan = Engine::builder(p, Arc::new(store.clone()))
        .build()
        .unwrap()
        .plan()
        .await
        .unwrap()
        .plan;
    assert_eq!(
        plan.entry(&sid("connect_vpn")).unwrap().decision,
        Decision::Rerun
    );
    let k0s = plan.entry(&sid("install_k0s")).unwrap();
    assert!(k0s.provisional && k0s.decision == Decision::Skip, "{k0s:?}");
    assert!(!plan.is_blocked());
    // connect_vpn brings the tunnel back; once it is up the cluster is visible again.
    struct Reconnect(Arc<FakeWorld>);
    impl EventSink for Reconnect {
        fn emit(&self, e: &Event) {
            if let Event::StepCompleted {
                step,
                outputs_changed,
                ..
            } = e
                && step.as_str() == "connect_vpn"
            {
                assert!(!outputs_changed);
                self.0.set_unknown(&sid("install_k0s"), false);
            }
        }
    }
    let r = Engine::builder(pipeline(&world, |s| s), Arc::new(store.clone()))
        .sink(Arc::new(Reconnect(world.clone())))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.final_plan);
    assert_eq!(
        applies(&world).len(),
        8,
        "only connect_vpn ran again: {:?}",
        applies(&world)
    );
    assert_eq!(applies(&world).last().unwrap(), "connect_vpn");
}

#[tokio::test]
async fn changed_upstream_outputs_rerun_downstream_steps() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    world.delete(&sid("setup_vpn"));
    let new_key = |s: FakeStep| {
        if s.id().as_str() == "setup_vpn" {
            s.outputs(Outputs::new().with("hub_public_key", "NEW"))
        } else {
            s
        }
    };
    let r = engine(pipeline(&world, new_key), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    let log = applies(&world);
    // connect_vpn consumes setup_vpn's outputs, so it reruns; its own outputs are unchanged,
    // so install_k0s (which consumes those) does not.
    assert_eq!(&log[7..], ["setup_vpn", "connect_vpn"]);
}

#[tokio::test]
async fn a_vm_deleted_behind_our_back_is_the_only_thing_recreated() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    world.delete(&sid("create_vms/vm-1"));
    let (r, sink) = deploy_recorded(pipeline(&world, |s| s), store.clone()).await;
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(&applies(&world)[7..], ["create_vms/vm-1"]);
    assert!(
        sink.events()
            .iter()
            .any(|e| matches!(e, Event::Drift { step, .. } if step.as_str() == "create_vms/vm-1"))
    );
}

#[tokio::test]
async fn an_unknown_observation_blocks_and_changes_nothing() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    world.delete(&sid("create_vms/vm-2"));
    world.fail_observer(Some("HTTP 403 AuthorizationFailed on list"));
    let r = engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert_eq!(applies(&world).len(), 7, "no work on an unknown");
    let e = r.final_plan.entry(&sid("prepare_deployment")).unwrap();
    assert!(e.message.contains("403"), "{}", e.message);
}

#[tokio::test]
async fn optional_phases_are_recorded_skipped_and_run_when_turned_on() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let off = |s: FakeStep| {
        if s.id().as_str() == "install_k0s" {
            s.disabled("k0s disabled in config")
        } else {
            s
        }
    };
    let r = engine(pipeline(&world, off), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    let rec = store.state().unwrap().phases["install_k0s"].clone();
    assert_eq!(rec.status, Status::Skipped);
    assert_eq!(
        rec.skipped_reason.as_deref(),
        Some("k0s disabled in config")
    );
    let r = engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(
        r.initial_plan.entry(&sid("install_k0s")).unwrap().reason,
        Reason::ReEnabled
    );
    assert_eq!(
        store.state().unwrap().phases["install_k0s"].status,
        Status::Completed
    );
}

#[tokio::test]
async fn until_stops_after_the_named_phase() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let r = Engine::builder(pipeline(&world, |s| s), Arc::new(store.clone()))
        .until(Some(sid("create_vms")))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(applies(&world).len(), 4);
    assert!(
        Engine::builder(pipeline(&world, |s| s), Arc::new(store))
            .until(Some(sid("no_such_phase")))
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn unavailable_phases_block_instead_of_passing_as_done() {
    let world = FakeWorld::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "install_k0s" {
            s.unavailable("phase install_k0s is not implemented yet")
        } else {
            s
        }
    });
    let r = engine(p, &MemoryStore::new()).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert_eq!(applies(&world).len(), 6);
}

#[tokio::test]
async fn a_second_run_on_the_same_store_is_refused_while_the_first_holds_the_lock() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let slow = |s: FakeStep| {
        if s.id().as_str() == "setup_network" {
            s.delay(Duration::from_millis(500))
        } else {
            s
        }
    };
    let first = engine(pipeline(&world, slow), &store);
    let second = engine(pipeline(&world, |s| s), &store);
    let (a, b) = tokio::join!(first.deploy(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        second.deploy().await
    });
    assert_eq!(a.unwrap().outcome, RunOutcome::Succeeded);
    let err = b.unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}

#[tokio::test]
async fn reset_tears_down_in_reverse_order_and_archives_the_state() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    let r = engine(pipeline(&world, |s| s), &store)
        .reset()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    let tear: Vec<String> = world
        .log()
        .into_iter()
        .filter_map(|l| l.strip_prefix("teardown ").map(str::to_owned))
        .collect();
    assert_eq!(tear.first().unwrap(), "install_k0s");
    assert_eq!(tear.last().unwrap(), "prepare_deployment");
    assert_eq!(tear.len(), 7);
    assert!(store.state().is_none(), "the state was archived");
    assert_eq!(store.archives().len(), 1);
}

#[tokio::test]
async fn deploy_refuses_after_an_interrupted_reset_and_reset_finishes_it() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    let cancel = Cancellation::new();
    struct StopOnTeardown(Cancellation);
    impl EventSink for StopOnTeardown {
        fn emit(&self, e: &Event) {
            if matches!(e, Event::TeardownCompleted { step, .. } if step.as_str() == "setup_vpn") {
                self.0.cancel("Ctrl-C");
            }
        }
    }
    let r = Engine::builder(pipeline(&world, |s| s), Arc::new(store.clone()))
        .cancellation(cancel.clone())
        .sink(Arc::new(StopOnTeardown(cancel)))
        .build()
        .unwrap()
        .reset()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Interrupted);
    let err = engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::ResetInProgress { .. }), "{err}");
    assert!(err.remedy().unwrap().contains("k0rdent reset"));
    let r = engine(pipeline(&world, |s| s), &store)
        .reset()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert!(
        world
            .log()
            .iter()
            .filter(|l| l.starts_with("teardown "))
            .count()
            == 7
    );
    let r = engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    assert_eq!(
        r.outcome,
        RunOutcome::Succeeded,
        "deploy starts fresh after the reset"
    );
}

#[tokio::test]
async fn refresh_records_drift_and_clears_unreadable_journals_without_changing_anything() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    world.delete(&sid("create_vms/vm-2"));
    let mut st = store.state().unwrap();
    let r = st.record_mut(&sid("install_k0s"));
    r.status = Status::InProgress;
    store.overwrite(st);
    let strict = |s: FakeStep| {
        if s.id().as_str() == "install_k0s" {
            s.journal_requires("apply_started")
        } else {
            s
        }
    };
    let plan = Engine::builder(pipeline(&world, strict), Arc::new(store.clone()))
        .build()
        .unwrap()
        .plan()
        .await
        .unwrap()
        .plan;
    assert_eq!(
        plan.entry(&sid("install_k0s")).unwrap().reason.code(),
        "journal_corrupt"
    );
    let rep = engine(pipeline(&world, strict), &store)
        .refresh()
        .await
        .unwrap();
    assert_eq!(rep.drifted.len(), 1);
    assert_eq!(rep.journals_cleared, vec![sid("install_k0s")]);
    assert_eq!(
        applies(&world).len(),
        7,
        "refresh changes no infrastructure"
    );
    let s = store.state().unwrap();
    let evidence = s
        .record(&sid("create_vms/vm-2"))
        .unwrap()
        .evidence
        .clone()
        .unwrap();
    assert!(evidence.facts.get("drift").is_some(), "{evidence:?}");
    assert_eq!(s.status(&sid("install_k0s")), Status::Pending);
}

#[tokio::test(start_paused = true)]
async fn a_step_attempt_that_exceeds_its_timeout_is_retried_then_failed() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.delay(Duration::from_secs(3600))
        } else {
            s
        }
    });
    let start = tokio::time::Instant::now();
    let r = Engine::builder(p, Arc::new(store.clone()))
        .step_timeout(Duration::from_secs(60))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed);
    let rec = store.state().unwrap().phases["setup_network"].clone();
    assert_eq!(rec.status, Status::Failed);
    assert!(
        rec.last_error
            .as_deref()
            .unwrap()
            .contains("timed out after 60 s"),
        "{rec:?}"
    );
    // Three attempts of 60 s plus short backoffs: bounded, not an hour.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(180) && took < Duration::from_secs(200),
        "{took:?}"
    );
}

#[tokio::test]
async fn the_event_log_records_the_run() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let r = engine(pipeline(&world, |s| s), &store)
        .deploy()
        .await
        .unwrap();
    let h = store.history().await.unwrap();
    let kinds: Vec<String> = h
        .events
        .iter()
        .map(|e| {
            serde_json::to_value(&e.event).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("run_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run_finished"));
    assert_eq!(kinds.iter().filter(|k| *k == "step_completed").count(), 7);
    assert!(h.events.iter().all(|e| e.run_id == r.run_id));
}

#[tokio::test]
async fn a_caller_can_prepare_under_the_lock_and_hand_it_to_the_run() {
    use k0rdent_core::store::LockHolder;
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let lock = store
        .lock(&LockHolder::current(RunId::generate(), "deploy"))
        .await
        .unwrap();
    // Prepared under the lock: nobody else can run meanwhile.
    let Err(e) = engine(pipeline(&world, |s| s), &store).deploy().await else {
        panic!("ran without the lock");
    };
    assert!(e.is_locked());
    let r = Engine::builder(pipeline(&world, |s| s), Arc::new(store.clone()))
        .holding_lock(lock)
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    // The run released it.
    assert_eq!(store.lock_holder().await.unwrap(), None);
}

/// One gate per node of one kind is checked together (a barrier that all three must reach:
/// checked one after another, the first would wait until its timeout and fail), kinds in
/// their order even when declared node by node (the tunnel before any node check, every
/// cloud-init before any WireGuard check), and the events come in declaration order; a
/// failing earlier kind means no later gate is even tried.
#[tokio::test(start_paused = true)]
async fn gates_of_one_kind_are_checked_together_and_kinds_in_order() {
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let gates = |vpn_ok: bool| -> Vec<Arc<dyn k0rdent_core::gate::Gate>> {
        let mut gates: Vec<Arc<dyn k0rdent_core::gate::Gate>> = Vec::new();
        let l = log.clone();
        gates.push(Arc::new(FnGate::new("vpn_up", move |_| {
            l.lock().unwrap().push("vpn_up".into());
            async move {
                if vpn_ok {
                    GateVerdict::pass("all peers answer")
                } else {
                    GateVerdict::fail("peer vm-2 is silent")
                }
            }
        })));
        // Declared node by node, as the pipeline does: cloud-init, then WireGuard, per node.
        let barriers = [
            Arc::new(tokio::sync::Barrier::new(3)),
            Arc::new(tokio::sync::Barrier::new(3)),
        ];
        for node in ["n0", "n1", "n2"] {
            for (kind, barrier) in ["cloud_init_done", "node_wireguard_up"]
                .into_iter()
                .zip(&barriers)
            {
                let (l, b) = (log.clone(), barrier.clone());
                gates.push(Arc::new(FnGate::new(kind, move |_| {
                    let (l, b) = (l.clone(), b.clone());
                    async move {
                        b.wait().await;
                        l.lock().unwrap().push(format!("{kind} {node}"));
                        GateVerdict::pass(format!("{node}: {kind}"))
                    }
                })));
            }
        }
        gates
    };
    for vpn_ok in [true, false] {
        log.lock().unwrap().clear();
        let world = FakeWorld::new();
        let set = gates(vpn_ok);
        let p = pipeline(&world, |s| {
            if s.id().as_str() == "install_k0s" {
                set.iter().fold(s, |s, g| s.gate(g.clone()))
            } else {
                s
            }
        });
        let (r, sink) = deploy_recorded(p, MemoryStore::new()).await;
        let passed: Vec<String> = sink
            .events()
            .iter()
            .filter_map(|e| match e {
                Event::GatePassed { step, evidence, .. } if step.as_str() == "install_k0s" => {
                    Some(evidence.clone())
                }
                _ => None,
            })
            .collect();
        let log = log.lock().unwrap().clone();
        if vpn_ok {
            assert_eq!(r.outcome, RunOutcome::Succeeded);
            assert_eq!(
                passed,
                [
                    "all peers answer",
                    "n0: cloud_init_done",
                    "n0: node_wireguard_up",
                    "n1: cloud_init_done",
                    "n1: node_wireguard_up",
                    "n2: cloud_init_done",
                    "n2: node_wireguard_up",
                ],
                "events in declaration order"
            );
            assert_eq!(log.len(), 7, "{log:?}");
            assert_eq!(log[0], "vpn_up");
            assert!(
                log[1..4].iter().all(|l| l.starts_with("cloud_init_done"))
                    && log[4..].iter().all(|l| l.starts_with("node_wireguard_up")),
                "every cloud-init check before any WireGuard check: {log:?}"
            );
        } else {
            assert_eq!(r.outcome, RunOutcome::Blocked);
            assert!(passed.is_empty(), "{passed:?}");
            assert_eq!(log, ["vpn_up"], "no node gate was tried");
        }
    }
}
