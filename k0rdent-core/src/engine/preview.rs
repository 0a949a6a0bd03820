//! `plan`: what `deploy` would do now, read-only — no lock, no save, gates checked once.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::facts::{observations, observe_all, plan_facts};
use super::gates::{GateOutcome, check_once, concurrently, runs};
use super::{Engine, EngineError, PlanReport};
use crate::emit::Emitter;
use crate::gate::{GateContext, GateFailure, GateVerdict};
use crate::id::RunId;
use crate::plan::plan;

impl Engine {
    /// What `deploy` would do now, without taking the lock or changing anything. Gates of
    /// steps that could start now are checked once (gates that wait are not waited for), and
    /// [preflight](crate::gate::Gate::preflight) gates of every step that would run.
    /// With [`EngineBuilder::until`](super::EngineBuilder::until), only that step or phase
    /// and what it needs are in the report.
    ///
    /// # Errors
    /// [`EngineError::Store`] if the state cannot be read.
    pub async fn plan(&self) -> Result<PlanReport, EngineError> {
        let state_opt = match &self.options.planning_state {
            Some(s) => Some(s.clone()),
            None => self.store.load().await?,
        };
        let state = state_opt.clone().unwrap_or_default();
        let emitter = Emitter::transient(self.sink.clone(), RunId::generate());
        let snapshot = observe_all(
            &self.pipeline,
            &state,
            self.options.observe_timeout,
            &emitter,
            &self.cancel,
        )
        .await;
        let marks = BTreeMap::new();
        let mut failures = BTreeMap::new();
        let facts = plan_facts(&self.pipeline, &state, &snapshot, &failures, &marks);
        let first = plan(self.pipeline.graph(), &state, &facts);
        let shared = Arc::new(state.clone());
        for entry in first.entries.iter().filter(|e| e.decision.executes()) {
            let Some(i) = self.pipeline.graph().index_of(&entry.step) else {
                continue;
            };
            let ctx = GateContext {
                step: entry.step.clone(),
                state: shared.clone(),
                watching: false,
            };
            // Gates that wait are not waited for; the rest are checked once, kind by kind
            // (each kind's gates together), up to the first failure.
            let checked: Vec<_> = self.pipeline.steps()[i]
                .gates()
                .into_iter()
                .filter(|g| g.wait(&state).is_none())
                // A step that waits for an upstream one: only what does not depend on it.
                .filter(|g| entry.ready() || g.preflight())
                .collect();
            'runs: for run in runs(&checked) {
                let done = concurrently(&checked, &run, |gate| {
                    let ctx = ctx.clone();
                    async move {
                        match check_once(gate.as_ref(), &ctx).await {
                            GateVerdict::Pass { evidence } => GateOutcome::Pass(evidence),
                            GateVerdict::Fail { reason, remedy } => {
                                GateOutcome::Fail(GateFailure {
                                    gate: gate.name().to_owned(),
                                    reason,
                                    remedy,
                                })
                            }
                        }
                    }
                })
                .await;
                for outcome in done {
                    if let GateOutcome::Fail(f) = outcome {
                        failures.insert(entry.step.clone(), f);
                        break 'runs;
                    }
                }
            }
        }
        let mut facts = facts;
        facts.gate_failures = failures;
        let mut plan = plan(self.pipeline.graph(), &state, &facts);
        let mut observations = observations(&self.pipeline, &facts);
        // `until`: only the target and what it needs are judged (and shown).
        let graph = self.pipeline.graph();
        if let Some(scope) = self.options.until.as_ref().and_then(|u| graph.closure(u)) {
            let keep = |id: &crate::id::StepId| {
                graph
                    .index_of(id)
                    .is_some_and(|i| scope.get(i).copied().unwrap_or(false))
            };
            plan.entries.retain(|e| keep(&e.step));
            observations.retain(|(id, _)| keep(id));
        }
        Ok(PlanReport {
            observations,
            observer_failures: snapshot
                .failures()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            plan,
            state: state_opt,
        })
    }
}
