//! `deploy`: the run loop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::task::JoinSet;

use super::cell::StateCell;
use super::emit::Emitter;
use super::facts::{observations, observe_all, plan_facts};
use super::gates::check_once;
use super::task::{Limits, Task, TaskResult};
use super::{Engine, EngineError, PlanReport, RunReport, StepReport, StepResult};
use crate::event::Event;
use crate::gate::{GateContext, GateFailure, GateVerdict};
use crate::id::{RunId, StepId};
use crate::observation::Snapshot;
use crate::plan::{Decision, Plan, Reason, RunMark, plan};
use crate::state::{DeploymentState, EvidenceRecord, RunOutcome, RunRecord, Status};
use crate::store::{LockHolder, hostname};

/// How long a drain waits for steps that should each have stopped within their grace.
const DRAIN_SAFETY_NET: std::time::Duration = std::time::Duration::from_secs(300);

struct Loop<'a> {
    engine: &'a Engine,
    cell: Arc<StateCell>,
    emitter: Emitter,
    in_scope: Vec<bool>,
    marks: BTreeMap<StepId, RunMark>,
    gate_failures: BTreeMap<StepId, GateFailure>,
    reports: Vec<StepReport>,
    running: HashSet<usize>,
    task_ids: HashMap<tokio::task::Id, usize>,
    finished_seq: Vec<u64>,
    seq: u64,
    observed_seq: u64,
    snapshot: Arc<Snapshot>,
}

impl Engine {
    /// Observes, plans and converges, saving the state after every transition.
    ///
    /// Returns a report whose outcome says whether everything asked for converged, failed,
    /// was blocked or was interrupted.
    ///
    /// # Errors
    /// [`EngineError`] when the run cannot start or the state cannot be written (including
    /// another live run holding the lock, and an unfinished reset).
    pub async fn deploy(&self) -> Result<RunReport, EngineError> {
        let run_id = RunId::generate();
        let holder = LockHolder::current(run_id.clone(), "deploy");
        let lock = self.take_lock(&holder).await?;
        let mut state = self.store.load().await?.unwrap_or_default();
        if let Some(r) = &state.reset {
            return Err(EngineError::ResetInProgress {
                since: r.started_at.to_rfc3339(),
                run_id: r.run_id.clone(),
            });
        }
        let emitter = Emitter::persistent(
            self.sink.clone(),
            self.events.clone(),
            run_id.clone(),
            &self.cancel,
        );
        emitter.emit(Event::RunStarted {
            run_id: run_id.clone(),
            command: "deploy".into(),
            pid: holder.pid,
            host: holder.host.clone(),
        });
        settle_previous_run(&mut state, &emitter);
        state.run = Some(RunRecord {
            id: run_id.clone(),
            command: "deploy".into(),
            pid: holder.pid,
            host: hostname(),
            started_at: Utc::now(),
            finished_at: None,
            outcome: None,
        });
        self.store.save(&mut state).await?;
        let started = Instant::now();
        let graph = self.pipeline.graph();
        let in_scope = match &self.options.until {
            Some(u) => graph.closure(u).unwrap_or_else(|| vec![true; graph.len()]),
            None => vec![true; graph.len()],
        };
        let snapshot = observe_all(
            &self.pipeline,
            &state,
            self.options.observe_timeout,
            &emitter,
            &self.cancel,
        )
        .await;
        let mut lp = Loop {
            engine: self,
            cell: Arc::new(StateCell::new(
                state,
                self.store.clone(),
                self.keys.clone(),
                Some(lock),
            )),
            emitter: emitter.clone(),
            in_scope,
            marks: BTreeMap::new(),
            gate_failures: BTreeMap::new(),
            reports: Vec::new(),
            running: HashSet::new(),
            task_ids: HashMap::new(),
            finished_seq: vec![0; graph.len()],
            seq: 0,
            observed_seq: 0,
            snapshot: Arc::new(snapshot),
        };
        let result = lp.execute().await;
        let (initial_plan, final_plan) = match result {
            Ok(p) => p,
            Err(e) => {
                emitter.flush().await;
                return Err(e);
            }
        };
        let outcome = lp.outcome(&final_plan);
        let rid = run_id.clone();
        let recorded = lp
            .cell
            .update(move |s| {
                if let Some(run) = s.run.as_mut().filter(|r| r.id == rid) {
                    run.finished_at = Some(Utc::now());
                    run.outcome = Some(outcome);
                }
            })
            .await;
        if let Err(e) = recorded {
            emitter.flush().await;
            return Err(e.into());
        }
        emitter.emit(Event::RunFinished {
            run_id: run_id.clone(),
            outcome,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        emitter.flush().await;
        Ok(RunReport {
            run_id,
            outcome,
            initial_plan,
            final_plan,
            steps: lp.reports,
        })
    }

    /// What `deploy` would do now, without taking the lock or changing anything. Gates of
    /// steps that could start now are checked once (gates that wait are not waited for).
    ///
    /// # Errors
    /// [`EngineError::Store`] if the state cannot be read.
    pub async fn plan(&self) -> Result<PlanReport, EngineError> {
        let state_opt = self.store.load().await?;
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
        for entry in first.entries.iter().filter(|e| e.ready()) {
            let Some(i) = self.pipeline.graph().index_of(&entry.step) else {
                continue;
            };
            let ctx = GateContext {
                step: entry.step.clone(),
                state: shared.clone(),
                watching: false,
            };
            for gate in self.pipeline.steps()[i].gates() {
                if gate.wait(&state).is_some() {
                    continue;
                }
                if let GateVerdict::Fail { reason, remedy } = check_once(gate.as_ref(), &ctx).await
                {
                    failures.insert(
                        entry.step.clone(),
                        GateFailure {
                            gate: gate.name().to_owned(),
                            reason,
                            remedy,
                        },
                    );
                    break;
                }
            }
        }
        let mut facts = facts;
        facts.gate_failures = failures;
        let plan = plan(self.pipeline.graph(), &state, &facts);
        Ok(PlanReport {
            observations: observations(&self.pipeline, &facts),
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

/// A run that died without recording its outcome is marked crashed.
fn settle_previous_run(state: &mut DeploymentState, emitter: &Emitter) {
    if let Some(run) = state.run.as_mut()
        && run.outcome.is_none()
    {
        run.outcome = Some(RunOutcome::Crashed);
        emitter.emit(Event::PreviousRunDied {
            run_id: run.id.clone(),
            pid: run.pid,
        });
    }
}

impl Loop<'_> {
    async fn plan_now(&self) -> (DeploymentState, Plan) {
        let state = self.cell.snapshot().await;
        let facts = plan_facts(
            &self.engine.pipeline,
            &state,
            &self.snapshot,
            &self.gate_failures,
            &self.marks,
        );
        let p = plan(self.engine.pipeline.graph(), &state, &facts);
        (state, p)
    }

    /// Records what the first plan found without executing anything: disabled steps become
    /// `skipped`, verified steps get fresh evidence (and adopted ones their fingerprint),
    /// drift is reported. One save.
    async fn record_first_plan(&self, plan: &Plan) -> Result<(), EngineError> {
        let pipeline = &self.engine.pipeline;
        let state = self.cell.snapshot().await;
        let observed_at = self.snapshot.observed_at().unwrap_or_else(Utc::now);
        let mut updates = Vec::new();
        for e in &plan.entries {
            let Some(i) = pipeline.graph().index_of(&e.step) else {
                continue;
            };
            match &e.reason {
                Reason::Disabled { reason } => {
                    let rec = state.record(&e.step);
                    if rec.is_none_or(|r| {
                        r.status != Status::Skipped || r.skipped_reason.as_deref() != Some(reason)
                    }) {
                        self.emitter.emit(Event::StepDisabled {
                            step: e.step.clone(),
                            reason: reason.clone(),
                        });
                        updates.push((e.step.clone(), Update::Disabled(reason.clone())));
                    }
                }
                Reason::Verified | Reason::Adopted if !e.provisional => {
                    let step = &pipeline.steps()[i];
                    let rec = state.record(&e.step);
                    if let crate::observation::Observation::Done { evidence } =
                        step.observe(&self.snapshot, rec)
                    {
                        let fp = (e.reason == Reason::Adopted).then(|| {
                            let upstream = pipeline.upstream_outputs(i, &state);
                            step.fingerprint(&crate::step::StepInputs {
                                step: &e.step,
                                upstream: &upstream,
                                state: &state,
                            })
                        });
                        updates.push((e.step.clone(), Update::Evidence(evidence, fp)));
                    }
                }
                Reason::Drift { detail } => self.emitter.emit(Event::Drift {
                    step: e.step.clone(),
                    detail: detail.clone(),
                }),
                _ => {}
            }
        }
        if updates.is_empty() {
            return Ok(());
        }
        self.cell
            .update(move |s| {
                for (id, u) in updates {
                    let r = s.record_mut(&id);
                    match u {
                        Update::Disabled(reason) => {
                            r.status = Status::Skipped;
                            r.skipped_reason = Some(reason);
                            r.finished_at = Some(Utc::now());
                        }
                        Update::Evidence(facts, fp) => {
                            r.evidence = Some(EvidenceRecord { observed_at, facts });
                            if let Some(fp) = fp {
                                r.fingerprint = Some(fp);
                            }
                        }
                    }
                    if id.is_item() {
                        s.summarize_phase(id.phase());
                    }
                }
            })
            .await?;
        Ok(())
    }

    async fn execute(&mut self) -> Result<(Plan, Plan), EngineError> {
        let engine = self.engine;
        let graph = engine.pipeline.graph();
        let mut tasks: JoinSet<TaskResult> = JoinSet::new();
        let mut initial: Option<Plan> = None;
        let mut stop_reported = false;
        loop {
            let (state, current) = self.plan_now().await;
            if initial.is_none() {
                self.emitter.emit(Event::Planned {
                    plan: current.clone(),
                });
                self.record_first_plan(&current).await?;
                initial = Some(current.clone());
            }
            let cancelled = engine.cancel.is_cancelled();
            if cancelled && !stop_reported {
                stop_reported = true;
                self.emitter.emit(Event::StopRequested {
                    reason: engine
                        .cancel
                        .reason()
                        .unwrap_or_else(|| "interrupted".into()),
                });
            }
            let mut replan = false;
            let mut observe = false;
            let mut start = Vec::new();
            if !cancelled {
                let mut by_index: Vec<Option<&crate::plan::PlanEntry>> = vec![None; graph.len()];
                for e in &current.entries {
                    if let Some(i) = graph.index_of(&e.step) {
                        by_index[i] = Some(e);
                    }
                }
                let settled = |d: usize| {
                    by_index[d].is_some_and(|de| {
                        !de.provisional
                            && matches!(de.decision, Decision::Skip | Decision::Disabled)
                    })
                };
                for (i, e) in by_index.iter().enumerate() {
                    let Some(e) = e else {
                        continue;
                    };
                    if !self.in_scope[i]
                        || self.running.contains(&i)
                        || self.marks.contains_key(&e.step)
                        || !graph.deps(i).iter().all(|&d| settled(d))
                    {
                        continue;
                    }
                    // Its dependencies just finished: what it sees may have changed (a tunnel
                    // is back, a VM exists), so observe again before deciding.
                    if graph
                        .deps(i)
                        .iter()
                        .any(|&d| self.finished_seq[d] > self.observed_seq)
                    {
                        observe = true;
                        break;
                    }
                    if !e.ready() {
                        continue;
                    }
                    // Unconfirmed destructive work blocks before the step runs, unless the step
                    // has a journal from an interrupted attempt: then it runs unconfirmed, so it
                    // settles what it had started first, and asks when it reaches the
                    // destructive part (`confirmed()` is false).
                    let journaled = state
                        .record(&e.step)
                        .is_some_and(|r| r.status == Status::InProgress && !r.journal.is_empty());
                    if e.needs_confirmation() && !engine.options.confirm_replace && !journaled {
                        self.marks.insert(
                            e.step.clone(),
                            RunMark::NeedsConfirmation(e.message.to_string()),
                        );
                        replan = true;
                        continue;
                    }
                    start.push((i, e.decision, e.needs_confirmation()));
                }
            }
            if replan {
                continue;
            }
            if observe {
                let fresh = observe_all(
                    &engine.pipeline,
                    &state,
                    engine.options.observe_timeout,
                    &self.emitter,
                    &engine.cancel,
                )
                .await;
                self.snapshot = Arc::new(fresh);
                self.observed_seq = self.seq;
                continue;
            }
            let room = engine
                .options
                .concurrency
                .saturating_sub(self.running.len());
            for (i, decision, planned_confirmation) in start.into_iter().take(room) {
                let upstream = engine.pipeline.upstream_outputs(i, &state);
                let task = Task {
                    pipeline: engine.pipeline.clone(),
                    index: i,
                    decision,
                    planned_confirmation,
                    may_confirm: engine.options.confirm_replace,
                    upstream: Arc::new(upstream),
                    snapshot: self.snapshot.clone(),
                    cell: self.cell.clone(),
                    emitter: self.emitter.clone(),
                    run_cancel: engine.cancel.clone(),
                    limits: Limits {
                        default_timeout: engine
                            .options
                            .default_limit(&engine.pipeline.graph().spec(i).id),
                        stop_grace: engine.options.stop_grace,
                    },
                };
                self.running.insert(i);
                let span = tracing::info_span!("step", step = %engine.pipeline.graph().spec(i).id, run = %self.emitter.run_id());
                let handle = tasks.spawn(tracing::Instrument::instrument(task.run(), span));
                self.task_ids.insert(handle.id(), i);
            }
            if self.running.is_empty() {
                let (_, last) = self.plan_now().await;
                return Ok((initial.unwrap_or_default(), last));
            }
            if cancelled {
                self.drain(&mut tasks).await;
                let (_, last) = self.plan_now().await;
                return Ok((initial.unwrap_or_default(), last));
            }
            tokio::select! {
                joined = tasks.join_next_with_id() => {
                    if let Some(j) = joined {
                        self.finish(j);
                    }
                }
                () = engine.cancel.cancelled() => {}
            }
        }
    }

    /// After a stop request: every running step bounds its own stop (its grace, then it is
    /// dropped and stays in progress), so this waits for them; the safety net only catches a
    /// step that blocks its thread.
    async fn drain(&mut self, tasks: &mut JoinSet<TaskResult>) {
        let deadline = tokio::time::Instant::now() + DRAIN_SAFETY_NET;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next_with_id()).await {
                Ok(Some(j)) => self.finish(j),
                Ok(None) => break,
                Err(_) => {
                    tasks.abort_all();
                    while tasks.join_next().await.is_some() {}
                    let abandoned: Vec<usize> = self.running.drain().collect();
                    for i in abandoned {
                        let id = self.engine.pipeline.graph().spec(i).id.clone();
                        let reason = format!(
                            "abandoned after {} s without reaching a safe point",
                            DRAIN_SAFETY_NET.as_secs()
                        );
                        self.emitter.emit(Event::StepInterrupted {
                            step: id.clone(),
                            reason: reason.clone(),
                        });
                        self.reports.push(StepReport {
                            step: id,
                            result: StepResult::Interrupted { reason },
                        });
                    }
                    break;
                }
            }
        }
    }

    fn finish(&mut self, joined: Result<(tokio::task::Id, TaskResult), tokio::task::JoinError>) {
        let (task_id, result) = match joined {
            Ok(x) => x,
            Err(e) => {
                // Steps must not panic; if one does, it fails (and stays in progress on disk,
                // so the next run resumes it) instead of taking the run down.
                let msg = format!("the step panicked: {e}");
                tracing::error!(error = %e, "a step task panicked");
                (
                    e.id(),
                    TaskResult::Failed {
                        error: msg,
                        remedy: None,
                    },
                )
            }
        };
        let Some(i) = self.task_ids.remove(&task_id) else {
            return;
        };
        self.running.remove(&i);
        let id = self.engine.pipeline.graph().spec(i).id.clone();
        let report = match result {
            TaskResult::Completed {
                duration,
                outputs_changed,
            } => {
                self.seq += 1;
                self.finished_seq[i] = self.seq;
                self.marks.insert(id.clone(), RunMark::Completed);
                StepResult::Completed {
                    duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    outputs_changed,
                }
            }
            TaskResult::Failed { error, remedy } => {
                self.marks
                    .insert(id.clone(), RunMark::Failed(error.clone()));
                StepResult::Failed { error, remedy }
            }
            TaskResult::Blocked(f) => {
                let r = StepResult::Blocked {
                    reason: f.to_string(),
                    remedy: f.remedy.clone(),
                };
                self.gate_failures.insert(id.clone(), f);
                r
            }
            TaskResult::NeedsConfirmation(change) => {
                let reason = format!("needs confirmation (-y): {change}");
                self.marks
                    .insert(id.clone(), RunMark::NeedsConfirmation(change));
                StepResult::Blocked {
                    reason,
                    remedy: Some(
                        "review the plan (`k0rdent plan`) and run again with -y to accept".into(),
                    ),
                }
            }
            TaskResult::Interrupted(reason) => {
                if !self.engine.cancel.is_cancelled() {
                    // Stopped on its own: do not restart it in this run.
                    self.marks.insert(
                        id.clone(),
                        RunMark::Failed(format!("interrupted: {reason}")),
                    );
                }
                StepResult::Interrupted { reason }
            }
        };
        self.reports.push(StepReport {
            step: id,
            result: report,
        });
    }

    fn outcome(&self, last: &Plan) -> RunOutcome {
        if self.engine.cancel.is_cancelled() {
            return RunOutcome::Interrupted;
        }
        if self.marks.values().any(|m| matches!(m, RunMark::Failed(_))) {
            return RunOutcome::Failed;
        }
        let graph = self.engine.pipeline.graph();
        let unfinished = last.entries.iter().any(|e| {
            graph.index_of(&e.step).is_some_and(|i| self.in_scope[i])
                && !matches!(e.decision, Decision::Skip | Decision::Disabled)
        });
        if unfinished {
            RunOutcome::Blocked
        } else {
            RunOutcome::Succeeded
        }
    }
}

enum Update {
    Disabled(String),
    Evidence(
        crate::observation::Evidence,
        Option<crate::fingerprint::Fingerprint>,
    ),
}
