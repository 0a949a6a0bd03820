//! `deploy`: take the lock, settle the previous run, observe, hand the steps to the
//! [`Scheduler`], and record how the run ended.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::facts::observe_all;
use super::finish::record_run_end;
use super::scheduler::Scheduler;
use super::{Engine, EngineError, RunReport};
use crate::cell::StateCell;
use crate::emit::Emitter;
use crate::event::Event;
use crate::id::RunId;
use crate::state::{DeploymentState, RunOutcome, RunRecord};
use crate::store::{LockHolder, hostname};

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
        let cell = Arc::new(StateCell::new(
            state,
            self.store.clone(),
            self.keys.clone(),
            Some(lock),
        ));
        let mut scheduler = Scheduler::new(
            self,
            cell.clone(),
            emitter.clone(),
            &in_scope,
            Arc::new(snapshot),
        );
        let result = scheduler.execute().await;
        let (initial_plan, final_plan) = match result {
            Ok(p) => p,
            Err(e) => {
                emitter.flush().await;
                return Err(e);
            }
        };
        let outcome = scheduler.outcome(&final_plan);
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        record_run_end(&cell, &emitter, &run_id, outcome, duration_ms).await?;
        emitter.flush().await;
        Ok(RunReport {
            run_id,
            outcome,
            initial_plan,
            final_plan,
            steps: scheduler.into_reports(),
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
