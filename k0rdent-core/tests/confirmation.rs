//! Destructive work runs only when confirmed, and journals survive failure (issue #7 items 1,
//! 2, 6, 7): a step that finds it must replace something asks, `-y` confirms it with an event,
//! without `-y` nothing is replaced and the run is blocked; a failed step's journal is kept for
//! the next run; a step that reads what it writes does not rerun for nothing; teardown says
//! what it did.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use k0rdent_core::*;
use k0rdent_core::{
    event::{Event, RecordingSink},
    plan::{Decision, Reason},
    state::{RunOutcome, Status},
};
use k0rdent_testkit::{FakeStep, FakeWorld, applies, deployment_pipeline, sid};

fn engine(p: Pipeline, store: &MemoryStore, yes: bool) -> (Engine, Arc<RecordingSink>) {
    let sink = Arc::new(RecordingSink::new());
    let e = Engine::builder(p, Arc::new(store.clone()))
        .confirm_replace(yes)
        .sink(sink.clone())
        .build()
        .unwrap();
    (e, sink)
}

fn replaced(world: &FakeWorld) -> Vec<String> {
    world
        .log()
        .into_iter()
        .filter_map(|l| l.strip_prefix("replace ").map(str::to_owned))
        .collect()
}

/// vm-2 exists but was built wrong (found only by the step): every rerun must ask.
fn vm2_needs_replacing(s: FakeStep) -> FakeStep {
    if s.id().as_str() == "create_vms/vm-2" {
        s.destructive("provisioning failed; it is deleted and created again")
    } else {
        s
    }
}

#[tokio::test]
async fn a_replace_a_step_discovers_is_not_done_without_confirmation_and_blocks() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    world.create(&sid("create_vms/vm-2"), "half-built");
    let (e, sink) = engine(
        deployment_pipeline(&world, vm2_needs_replacing),
        &store,
        false,
    );
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert!(replaced(&world).is_empty(), "nothing replaced without -y");
    let entry = r.final_plan.entry(&sid("create_vms/vm-2")).unwrap();
    assert_eq!(entry.decision, Decision::Blocked);
    assert!(
        matches!(&entry.reason, Reason::NeedsConfirmation { detail } if detail.contains("deleted and created again")),
        "{entry:?}"
    );
    assert_eq!(
        entry.reason.remedy().as_deref(),
        Some("review the plan (`k0rdent plan`) and run again with -y to accept")
    );
    // What depends on it did not run; its sibling did.
    assert!(applies(&world).contains(&"create_vms/vm-1".to_owned()));
    assert!(!applies(&world).contains(&"setup_vpn".to_owned()));
    let rec = store.state().unwrap().phases["create_vms"].items["vm-2"].clone();
    assert!(rec.blocked.unwrap().contains("needs confirmation"));
    assert!(
        !sink
            .events()
            .iter()
            .any(|e| matches!(e, Event::StepConfirmed { .. }))
    );
}

#[tokio::test]
async fn yes_confirms_a_discovered_replace_once_and_says_so() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    world.create(&sid("create_vms/vm-2"), "half-built");
    let (e, sink) = engine(
        deployment_pipeline(&world, vm2_needs_replacing),
        &store,
        true,
    );
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    assert_eq!(replaced(&world), ["create_vms/vm-2"]);
    let confirmed: Vec<_> = sink
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::StepConfirmed { .. }))
        .collect();
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    // The confirmation was not counted as a failed attempt.
    let rec = store.state().unwrap().phases["create_vms"].items["vm-2"].clone();
    assert_eq!(rec.attempts, 1);
}

#[tokio::test]
async fn an_immutable_change_after_a_failed_run_plans_replace_and_needs_confirmation() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let (e, _) = engine(deployment_pipeline(&world, |s| s), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Succeeded);
    // vm-2 fails in a later run (its inputs changed), keeping its recorded fingerprint.
    let failing = |s: FakeStep| {
        if s.id().as_str() == "create_vms/vm-2" {
            s.input("v2").fails("quota exceeded")
        } else {
            s
        }
    };
    let (e, _) = engine(deployment_pipeline(&world, failing), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Failed);
    assert_eq!(
        store.state().unwrap().status(&sid("create_vms/vm-2")),
        Status::Failed
    );
    // Now an immutable input changes: a failed record no longer plans a plain `run`.
    let changed = |s: FakeStep| {
        if s.id().as_str() == "create_vms/vm-2" {
            s.input("v2").immutable("new-custom-data")
        } else {
            s
        }
    };
    let before = applies(&world).len();
    let (e, _) = engine(deployment_pipeline(&world, changed), &store, false);
    let plan = e.plan().await.unwrap().plan;
    let entry = plan.entry(&sid("create_vms/vm-2")).unwrap();
    assert_eq!(entry.decision, Decision::Replace, "{entry:?}");
    assert!(entry.needs_confirmation());
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    assert_eq!(applies(&world).len(), before, "nothing ran unconfirmed");
    let (e, sink) = engine(deployment_pipeline(&world, changed), &store, true);
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert!(sink.events().iter().any(|e| matches!(
        e,
        Event::StepStarted { step, decision: Decision::Replace, .. } if step.as_str() == "create_vms/vm-2"
    )));
}

#[tokio::test]
async fn a_step_that_runs_out_of_retries_keeps_its_journal_for_the_next_run() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let failing = |s: FakeStep| {
        if s.id().as_str() == "setup_network" {
            s.fails("AuthorizationFailed")
        } else {
            s
        }
    };
    let (e, _) = engine(deployment_pipeline(&world, failing), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Failed);
    let rec = store.state().unwrap().phases["setup_network"].clone();
    assert_eq!(rec.status, Status::Failed);
    let first = rec
        .journal
        .latest("started")
        .cloned()
        .expect("journal kept");
    // The next run plans `run` (it failed) and its step sees the journal of the failed one.
    let (e, _) = engine(deployment_pipeline(&world, failing), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Failed);
    let rec = store.state().unwrap().phases["setup_network"].clone();
    assert_eq!(rec.journal.latest("started"), Some(&first));
    // Once it completes, the journal is cleared.
    let (e, _) = engine(deployment_pipeline(&world, |s| s), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Succeeded);
    assert!(
        store.state().unwrap().phases["setup_network"]
            .journal
            .is_empty()
    );
}

#[tokio::test]
async fn a_step_whose_inputs_include_what_it_writes_does_not_rerun_for_nothing() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let selfish = |s: FakeStep| {
        if s.id().as_str() == "prepare_deployment" {
            s.reads_what_it_writes()
        } else {
            s
        }
    };
    let (e, _) = engine(deployment_pipeline(&world, selfish), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Succeeded);
    let n = applies(&world).len();
    let (e, _) = engine(deployment_pipeline(&world, selfish), &store, false);
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert!(
        r.initial_plan
            .entries
            .iter()
            .all(|e| e.decision == Decision::Skip),
        "{}",
        r.initial_plan
    );
    assert_eq!(applies(&world).len(), n, "the second deploy ran nothing");
}

#[tokio::test]
async fn reset_says_which_steps_had_nothing_to_undo() {
    struct Marker(StepId);
    #[async_trait::async_trait]
    impl Step for Marker {
        fn id(&self) -> &StepId {
            &self.0
        }
        fn observe(&self, _: &Snapshot, _: Option<&StepRecord>) -> Observation {
            Observation::Unobservable
        }
        async fn apply(&self, _: &StepContext) -> Result<StepOutcome, StepError> {
            Ok(StepOutcome::done(Outputs::new(), Evidence::new()))
        }
        async fn teardown(&self, _: &StepContext) -> Result<Teardown, StepError> {
            Ok(Teardown::nothing("the network's teardown removes it"))
        }
    }
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let p = Pipeline::builder()
        .step(FakeStep::new("setup_network", &world))
        .step(Marker(sid("create_vms/vm-1")))
        .observer(k0rdent_testkit::FakeObserver(world.clone()))
        .build()
        .unwrap();
    let e = Engine::builder(p, Arc::new(store.clone())).build().unwrap();
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Succeeded);
    let r = e.reset().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(r.torn_down, ["setup_network"]);
    assert_eq!(
        r.nothing_to_undo,
        [(
            "create_vms/vm-1".to_owned(),
            "the network's teardown removes it".to_owned()
        )]
    );
}

#[tokio::test]
async fn an_interrupted_step_settles_its_journal_before_asking_to_replace() {
    let world = FakeWorld::new();
    let store = MemoryStore::new();
    let (e, _) = engine(deployment_pipeline(&world, |s| s), &store, false);
    assert_eq!(e.deploy().await.unwrap().outcome, RunOutcome::Succeeded);
    // vm-2 was interrupted with an operation journaled, and its custom data changed since.
    let mut st = store.state().unwrap();
    let r = st.record_mut(&sid("create_vms/vm-2"));
    r.status = Status::InProgress;
    r.journal = k0rdent_core::state::Journal(vec![k0rdent_core::state::JournalEntry {
        at: chrono::Utc::now(),
        key: "put_accepted".into(),
        value: serde_json::json!({"operation": "op-1"}),
    }]);
    store.overwrite(st);
    let changed = |s: FakeStep| {
        if s.id().as_str() == "create_vms/vm-2" {
            s.immutable("new-custom-data")
                .destructive("custom data changed; it is deleted and created again")
        } else {
            s
        }
    };
    let before = applies(&world).len();
    let (e, _) = engine(deployment_pipeline(&world, changed), &store, false);
    let r = e.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    // It ran (unconfirmed) to settle what it had started, then asked; nothing was replaced.
    assert_eq!(applies(&world)[before..], ["create_vms/vm-2"]);
    assert!(replaced(&world).is_empty());
    let entry = r.final_plan.entry(&sid("create_vms/vm-2")).unwrap();
    assert!(
        matches!(&entry.reason, Reason::NeedsConfirmation { detail } if detail.contains("custom data changed")),
        "{entry:?}"
    );
    let rec = store.state().unwrap().phases["create_vms"].items["vm-2"].clone();
    assert_eq!(rec.status, Status::InProgress);
    assert!(rec.journal.latest("put_accepted").is_some(), "journal kept");
}
