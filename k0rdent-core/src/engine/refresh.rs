//! `refresh`: update the record from reality; change no infrastructure.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;

use super::facts::{observe_all, plan_facts};
use super::{Engine, EngineError};
use crate::emit::Emitter;
use crate::event::Event;
use crate::id::{RunId, StepId};
use crate::observation::Observation;
use crate::state::{EvidenceRecord, Journal, Status};
use crate::step::StepInputs;
use crate::store::LockHolder;

/// The result of `refresh`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RefreshReport {
    /// Steps whose evidence was refreshed.
    pub verified: Vec<StepId>,
    /// Steps observed drifted, with what differs.
    pub drifted: Vec<(StepId, String)>,
    /// Steps whose observation is unknown, with why.
    pub unknown: Vec<(StepId, String)>,
    /// In-progress steps whose unreadable journal was cleared.
    pub journals_cleared: Vec<StepId>,
}

impl Engine {
    /// Observes everything and records it: evidence of completed steps that are present
    /// (adopting fingerprints that were never recorded), drift as evidence, and unreadable
    /// journals cleared (their steps go back to pending, and `apply` converges from reality).
    ///
    /// # Errors
    /// [`EngineError::Store`] when the state cannot be read or written.
    pub async fn refresh(&self) -> Result<RefreshReport, EngineError> {
        let run_id = RunId::generate();
        let holder = LockHolder::current(run_id.clone(), "refresh");
        let _lock = self.take_lock(&holder).await?;
        let mut state = self.store.load().await?.unwrap_or_default();
        let emitter = Emitter::persistent(
            self.sink.clone(),
            self.events.clone(),
            run_id.clone(),
            &self.cancel,
        );
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
        let facts = plan_facts(
            &self.pipeline,
            &state,
            &snapshot,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        let now = snapshot.observed_at().unwrap_or_else(Utc::now);
        let mut report = RefreshReport::default();
        for (i, step) in self.pipeline.steps().iter().enumerate() {
            let id = step.id().clone();
            let status = state.status(&id);
            if status == Status::InProgress {
                if facts.journal_faults[i].is_some() {
                    let r = state.record_mut(&id);
                    r.journal = Journal::default();
                    r.status = Status::Pending;
                    report.journals_cleared.push(id.clone());
                }
                continue;
            }
            if status != Status::Completed {
                continue;
            }
            match &facts.observations[i] {
                Observation::Done { evidence } => {
                    let fp = state.record(&id).and_then(|r| r.fingerprint.clone());
                    let fp = fp.unwrap_or_else(|| {
                        let upstream = self.pipeline.upstream_outputs(i, &state);
                        step.fingerprint(&StepInputs {
                            step: &id,
                            upstream: &upstream,
                            state: &state,
                        })
                    });
                    let r = state.record_mut(&id);
                    r.evidence = Some(EvidenceRecord {
                        observed_at: now,
                        facts: evidence.clone(),
                    });
                    r.fingerprint = Some(fp);
                    report.verified.push(id);
                }
                Observation::Absent { reason: d } | Observation::Partial { detail: d, .. } => {
                    emitter.emit(Event::Drift {
                        step: id.clone(),
                        detail: d.clone(),
                    });
                    let r = state.record_mut(&id);
                    r.evidence = Some(EvidenceRecord {
                        observed_at: now,
                        facts: crate::evidence::Evidence::new().with("drift", d),
                    });
                    report.drifted.push((id, d.clone()));
                }
                Observation::Unknown { reason } => report.unknown.push((id, reason.clone())),
                Observation::Unobservable => {}
            }
        }
        self.store.save(&mut state).await?;
        emitter.flush().await;
        Ok(report)
    }
}
