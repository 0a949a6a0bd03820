//! One step's execution: gates, start record, attempts with retries and timeouts, watched
//! gates, and the final record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::cell::StateCell;
use super::emit::Emitter;
use super::gates::{self, GateOutcome, human};
use crate::cancel::Cancellation;
use crate::context::StepContext;
use crate::event::Event;
use crate::fingerprint::Fingerprint;
use crate::gate::{GateContext, GateFailure};
use crate::id::StepId;
use crate::observation::{Evidence, Snapshot};
use crate::plan::Decision;
use crate::state::{EvidenceRecord, Journal, Outputs, Status};
use crate::step::{ErrorKind, Step, StepError, StepOutcome};

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
    Interrupted(String),
}

pub(crate) struct Task {
    pub(crate) step: Arc<dyn Step>,
    pub(crate) decision: Decision,
    pub(crate) fingerprint: Fingerprint,
    pub(crate) upstream: Arc<BTreeMap<StepId, Outputs>>,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) cell: Arc<StateCell>,
    pub(crate) emitter: Emitter,
    pub(crate) run_cancel: Cancellation,
    pub(crate) default_timeout: Option<Duration>,
    pub(crate) grace: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Task {
    fn id(&self) -> &StepId {
        self.step.id()
    }

    pub(crate) async fn run(self) -> TaskResult {
        let id = self.id().clone();
        let gates = self.step.gates();
        let gate_ctx = GateContext {
            step: id.clone(),
            state: Arc::new(self.cell.snapshot().await),
            watching: false,
        };
        for gate in &gates {
            match gates::evaluate(gate.as_ref(), &gate_ctx, &self.run_cancel, &self.emitter).await {
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
                    let _ = self
                        .cell
                        .update(|s| s.record_mut(&id).blocked = Some(msg))
                        .await;
                    return TaskResult::Blocked(f);
                }
                GateOutcome::Cancelled => {
                    return TaskResult::Interrupted("stopped before it started".into());
                }
            }
        }

        let resume = self.decision == Decision::Resume;
        let started = self
            .cell
            .update(|s| {
                let r = s.record_mut(&id);
                let before = r.status;
                if !resume {
                    r.journal = Journal::default();
                }
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
                    remedy: e.remedy(),
                };
            }
        };
        self.emitter.emit(Event::StepStarted {
            step: id.clone(),
            decision: self.decision,
            attempt: record.attempts,
        });
        let t0 = Instant::now();
        let policy = self.step.retry_policy();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let step_cancel = self.run_cancel.child();
            let ctx = StepContext {
                step: id.clone(),
                run_id: self.emitter_run(),
                attempt,
                snapshot: self.snapshot.clone(),
                journal: Mutex::new(record.journal.clone()),
                record: record.clone(),
                upstream: self.upstream.clone(),
                cell: self.cell.clone(),
                cancel: step_cancel.clone(),
                emitter: self.emitter.clone(),
            };
            let result = self
                .attempt(&ctx, gates.clone(), gate_ctx.clone(), step_cancel)
                .await;
            let err = match result {
                Ok((outputs, evidence)) => return self.complete(outputs, evidence, t0).await,
                Err(Stop::Watch(failure)) => return self.watch_failed(failure).await,
                Err(Stop::Step(e)) => e,
            };
            match err.kind() {
                ErrorKind::Transient
                    if attempt < policy.max_attempts && !self.run_cancel.is_cancelled() =>
                {
                    let delay = policy.delay(attempt, err.retry_after());
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
                    // Later attempts see the journal written so far.
                    if let Some(r) = self.cell.read(|s| s.record(&id).cloned()).await {
                        record = r;
                    }
                }
                ErrorKind::Transient | ErrorKind::Permanent => {
                    return self.failed(err, attempt).await;
                }
                ErrorKind::Blocked => return self.blocked(err, before).await,
                ErrorKind::Interrupted => return self.interrupted(err.message().to_owned()).await,
            }
        }
    }

    fn emitter_run(&self) -> crate::id::RunId {
        self.emitter.run_id().clone()
    }

    /// One attempt: apply (again after each `Pending`) under the timeout, raced against the
    /// watched gates.
    async fn attempt(
        &self,
        ctx: &StepContext,
        gates: Vec<Arc<dyn crate::gate::Gate>>,
        gate_ctx: GateContext,
        step_cancel: Cancellation,
    ) -> Result<(Outputs, Evidence), Stop> {
        let limit = self.step.timeout().or(self.default_timeout);
        let work = async {
            let converge = self.converge(ctx);
            match limit {
                Some(l) => tokio::time::timeout(l, converge).await.unwrap_or_else(|_| {
                    Err(StepError::transient(format!(
                        "timed out after {}",
                        human(l)
                    )))
                }),
                None => converge.await,
            }
        };
        tokio::pin!(work);
        let watch = gates::watch(gates, gate_ctx, step_cancel);
        tokio::pin!(watch);
        tokio::select! {
            r = &mut work => r.map_err(Stop::Step),
            failure = &mut watch => {
                // The step was cancelled; give it the grace period to reach a safe point,
                // then abandon it (it stays in progress and resumes next run).
                let _ = tokio::time::timeout(self.grace, &mut work).await;
                Err(Stop::Watch(failure))
            }
        }
    }

    async fn converge(&self, ctx: &StepContext) -> Result<(Outputs, Evidence), StepError> {
        loop {
            match self.step.apply(ctx).await? {
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
        let fp = self.fingerprint.clone();
        let saved = self
            .cell
            .update(move |s| {
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
                r.journal = Journal::default();
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
                remedy: e.remedy(),
            },
        }
    }

    async fn failed(&self, err: StepError, attempts: u32) -> TaskResult {
        let id = self.id().clone();
        let message = if attempts > 1 {
            format!("{} (after {attempts} attempts)", err.message())
        } else {
            err.message().to_owned()
        };
        let m2 = message.clone();
        let _ = self
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
        let remedy = err.remedy().map(str::to_owned);
        self.emitter.emit(Event::StepFailed {
            step: self.id().clone(),
            error: message.clone(),
            remedy: remedy.clone(),
        });
        TaskResult::Failed {
            error: message,
            remedy,
        }
    }

    async fn blocked(&self, err: StepError, before: Status) -> TaskResult {
        let id = self.id().clone();
        let reason = err.message().to_owned();
        let r2 = reason.clone();
        let _ = self
            .cell
            .update(move |s| {
                let r = s.record_mut(&id);
                // Nothing was settled: keep the status it had, unless a journal says work
                // started (then it must resume).
                if r.journal.is_empty() {
                    r.status = before;
                }
                r.blocked = Some(r2);
                if id.is_item() {
                    s.summarize_phase(id.phase());
                }
            })
            .await;
        let remedy = err.remedy().map(str::to_owned);
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

    /// A watched gate failed mid-step: the step stays in progress (work was under way) and
    /// is reported blocked with the gate's diagnosis.
    async fn watch_failed(&self, f: GateFailure) -> TaskResult {
        let id = self.id().clone();
        let msg = f.to_string();
        let _ = self
            .cell
            .update(move |s| {
                let r = s.record_mut(&id);
                r.last_error = Some(format!("interrupted: {msg}"));
                r.blocked = Some(msg);
            })
            .await;
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
        let _ = self
            .cell
            .update(move |s| s.record_mut(&id).last_error = Some(format!("interrupted: {r2}")))
            .await;
        self.emitter.emit(Event::StepInterrupted {
            step: self.id().clone(),
            reason: reason.clone(),
        });
        TaskResult::Interrupted(reason)
    }
}

/// Why an attempt stopped without converging.
enum Stop {
    /// `apply` returned an error (or timed out).
    Step(StepError),
    /// A watched gate failed while it ran.
    Watch(GateFailure),
}
