//! One step's execution: gates, start record, attempts with retries and time limits, watched
//! gates, stop requests, and the final record.
//!
//! # Stopping
//! A step is asked to stop (its cancellation is cancelled) when the run is interrupted, when a
//! watched gate fails and when its attempt runs out of time. It then gets its stop grace — the
//! engine's (2 s by default) or, while it holds a [`StepContext::stop_grace`] guard, the longer
//! one it declared for an external tool — to return; after that its future is dropped (what it
//! owns is cleaned up by `Drop`, e.g. child process groups are killed). Either way its record
//! stays `in_progress` with its journal, so the next run resumes it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::gates::{self, GateOutcome, human};
use crate::cancel::Cancellation;
use crate::cell::StateCell;
use crate::emit::Emitter;
use crate::event::Event;
use crate::evidence::Evidence;
use crate::gate::{GateContext, GateFailure};
use crate::id::StepId;
use crate::observation::Snapshot;
use crate::pipeline::Pipeline;
use crate::plan::{CONFIRM_REMEDY, Decision};
use crate::remedy::Remedy;
use crate::state::{EvidenceRecord, Outputs, Status};
use crate::step::{ErrorKind, Step, StepError, StepInputs, StepOutcome};
use crate::step::{StepContext, StopGrace};
use crate::store::StoreError;

pub(crate) enum TaskResult {
    Completed {
        duration: Duration,
        outputs_changed: bool,
    },
    Failed {
        error: String,
        remedy: Option<String>,
    },
    Blocked(GateFailure),
    /// Destructive or disruptive work was not confirmed (what it was).
    NeedsConfirmation(String),
    Interrupted(String),
}

/// The engine's limits for one step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time limit of an attempt for a step that sets none.
    pub(crate) default_timeout: Duration,
    /// How long a step that was asked to stop gets before it is dropped (unless it declared
    /// a longer grace for a tool it runs).
    pub(crate) stop_grace: Duration,
}

pub(crate) struct Task {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) index: usize,
    pub(crate) decision: Decision,
    /// The plan said this execution deletes, re-creates or restarts something.
    pub(crate) planned_confirmation: bool,
    /// The user accepted such work (`-y`).
    pub(crate) may_confirm: bool,
    pub(crate) upstream: Arc<BTreeMap<StepId, Outputs>>,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) cell: Arc<StateCell>,
    pub(crate) emitter: Emitter,
    pub(crate) run_cancel: Cancellation,
    pub(crate) limits: Limits,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Appends a failed save to a message, so a lost record is reported, never discarded.
fn with_save_error(message: String, saved: Result<(), StoreError>) -> (String, Option<String>) {
    match saved {
        Ok(()) => (message, None),
        Err(e) => (
            format!("{message}; and the state could not be saved: {e}"),
            e.remedy().map(Cow::into_owned),
        ),
    }
}

impl Task {
    fn step(&self) -> &Arc<dyn Step> {
        &self.pipeline.steps()[self.index]
    }

    fn id(&self) -> &StepId {
        self.step().id()
    }

    pub(crate) async fn run(self) -> TaskResult {
        let id = self.id().clone();
        let gates = self.step().gates();
        let gate_ctx = GateContext {
            step: id.clone(),
            state: Arc::new(self.cell.snapshot().await),
            watching: false,
        };
        // Kind by kind, each kind's gates together; reported in declaration order, up to
        // the first that did not pass (gates of a later kind after a failure are never tried).
        let mut outcomes: Vec<Option<GateOutcome>> = gates.iter().map(|_| None).collect();
        for run in gates::runs(&gates) {
            let done = gates::concurrently(&gates, &run, |gate| {
                let (ctx, cancel, emitter) = (
                    gate_ctx.clone(),
                    self.run_cancel.clone(),
                    self.emitter.clone(),
                );
                async move { gates::evaluate(gate.as_ref(), &ctx, &cancel, &emitter).await }
            })
            .await;
            let stop = done.iter().any(|o| !matches!(o, GateOutcome::Pass(_)));
            for (i, outcome) in run.into_iter().zip(done) {
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
            if stop {
                break;
            }
        }
        for (gate, outcome) in gates.iter().zip(outcomes) {
            let Some(outcome) = outcome else { continue };
            match outcome {
                GateOutcome::Pass(evidence) => self.emitter.emit(Event::GatePassed {
                    step: id.clone(),
                    gate: gate.name().to_owned(),
                    evidence,
                }),
                GateOutcome::Fail(f) => {
                    self.emitter.emit(Event::GateFailed {
                        step: id.clone(),
                        gate: f.gate.clone(),
                        reason: f.reason.clone(),
                        remedy: f.remedy.clone(),
                    });
                    let msg = f.to_string();
                    let saved = self
                        .cell
                        .update(|s| s.record_mut(&id).blocked = Some(msg))
                        .await;
                    if let Err(e) = saved {
                        return TaskResult::Failed {
                            error: format!("{f}; and the state could not be saved: {e}"),
                            remedy: e.remedy().map(Cow::into_owned),
                        };
                    }
                    return TaskResult::Blocked(f);
                }
                GateOutcome::Cancelled => {
                    return TaskResult::Interrupted("stopped before it started".into());
                }
            }
        }

        // The journal is kept: an interrupted or failed attempt's operations are settled by
        // the step itself; it is cleared only once the step completes.
        let started = self
            .cell
            .update(|s| {
                let r = s.record_mut(&id);
                let before = r.status;
                r.status = Status::InProgress;
                r.attempts += 1;
                r.started_at = Some(Utc::now());
                r.last_error = None;
                r.blocked = None;
                let rec = r.clone();
                if id.is_item() {
                    s.summarize_phase(id.phase());
                }
                (before, rec)
            })
            .await;
        let (before, mut record) = match started {
            Ok(x) => x,
            Err(e) => {
                return TaskResult::Failed {
                    error: format!("could not record the start: {e}"),
                    remedy: e.remedy().map(Cow::into_owned),
                };
            }
        };
        self.emitter.emit(Event::StepStarted {
            step: id.clone(),
            decision: self.decision,
            attempt: record.attempts,
        });
        let t0 = Instant::now();
        let policy = self.step().policy();
        let mut confirmed = self.planned_confirmation && self.may_confirm;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let step_cancel = self.run_cancel.child();
            let limit = policy.time_limit.unwrap_or(self.limits.default_timeout);
            let ctx = StepContext {
                step: id.clone(),
                decision: self.decision,
                confirmed,
                deadline: Some(Instant::now() + limit),
                stop: Arc::new(StopGrace::default()),
                run_id: self.emitter.run_id().clone(),
                attempt,
                snapshot: self.snapshot.clone(),
                journal: Mutex::new(record.journal.clone()),
                record: record.clone(),
                upstream: self.upstream.clone(),
                cell: self.cell.clone(),
                cancel: step_cancel.clone(),
                emitter: self.emitter.clone(),
            };
            let err = match self
                .attempt(&ctx, gates.clone(), gate_ctx.clone(), limit)
                .await
            {
                Ok((outputs, evidence)) => return self.complete(outputs, evidence, t0).await,
                Err(Stop::Watch(failure)) => return self.watch_failed(failure).await,
                Err(Stop::TimedOut(l)) if !policy.retry_on_timeout => {
                    let err = StepError::permanent(format!(
                        "did not finish within {}; it is not started again in this run",
                        human(l)
                    ))
                    .with_remedy(
                        "its journal is kept: run deploy again to settle what it left behind, or raise the phase's timeout",
                    );
                    return self.failed(err, attempt).await;
                }
                Err(Stop::TimedOut(l)) => {
                    StepError::transient(format!("timed out after {}", human(l)))
                }
                Err(Stop::Step(e)) => e,
            };
            match err.kind() {
                ErrorKind::NeedsConfirmation if self.may_confirm && !confirmed => {
                    // `-y` accepted destructive work up front: confirm, say so, and go again
                    // at once (this is not a failed attempt).
                    confirmed = true;
                    attempt -= 1;
                    self.emitter.emit(Event::StepConfirmed {
                        step: id.clone(),
                        change: err.message().to_owned(),
                    });
                }
                ErrorKind::NeedsConfirmation => {
                    return self.needs_confirmation(err, before).await;
                }
                ErrorKind::Transient
                    if attempt < policy.retry.max_attempts && !self.run_cancel.is_cancelled() =>
                {
                    let delay = policy.retry.delay(attempt, err.retry_after());
                    self.emitter.emit(Event::StepRetrying {
                        step: id.clone(),
                        attempt,
                        error: err.message().to_owned(),
                        delay_ms: ms(delay),
                    });
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.run_cancel.cancelled() => {
                            return self.interrupted(err.message().to_owned()).await;
                        }
                    }
                }
                ErrorKind::Transient | ErrorKind::Permanent => {
                    return self.failed(err, attempt).await;
                }
                ErrorKind::Blocked => return self.blocked(err, before).await,
                ErrorKind::Interrupted => return self.interrupted(err.message().to_owned()).await,
            }
            // Later attempts see the journal written so far.
            if let Some(r) = self.cell.read(|s| s.record(&id).cloned()).await {
                record = r;
            }
        }
    }

    /// One attempt: apply (again after each `Pending`) raced against its time limit, the
    /// watched gates and the run's interruption. When one of those wins, the step is asked to
    /// stop and gets its grace; then it is dropped.
    async fn attempt(
        &self,
        ctx: &StepContext,
        gates: Vec<Arc<dyn crate::gate::Gate>>,
        gate_ctx: GateContext,
        limit: Duration,
    ) -> Result<(Outputs, Evidence), Stop> {
        let work = self.converge(ctx);
        tokio::pin!(work);
        let watch = gates::watch(gates, gate_ctx);
        tokio::pin!(watch);
        let deadline = ctx.deadline.unwrap_or_else(|| Instant::now() + limit);
        let stop = tokio::select! {
            r = &mut work => return r.map_err(Stop::Step),
            failure = &mut watch => Stop::Watch(failure),
            () = tokio::time::sleep_until(deadline) => Stop::TimedOut(limit),
            () = self.run_cancel.cancelled() => Stop::Step(StepError::interrupted(
                self.run_cancel.reason().unwrap_or_else(|| "interrupted".into()),
            )),
        };
        let why = match &stop {
            Stop::Watch(f) => format!("gate {} failed: {}", f.gate, f.reason),
            Stop::TimedOut(l) => format!("timed out after {}", human(*l)),
            Stop::Step(e) => e.message().to_owned(),
        };
        ctx.cancel.cancel(&why);
        let (grace, what) = match ctx.stop.get() {
            Some((g, what)) if g > self.limits.stop_grace => (g, Some(what)),
            _ => (self.limits.stop_grace, None),
        };
        if let Some(what) = what {
            self.emitter.emit(Event::StepStopping {
                step: ctx.step.clone(),
                what,
                grace_ms: ms(grace),
            });
        }
        match tokio::time::timeout(grace, &mut work).await {
            // It finished anyway: keep the result.
            Ok(Ok(done)) => Ok(done),
            Ok(Err(e)) => match stop {
                Stop::Step(_) => Err(Stop::Step(e)),
                other => Err(other),
            },
            Err(_) => match stop {
                Stop::Step(_) => Err(Stop::Step(StepError::interrupted(format!(
                    "{why}; abandoned after {} without reaching a safe point",
                    human(grace)
                )))),
                other => Err(other),
            },
        }
    }

    async fn converge(&self, ctx: &StepContext) -> Result<(Outputs, Evidence), StepError> {
        loop {
            match self.step().apply(ctx).await? {
                StepOutcome::Done { outputs, evidence } => return Ok((outputs, evidence)),
                StepOutcome::Pending { after, detail } => {
                    self.emitter.emit(Event::StepPending {
                        step: ctx.step.clone(),
                        detail,
                        after_ms: ms(after),
                    });
                    tokio::select! {
                        () = tokio::time::sleep(after) => {}
                        () = ctx.cancelled() => {
                            return Err(StepError::interrupted(
                                ctx.cancel.reason().unwrap_or_else(|| "interrupted".into()),
                            ));
                        }
                    }
                }
            }
        }
    }

    async fn complete(&self, outputs: Outputs, evidence: Evidence, t0: Instant) -> TaskResult {
        let id = self.id().clone();
        let pipeline = self.pipeline.clone();
        let index = self.index;
        let saved = self
            .cell
            .update(move |s| {
                // The fingerprint is taken from the state as the step leaves it, so a step
                // whose inputs include records it writes itself does not rerun for nothing.
                let upstream = pipeline.upstream_outputs(index, s);
                let fp = pipeline.steps()[index].fingerprint(&StepInputs {
                    step: &id,
                    upstream: &upstream,
                    state: s,
                });
                let r = s.record_mut(&id);
                let changed = r.outputs != outputs;
                r.status = Status::Completed;
                r.finished_at = Some(Utc::now());
                r.fingerprint = Some(fp);
                r.outputs = outputs;
                r.evidence = Some(EvidenceRecord {
                    observed_at: Utc::now(),
                    facts: evidence,
                });
                r.journal = crate::state::Journal::default();
                r.last_error = None;
                r.blocked = None;
                if id.is_item() {
                    s.summarize_phase(id.phase());
                }
                changed
            })
            .await;
        match saved {
            Ok(outputs_changed) => {
                let duration = t0.elapsed();
                self.emitter.emit(Event::StepCompleted {
                    step: self.id().clone(),
                    duration_ms: ms(duration),
                    outputs_changed,
                });
                TaskResult::Completed {
                    duration,
                    outputs_changed,
                }
            }
            Err(e) => TaskResult::Failed {
                error: format!("completed, but the state could not be saved: {e}"),
                remedy: e.remedy().map(Cow::into_owned),
            },
        }
    }

    /// Failed after its retries: the journal is kept (the operations it names are settled by
    /// the next run).
    async fn failed(&self, err: StepError, attempts: u32) -> TaskResult {
        let id = self.id().clone();
        let message = if attempts > 1 {
            format!("{} (after {attempts} attempts)", err.message())
        } else {
            err.message().to_owned()
        };
        let m2 = message.clone();
        let saved = self
            .cell
            .update(move |s| {
                let r = s.record_mut(&id);
                r.status = Status::Failed;
                r.finished_at = Some(Utc::now());
                r.last_error = Some(m2);
                if id.is_item() {
                    s.summarize_phase(id.phase());
                }
            })
            .await;
        let (error, store_remedy) = with_save_error(message, saved);
        let remedy = err.remedy().map(Cow::into_owned).or(store_remedy);
        self.emitter.emit(Event::StepFailed {
            step: self.id().clone(),
            error: error.clone(),
            remedy: remedy.clone(),
        });
        TaskResult::Failed { error, remedy }
    }

    /// Records a block without settling anything: the status it had is kept, unless a journal
    /// says work started (then it must resume).
    async fn record_block(&self, reason: &str, before: Status) -> Result<(), StoreError> {
        let id = self.id().clone();
        let r2 = reason.to_owned();
        self.cell
            .update(move |s| {
                let r = s.record_mut(&id);
                if r.journal.is_empty() {
                    r.status = before;
                }
                r.blocked = Some(r2);
                if id.is_item() {
                    s.summarize_phase(id.phase());
                }
            })
            .await
    }

    async fn blocked(&self, err: StepError, before: Status) -> TaskResult {
        let reason = err.message().to_owned();
        if let Err(e) = self.record_block(&reason, before).await {
            return self.save_failed(reason, e);
        }
        let remedy = err.remedy().map(Cow::into_owned);
        self.emitter.emit(Event::StepBlocked {
            step: self.id().clone(),
            reason: reason.clone(),
            remedy: remedy.clone(),
        });
        TaskResult::Blocked(GateFailure {
            gate: "precondition".into(),
            reason,
            remedy,
        })
    }

    async fn needs_confirmation(&self, err: StepError, before: Status) -> TaskResult {
        let change = err.message().to_owned();
        let reason = format!("needs confirmation (-y): {change}");
        if let Err(e) = self.record_block(&reason, before).await {
            return self.save_failed(reason, e);
        }
        self.emitter.emit(Event::StepBlocked {
            step: self.id().clone(),
            reason,
            remedy: Some(CONFIRM_REMEDY.to_owned()),
        });
        TaskResult::NeedsConfirmation(change)
    }

    fn save_failed(&self, what: String, e: StoreError) -> TaskResult {
        let error = format!("{what}; and the state could not be saved: {e}");
        self.emitter.emit(Event::StepFailed {
            step: self.id().clone(),
            error: error.clone(),
            remedy: e.remedy().map(Cow::into_owned),
        });
        TaskResult::Failed {
            error,
            remedy: e.remedy().map(Cow::into_owned),
        }
    }

    /// A watched gate failed mid-step: the step stays in progress (work was under way) and
    /// is reported blocked with the gate's diagnosis.
    async fn watch_failed(&self, f: GateFailure) -> TaskResult {
        let id = self.id().clone();
        let msg = f.to_string();
        let saved = self
            .cell
            .update(move |s| {
                let r = s.record_mut(&id);
                r.last_error = Some(format!("interrupted: {msg}"));
                r.blocked = Some(msg);
            })
            .await;
        if let Err(e) = saved {
            return self.save_failed(f.to_string(), e);
        }
        self.emitter.emit(Event::GateFailed {
            step: self.id().clone(),
            gate: f.gate.clone(),
            reason: f.reason.clone(),
            remedy: f.remedy.clone(),
        });
        self.emitter.emit(Event::StepInterrupted {
            step: self.id().clone(),
            reason: f.to_string(),
        });
        TaskResult::Blocked(f)
    }

    async fn interrupted(&self, reason: String) -> TaskResult {
        let id = self.id().clone();
        let r2 = reason.clone();
        let saved = self
            .cell
            .update(move |s| s.record_mut(&id).last_error = Some(format!("interrupted: {r2}")))
            .await;
        if let Err(e) = saved {
            return self.save_failed(format!("interrupted: {reason}"), e);
        }
        self.emitter.emit(Event::StepInterrupted {
            step: self.id().clone(),
            reason: reason.clone(),
        });
        TaskResult::Interrupted(reason)
    }
}

/// Why an attempt stopped without converging.
enum Stop {
    /// `apply` returned an error (or the run was interrupted).
    Step(StepError),
    /// A watched gate failed while it ran.
    Watch(GateFailure),
    /// The attempt ran out of time.
    TimedOut(Duration),
}
