//! The scheduler behind `deploy`: re-plans after every step transition, starts the steps the
//! plan says are ready (within the concurrency limit and `--until`'s scope), observes again
//! when a step's dependencies finished, and turns each finished task into a report and a mark
//! the planner reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use tokio::task::JoinSet;

use super::facts::{observe_again, plan_facts};
use super::task::{Limits, Task, TaskResult};
use super::{Engine, EngineError, StepReport, StepResult};
use crate::cell::StateCell;
use crate::emit::Emitter;
use crate::event::Event;
use crate::gate::GateFailure;
use crate::id::StepId;
use crate::observation::Snapshot;
use crate::plan::{CONFIRM_REMEDY, Decision, Plan, Reason, RunMark, plan};
use crate::state::{DeploymentState, EvidenceRecord, RunOutcome, Status};

/// How long a drain waits for steps that should each have stopped within their grace.
const DRAIN_SAFETY_NET: std::time::Duration = std::time::Duration::from_secs(300);

/// Where a step is in this run.
#[derive(Debug)]
enum Progress {
    /// Not started, or stopped without a verdict (blocked by a gate, interrupted by the run's
    /// stop): the plan decides whether it starts.
    Pending,
    /// Its task runs in the scheduler's `JoinSet` under this id.
    Running(tokio::task::Id),
    /// It must not start again in this run; the mark (completed, failed, needs confirmation)
    /// tells the planner why.
    Finished(RunMark),
}

/// One step of the pipeline as the scheduler tracks it; slot `i` is the graph's step `i`.
#[derive(Debug)]
struct Slot {
    id: StepId,
    /// Part of this run (`--until` leaves out what its target does not need).
    in_scope: bool,
    progress: Progress,
    /// The gate that blocked it in this run, for the planner.
    gate_failure: Option<GateFailure>,
    /// The completion counter's value when it completed in this run (0: it did not): when
    /// it is newer than the last observation, its dependents observe again before deciding.
    completed_at: u64,
}

impl Slot {
    fn is_running(&self) -> bool {
        matches!(self.progress, Progress::Running(_))
    }
}

/// Runs one `deploy`'s steps; built by [`Engine::deploy`], which records the run around it.
pub(super) struct Scheduler<'a> {
    engine: &'a Engine,
    cell: Arc<StateCell>,
    emitter: Emitter,
    slots: Vec<Slot>,
    reports: Vec<StepReport>,
    /// Steps completed so far in this run.
    completions: u64,
    /// `completions` when the snapshot was taken.
    observed_at: u64,
    snapshot: Arc<Snapshot>,
}

impl<'a> Scheduler<'a> {
    /// A scheduler for `engine`'s pipeline; `in_scope` is indexed like the graph.
    pub(super) fn new(
        engine: &'a Engine,
        cell: Arc<StateCell>,
        emitter: Emitter,
        in_scope: &[bool],
        snapshot: Arc<Snapshot>,
    ) -> Self {
        let graph = engine.pipeline.graph();
        let slots = (0..graph.len())
            .map(|i| Slot {
                id: graph.spec(i).id.clone(),
                in_scope: in_scope.get(i).copied().unwrap_or(true),
                progress: Progress::Pending,
                gate_failure: None,
                completed_at: 0,
            })
            .collect();
        Scheduler {
            engine,
            cell,
            emitter,
            slots,
            reports: Vec::new(),
            completions: 0,
            observed_at: 0,
            snapshot,
        }
    }

    /// What each step that ran did, in the order they finished.
    pub(super) fn into_reports(self) -> Vec<StepReport> {
        self.reports
    }

    /// The marks of the steps that finished, as the planner reads them.
    fn marks(&self) -> BTreeMap<StepId, RunMark> {
        self.slots
            .iter()
            .filter_map(|s| match &s.progress {
                Progress::Finished(m) => Some((s.id.clone(), m.clone())),
                _ => None,
            })
            .collect()
    }

    /// The gate failures of this run, as the planner reads them.
    fn gate_failures(&self) -> BTreeMap<StepId, GateFailure> {
        self.slots
            .iter()
            .filter_map(|s| Some((s.id.clone(), s.gate_failure.clone()?)))
            .collect()
    }

    fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.is_running()).count()
    }

    async fn plan_now(&self) -> (DeploymentState, Plan) {
        let state = self.cell.snapshot().await;
        let facts = plan_facts(
            &self.engine.pipeline,
            &state,
            &self.snapshot,
            &self.gate_failures(),
            &self.marks(),
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

    /// Runs until nothing more can start, or drains the running steps after a stop request;
    /// returns the first plan and the last one (what is left).
    pub(super) async fn execute(&mut self) -> Result<(Plan, Plan), EngineError> {
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
                    if !self.slots[i].in_scope
                        || !matches!(self.slots[i].progress, Progress::Pending)
                        || !graph.deps(i).iter().all(|&d| settled(d))
                    {
                        continue;
                    }
                    // Its dependencies just finished: what it sees may have changed (a tunnel
                    // is back, a VM exists), so observe again before deciding.
                    if graph
                        .deps(i)
                        .iter()
                        .any(|&d| self.slots[d].completed_at > self.observed_at)
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
                        self.slots[i].progress =
                            Progress::Finished(RunMark::NeedsConfirmation(e.message.to_string()));
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
                let finished: Vec<StepId> = self
                    .slots
                    .iter()
                    .filter(|s| s.completed_at > self.observed_at)
                    .map(|s| s.id.clone())
                    .collect();
                let fresh = observe_again(
                    &engine.pipeline,
                    &self.snapshot,
                    &finished,
                    &state,
                    engine.options.observe_timeout,
                    &self.emitter,
                    &engine.cancel,
                )
                .await;
                self.snapshot = Arc::new(fresh);
                self.observed_at = self.completions;
                continue;
            }
            let room = engine.options.concurrency.saturating_sub(self.running());
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
                let span = tracing::info_span!("step", step = %engine.pipeline.graph().spec(i).id, run = %self.emitter.run_id());
                let handle = tasks.spawn(tracing::Instrument::instrument(task.run(), span));
                self.slots[i].progress = Progress::Running(handle.id());
            }
            if self.running() == 0 {
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
                    let abandoned = self.slots.iter_mut().filter(|s| s.is_running());
                    for slot in abandoned {
                        slot.progress = Progress::Pending;
                        let id = slot.id.clone();
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
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| matches!(s.progress, Progress::Running(t) if t == task_id))
        else {
            return;
        };
        slot.progress = Progress::Pending;
        let id = slot.id.clone();
        let report = match result {
            TaskResult::Completed {
                duration,
                outputs_changed,
            } => {
                self.completions += 1;
                slot.completed_at = self.completions;
                slot.progress = Progress::Finished(RunMark::Completed);
                StepResult::Completed {
                    duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    outputs_changed,
                }
            }
            TaskResult::Failed { error, remedy } => {
                slot.progress = Progress::Finished(RunMark::Failed(error.clone()));
                StepResult::Failed { error, remedy }
            }
            TaskResult::Blocked(f) => {
                let r = StepResult::Blocked {
                    reason: f.to_string(),
                    remedy: f.remedy.clone(),
                };
                slot.gate_failure = Some(f);
                r
            }
            TaskResult::NeedsConfirmation(change) => {
                let reason = format!("needs confirmation (-y): {change}");
                slot.progress = Progress::Finished(RunMark::NeedsConfirmation(change));
                StepResult::Blocked {
                    reason,
                    remedy: Some(CONFIRM_REMEDY.into()),
                }
            }
            TaskResult::Interrupted(reason) => {
                if !self.engine.cancel.is_cancelled() {
                    // Stopped on its own: do not restart it in this run.
                    slot.progress =
                        Progress::Finished(RunMark::Failed(format!("interrupted: {reason}")));
                }
                StepResult::Interrupted { reason }
            }
        };
        self.reports.push(StepReport {
            step: id,
            result: report,
        });
    }

    /// How the run ended, judged from the steps' marks and the last plan.
    pub(super) fn outcome(&self, last: &Plan) -> RunOutcome {
        if self.engine.cancel.is_cancelled() {
            return RunOutcome::Interrupted;
        }
        if self
            .slots
            .iter()
            .any(|s| matches!(s.progress, Progress::Finished(RunMark::Failed(_))))
        {
            return RunOutcome::Failed;
        }
        let graph = self.engine.pipeline.graph();
        let unfinished = last.entries.iter().any(|e| {
            graph
                .index_of(&e.step)
                .is_some_and(|i| self.slots[i].in_scope)
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
        crate::evidence::Evidence,
        Option<crate::fingerprint::Fingerprint>,
    ),
}
