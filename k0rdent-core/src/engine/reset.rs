//! `reset`: teardown in reverse dependency order behind a persisted marker.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::Serialize;

use super::facts::observe_all;
use super::finish::record_run_end;
use super::{Engine, EngineError};
use crate::cell::StateCell;
use crate::emit::Emitter;
use crate::event::Event;
use crate::id::RunId;
use crate::state::{ResetMarker, RunOutcome, RunRecord, Status, StepRecord};
use crate::step::StepContext;
use crate::step::{ErrorKind, Teardown};
use crate::store::{LockHolder, hostname};

/// The result of `reset`.
#[derive(Debug, Clone, Serialize)]
pub struct ResetReport {
    /// Names this run's events in the event log.
    pub run_id: RunId,
    /// Outcome (`succeeded` once everything is torn down and the state archived).
    pub outcome: RunOutcome,
    /// Steps torn down, in order.
    pub torn_down: Vec<String>,
    /// Steps that had nothing of their own to undo, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nothing_to_undo: Vec<(String, String)>,
    /// The step whose teardown failed, with the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<(String, String)>,
    /// Where the state was archived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_to: Option<String>,
}

impl Engine {
    /// Tears the deployment down: marks the state "reset in progress", runs each started
    /// step's teardown in reverse dependency order (saving after each), then archives the
    /// state. An interrupted or failed reset leaves the marker; running `reset` again
    /// continues, and `deploy` refuses meanwhile.
    ///
    /// # Errors
    /// [`EngineError::Store`] when the state cannot be read or written.
    pub async fn reset(&self) -> Result<ResetReport, EngineError> {
        let run_id = RunId::generate();
        let holder = LockHolder::current(run_id.clone(), "reset");
        let lock = self.take_lock(&holder).await?;
        let Some(mut state) = self.store.load().await? else {
            return Ok(ResetReport {
                run_id,
                outcome: RunOutcome::Succeeded,
                torn_down: Vec::new(),
                nothing_to_undo: Vec::new(),
                failed: None,
                archived_to: None,
            });
        };
        let emitter = Emitter::persistent(
            self.sink.clone(),
            self.events.clone(),
            run_id.clone(),
            &self.cancel,
        );
        emitter.emit(Event::RunStarted {
            run_id: run_id.clone(),
            command: "reset".into(),
            pid: holder.pid,
            host: holder.host.clone(),
        });
        if state.reset.is_none() {
            state.reset = Some(ResetMarker {
                started_at: Utc::now(),
                run_id: run_id.clone(),
            });
        }
        state.run = Some(RunRecord {
            id: run_id.clone(),
            command: "reset".into(),
            pid: holder.pid,
            host: hostname(),
            started_at: Utc::now(),
            finished_at: None,
            outcome: None,
        });
        self.store.save(&mut state).await?;
        let snapshot = Arc::new(
            observe_all(
                &self.pipeline,
                &state,
                self.options.observe_timeout,
                &emitter,
                &self.cancel,
            )
            .await,
        );
        let cell = Arc::new(StateCell::new(
            state,
            self.store.clone(),
            self.keys.clone(),
            Some(lock),
        ));
        let graph = self.pipeline.graph();
        let mut report = ResetReport {
            run_id: run_id.clone(),
            outcome: RunOutcome::Succeeded,
            torn_down: Vec::new(),
            nothing_to_undo: Vec::new(),
            failed: None,
            archived_to: None,
        };
        for &i in graph.order().iter().rev() {
            let step = &self.pipeline.steps()[i];
            let id = step.id().clone();
            let record = cell.read(|s| s.record(&id).cloned()).await;
            let Some(record) = record.filter(|r| {
                !matches!(r.status, Status::Pending | Status::Skipped) || !r.journal.is_empty()
            }) else {
                continue;
            };
            if self.cancel.is_cancelled() {
                report.outcome = RunOutcome::Interrupted;
                break;
            }
            emitter.emit(Event::TeardownStarted { step: id.clone() });
            let state_now = cell.snapshot().await;
            let ctx = StepContext {
                step: id.clone(),
                decision: crate::plan::Decision::Run,
                // `reset` itself is the confirmed destructive command.
                confirmed: true,
                deadline: None,
                stop: Arc::default(),
                run_id: run_id.clone(),
                attempt: 1,
                snapshot: snapshot.clone(),
                journal: Mutex::new(record.journal.clone()),
                record,
                upstream: Arc::new(self.pipeline.upstream_outputs(i, &state_now)),
                cell: cell.clone(),
                cancel: self.cancel.child(),
                emitter: emitter.clone(),
            };
            match self.teardown_bounded(step.as_ref(), &ctx).await {
                Ok(done) => {
                    let id2 = id.clone();
                    let cleared = cell
                        .update(move |s| {
                            let items = s.record(&id2).map(|r| r.items.clone()).unwrap_or_default();
                            *s.record_mut(&id2) = StepRecord {
                                items: if id2.is_item() {
                                    BTreeMap::new()
                                } else {
                                    items
                                },
                                ..StepRecord::default()
                            };
                            if id2.is_item() {
                                s.summarize_phase(id2.phase());
                            }
                        })
                        .await;
                    if let Err(e) = cleared {
                        emitter.flush().await;
                        return Err(e.into());
                    }
                    let nothing_to_undo = match done {
                        Teardown::Done => None,
                        Teardown::Nothing(why) => Some(why.into_owned()),
                    };
                    emitter.emit(Event::TeardownCompleted {
                        step: id.clone(),
                        nothing_to_undo: nothing_to_undo.clone(),
                    });
                    match nothing_to_undo {
                        None => report.torn_down.push(id.to_string()),
                        Some(why) => report.nothing_to_undo.push((id.to_string(), why)),
                    }
                }
                Err(e) => {
                    emitter.emit(Event::TeardownFailed {
                        step: id.clone(),
                        error: e.message().to_owned(),
                    });
                    report.outcome = if e.kind() == ErrorKind::Interrupted {
                        RunOutcome::Interrupted
                    } else {
                        RunOutcome::Failed
                    };
                    report.failed = Some((id.to_string(), e.message().to_owned()));
                    break;
                }
            }
        }
        let outcome = report.outcome;
        record_run_end(&cell, &emitter, &run_id, outcome, 0).await?;
        emitter.flush().await;
        if outcome == RunOutcome::Succeeded {
            report.archived_to = Some(self.store.archive("reset").await?);
            self.keys.remove_all().await?;
        }
        Ok(report)
    }

    /// A teardown raced against the stop request: once asked to stop, it gets the stop grace
    /// (or the longer one it declared), then it is dropped and the reset stays in progress.
    async fn teardown_bounded(
        &self,
        step: &dyn crate::step::Step,
        ctx: &StepContext,
    ) -> Result<Teardown, crate::step::StepError> {
        let work = step.teardown(ctx);
        tokio::pin!(work);
        tokio::select! {
            r = &mut work => return r,
            () = self.cancel.cancelled() => {}
        }
        let grace = ctx.stop.get().map_or(self.options.stop_grace, |(g, _)| {
            g.max(self.options.stop_grace)
        });
        match tokio::time::timeout(grace, &mut work).await {
            Ok(r) => r,
            Err(_) => Err(crate::step::StepError::interrupted(format!(
                "stopped; the teardown was abandoned after {} s and continues with the next `k0rdent reset`",
                grace.as_secs()
            ))),
        }
    }
}
