//! Observation and the planner's inputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::cancel::Cancellation;
use crate::emit::Emitter;
use crate::event::Event;
use crate::gate::GateFailure;
use crate::id::StepId;
use crate::observation::{Observation, Observer, Snapshot};
use crate::pipeline::Pipeline;
use crate::plan::{PlanFacts, RunMark};
use crate::state::{DeploymentState, Status};
use crate::step::StepInputs;

/// Runs every observer concurrently, each under `timeout`, into one snapshot. A stop request
/// ends it at once: observers that had not answered are recorded as failed ("interrupted"),
/// so nothing is decided from them.
pub(crate) async fn observe_all(
    pipeline: &Pipeline,
    state: &DeploymentState,
    timeout: Duration,
    emitter: &Emitter,
    cancel: &Cancellation,
) -> Snapshot {
    let all: Vec<&Arc<dyn Observer>> = pipeline.observers().iter().collect();
    observe_with(&all, Snapshot::new(), state, timeout, emitter, cancel).await
}

/// After `finished` steps completed: observes again with only the observers they affect
/// ([`Observer::affected_by`]), keeping the other observers' facts from `base`.
pub(crate) async fn observe_again(
    pipeline: &Pipeline,
    base: &Snapshot,
    finished: &[StepId],
    state: &DeploymentState,
    timeout: Duration,
    emitter: &Emitter,
    cancel: &Cancellation,
) -> Snapshot {
    let affected: Vec<&Arc<dyn Observer>> = pipeline
        .observers()
        .iter()
        .filter(|o| finished.iter().any(|s| o.affected_by(s)))
        .collect();
    observe_with(&affected, base.clone(), state, timeout, emitter, cancel).await
}

/// Runs `observers` concurrently, each under `timeout`, into `snapshot` (replacing what each
/// gave before).
async fn observe_with(
    observers: &[&Arc<dyn Observer>],
    mut snapshot: Snapshot,
    state: &DeploymentState,
    timeout: Duration,
    emitter: &Emitter,
    cancel: &Cancellation,
) -> Snapshot {
    let state = Arc::new(state.clone());
    let mut set = JoinSet::new();
    for &obs in observers {
        let obs = Arc::clone(obs);
        let state = state.clone();
        set.spawn(async move {
            let started = Instant::now();
            let name = obs.name().to_owned();
            let r = tokio::time::timeout(timeout, obs.observe(&state)).await;
            (name, r, started.elapsed())
        });
    }
    let mut results = Vec::new();
    let mut pending: Vec<String> = observers.iter().map(|o| o.name().to_owned()).collect();
    loop {
        let joined = tokio::select! {
            j = set.join_next() => j,
            () = cancel.cancelled() => {
                set.abort_all();
                for name in pending.drain(..) {
                    snapshot.forget(&name);
                    snapshot.record_failure(&name, "interrupted before it answered");
                }
                break;
            }
        };
        match joined {
            Some(Ok(r)) => {
                pending.retain(|n| *n != r.0);
                results.push(r);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "an observer task failed"),
            None => break,
        }
    }
    // Deterministic event order regardless of completion order.
    results.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, r, elapsed) in results {
        snapshot.forget(&name);
        let error = match r {
            Ok(Ok(facts)) => {
                snapshot.insert_from(&name, facts);
                None
            }
            Ok(Err(e)) => Some(e.message),
            Err(_) => Some(format!("did not answer within {}s", timeout.as_secs())),
        };
        if let Some(e) = &error {
            snapshot.record_failure(&name, e.clone());
        }
        emitter.emit(Event::Observed {
            observer: name,
            error,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }
    snapshot
}

/// Each step's observation, fingerprint and journal check, plus the run's marks.
pub(crate) fn plan_facts(
    pipeline: &Pipeline,
    state: &DeploymentState,
    snapshot: &Snapshot,
    gate_failures: &BTreeMap<StepId, GateFailure>,
    marks: &BTreeMap<StepId, RunMark>,
) -> PlanFacts {
    let n = pipeline.steps().len();
    let mut facts = PlanFacts {
        observations: Vec::with_capacity(n),
        fingerprints: Vec::with_capacity(n),
        journal_faults: Vec::with_capacity(n),
        gate_failures: gate_failures.clone(),
        run: marks.clone(),
    };
    for (i, step) in pipeline.steps().iter().enumerate() {
        let rec = state.record(step.id());
        facts.observations.push(step.observe(snapshot, rec));
        let upstream = pipeline.upstream_outputs(i, state);
        facts.fingerprints.push(step.fingerprint(&StepInputs {
            step: step.id(),
            upstream: &upstream,
            state,
        }));
        // Every kept journal is checked, whatever the status: a failed step keeps its journal
        // too, and its next run settles it first.
        facts.journal_faults.push(
            rec.filter(|r| r.status == Status::InProgress || !r.journal.is_empty())
                .and_then(|r| step.check_journal(&r.journal).err())
                .map(|e| e.to_string()),
        );
    }
    facts
}

/// The observation of every step, for reports.
pub(crate) fn observations(pipeline: &Pipeline, facts: &PlanFacts) -> Vec<(StepId, Observation)> {
    pipeline
        .steps()
        .iter()
        .zip(&facts.observations)
        .map(|(s, o)| (s.id().clone(), o.clone()))
        .collect()
}
