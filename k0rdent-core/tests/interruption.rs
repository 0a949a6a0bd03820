//! The first Ctrl-C ends every in-process wait at once (issue #7 item 3): a slow observation,
//! a gate waiting within its budget and a retry back-off; a step that ignores the stop is
//! dropped after 2 s, or after the grace it declared for an external tool, which is announced.
//! Time is virtual (`start_paused`), so the bounds are exact and the tests never sleep.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use k0rdent_core::*;
use k0rdent_core::{
    cancel::Cancellation,
    engine::{EngineError, RunReport, StepResult},
    event::{Event, RecordingSink},
    gate::{Deadline, FnGate, GateVerdict, WaitBudget},
    state::{RunOutcome, Status},
    step::RetryPolicy,
};
use k0rdent_testkit::{FakeWorld, applies, deployment_pipeline, sid};

struct Run {
    task: tokio::task::JoinHandle<Result<RunReport, EngineError>>,
    cancel: Cancellation,
    sink: Arc<RecordingSink>,
}

fn start(p: Pipeline, store: &MemoryStore) -> Run {
    let cancel = Cancellation::new();
    let sink = Arc::new(RecordingSink::new());
    let e = Engine::builder(p, Arc::new(store.clone()))
        .cancellation(cancel.clone())
        .sink(sink.clone())
        .build()
        .unwrap();
    Run {
        task: tokio::spawn(async move { e.deploy().await }),
        cancel,
        sink,
    }
}

/// Interrupts after `after`, returns the report and how long the run took to end.
async fn interrupt(run: Run, after: Duration) -> (RunReport, Duration, Arc<RecordingSink>) {
    tokio::time::sleep(after).await;
    let asked = tokio::time::Instant::now();
    run.cancel.cancel("interrupted by the user");
    let r = run.task.await.unwrap().unwrap();
    (r, asked.elapsed(), run.sink)
}

fn assert_interrupted(r: &RunReport, store: &MemoryStore) {
    assert_eq!(r.outcome, RunOutcome::Interrupted);
    let s = store.state().expect("the state is valid and saved");
    assert_eq!(s.run.unwrap().outcome, Some(RunOutcome::Interrupted));
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_during_a_slow_observation_ends_the_run_at_once() {
    let world = FakeWorld::new();
    world.slow_observer(Duration::from_secs(50));
    let store = MemoryStore::new();
    let run = start(deployment_pipeline(&world, |s| s), &store);
    let (r, took, _) = interrupt(run, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_interrupted(&r, &store);
    assert!(
        applies(&world).is_empty(),
        "nothing was decided from a half observation"
    );
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_during_a_gate_wait_ends_the_run_at_once() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let gate = Arc::new(
        FnGate::new("cloud_init_done", |_| async {
            GateVerdict::fail("cloud-init status: running")
        })
        .wait(WaitBudget {
            deadline: Deadline::After(Duration::from_secs(1200)),
            interval: Duration::from_secs(30),
        }),
    );
    let p = deployment_pipeline(&world, |s| {
        if s.id().as_str() == "setup_vpn" {
            s.gate(gate.clone())
        } else {
            s
        }
    });
    let run = start(p, &store);
    let (r, took, sink) = interrupt(run, Duration::from_secs(100)).await;
    assert!(
        sink.events()
            .iter()
            .any(|e| matches!(e, Event::GateWaiting { .. })),
        "it was waiting"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_interrupted(&r, &store);
    assert_eq!(
        store.state().unwrap().status(&sid("setup_vpn")),
        Status::Pending,
        "a step stopped in its gates never started"
    );
}

#[tokio::test(start_paused = true)]
async fn ctrl_c_during_a_retry_back_off_ends_the_run_at_once() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = deployment_pipeline(&world, |s| {
        if s.id().as_str() == "setup_network" {
            s.transient_failures(5).retry(RetryPolicy {
                max_attempts: 5,
                initial_delay: Duration::from_secs(120),
                max_delay: Duration::from_secs(600),
            })
        } else {
            s
        }
    });
    let run = start(p, &store);
    let (r, took, sink) = interrupt(run, Duration::from_secs(10)).await;
    assert!(
        sink.events()
            .iter()
            .any(|e| matches!(e, Event::StepRetrying { .. })),
        "it was backing off"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_interrupted(&r, &store);
    let rec = store.state().unwrap().phases["setup_network"].clone();
    assert_eq!(rec.status, Status::InProgress, "it resumes next run");
    assert!(rec.last_error.unwrap().contains("interrupted"));
}

/// A step that runs a "tool" with a declared grace and ignores cancellation for `stops_after`.
struct ToolStep {
    id: StepId,
    grace: Duration,
    stops_after: Duration,
}

#[async_trait::async_trait]
impl Step for ToolStep {
    fn id(&self) -> &StepId {
        &self.id
    }
    fn observe(&self, _: &Snapshot, _: Option<&StepRecord>) -> Observation {
        Observation::Unobservable
    }
    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let _grace = ctx.stop_grace(self.grace, "helm upgrade");
        ctx.cancelled().await;
        // The tool got SIGTERM and takes a while to exit cleanly.
        tokio::time::sleep(self.stops_after).await;
        Err(StepError::interrupted("helm upgrade stopped"))
    }
    async fn teardown(&self, _: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing("test step"))
    }
}

async fn run_tool(grace: Duration, stops_after: Duration) -> (RunReport, Duration, Vec<Event>) {
    let store = MemoryStore::new();
    let p = Pipeline::builder()
        .step(ToolStep {
            id: sid("install_k0rdent"),
            grace,
            stops_after,
        })
        .build()
        .unwrap();
    let run = start(p, &store);
    let (r, took, sink) = interrupt(run, Duration::from_secs(3)).await;
    assert_interrupted(&r, &store);
    assert_eq!(
        store.state().unwrap().status(&sid("install_k0rdent")),
        Status::InProgress
    );
    (r, took, sink.events())
}

#[tokio::test(start_paused = true)]
async fn a_declared_tool_grace_is_waited_for_and_announced() {
    let (r, took, events) = run_tool(Duration::from_secs(30), Duration::from_secs(12)).await;
    assert!(
        took >= Duration::from_secs(12) && took < Duration::from_secs(13),
        "the tool was given the time it needed: {took:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::StepStopping { what, grace_ms: 30_000, .. } if what == "helm upgrade"
        )),
        "the user is told what is being waited for"
    );
    assert!(r.steps.iter().any(|s| matches!(
        &s.result,
        StepResult::Interrupted { reason } if reason.contains("helm upgrade stopped")
    )));
}

#[tokio::test(start_paused = true)]
async fn a_tool_that_outlasts_its_grace_is_dropped_at_the_grace() {
    let (r, took, _) = run_tool(Duration::from_secs(30), Duration::from_secs(600)).await;
    assert!(
        took >= Duration::from_secs(30) && took < Duration::from_secs(31),
        "{took:?}"
    );
    assert!(r.steps.iter().any(|s| matches!(
        &s.result,
        StepResult::Interrupted { reason } if reason.contains("abandoned after 30 s")
    )));
}
