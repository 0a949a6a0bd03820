//! [`StepContext`]: what `apply` and `teardown` can see and do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::Serialize;

use super::StepError;
use crate::cancel::Cancellation;
use crate::cell::StateCell;
use crate::emit::Emitter;
use crate::event::Event;
use crate::id::{RunId, StepId};
use crate::observation::Snapshot;
use crate::plan::Decision;
use crate::state::{DeploymentState, Journal, JournalEntry, Outputs, StepRecord};
use crate::store::KeyStore;

/// Handed to [`Step::apply`](crate::Step::apply) and [`Step::teardown`](crate::Step::teardown).
///
/// Journal entries and state updates made through it are persisted before the call returns.
/// [`StepContext::checkpoint`] marks a safe point: it fails with an interrupted error once the
/// run (first Ctrl-C) or a watched gate asked the step to stop.
pub struct StepContext {
    pub(crate) step: StepId,
    pub(crate) decision: Decision,
    pub(crate) confirmed: bool,
    pub(crate) deadline: Option<tokio::time::Instant>,
    pub(crate) stop: Arc<StopGrace>,
    pub(crate) run_id: RunId,
    pub(crate) attempt: u32,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) record: StepRecord,
    pub(crate) journal: Mutex<Journal>,
    pub(crate) upstream: Arc<BTreeMap<StepId, Outputs>>,
    pub(crate) cell: Arc<StateCell>,
    pub(crate) cancel: Cancellation,
    pub(crate) emitter: Emitter,
}

impl std::fmt::Debug for StepContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepContext")
            .field("step", &self.step)
            .field("run_id", &self.run_id)
            .field("attempt", &self.attempt)
            .field("decision", &self.decision)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

fn store_failed(e: impl std::fmt::Display) -> StepError {
    StepError::permanent(format!("could not persist the state: {e}"))
}

impl StepContext {
    #[allow(missing_docs)]
    pub fn step(&self) -> &StepId {
        &self.step
    }

    #[allow(missing_docs)]
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The attempt within this run (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// What the planner decided for this execution (`Run`, `Resume`, `Rerun` or `Replace`;
    /// for a teardown, `Run`). `apply` must still converge from facts, whatever the label.
    pub fn decision(&self) -> Decision {
        self.decision
    }

    /// Whether the engine confirmed destructive or disruptive work for this execution: a
    /// delete + create, or a change that restarts what the step manages. Only when this is
    /// true may `apply` do such work; otherwise it returns
    /// [`StepError::needs_confirmation`].
    pub fn confirmed(&self) -> bool {
        self.confirmed
    }

    /// When this attempt's time limit ends (`None`: no limit). A step that is asked to wait
    /// (e.g. `Retry-After`) may wait up to this, not beyond.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline
    }

    /// Declares that stopping this step takes up to `grace` (an external tool that gets
    /// SIGTERM and this long before SIGKILL): while the guard lives, the engine waits that long
    /// for the step after a stop request, and tells the user what it is waiting for.
    pub fn stop_grace(&self, grace: std::time::Duration, what: impl Into<String>) -> StopGuard {
        let previous = self.stop.set(Some((grace, what.into())));
        StopGuard {
            stop: self.stop.clone(),
            previous,
        }
    }

    /// The facts observed for this plan.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The step's record as it was when this attempt started (status, outputs, evidence).
    pub fn record(&self) -> &StepRecord {
        &self.record
    }

    /// The journal: entries from interrupted runs plus those written in this attempt.
    pub fn journal(&self) -> Journal {
        self.journal.lock().map(|j| j.clone()).unwrap_or_default()
    }

    /// The recorded outputs of the step's dependencies.
    pub fn upstream(&self) -> &BTreeMap<StepId, Outputs> {
        &self.upstream
    }

    /// Writes a journal entry and persists it before returning.
    ///
    /// # Errors
    /// A permanent [`StepError`] if the state cannot be saved.
    pub async fn write_journal(&self, key: &str, value: impl Serialize) -> Result<(), StepError> {
        let value = serde_json::to_value(value)
            .map_err(|e| StepError::permanent(format!("journal entry {key}: {e}")))?;
        let entry = JournalEntry {
            at: Utc::now(),
            key: key.to_owned(),
            value,
        };
        let id = self.step.clone();
        let e2 = entry.clone();
        self.cell
            .update(move |s| s.record_mut(&id).journal.0.push(e2))
            .await
            .map_err(store_failed)?;
        if let Ok(mut j) = self.journal.lock() {
            j.0.push(entry);
        }
        Ok(())
    }

    /// Updates the recorded state (e.g. node records) and persists it before returning.
    ///
    /// # Errors
    /// A permanent [`StepError`] if the state cannot be saved.
    pub async fn update_state<R: Send>(
        &self,
        f: impl FnOnce(&mut DeploymentState) -> R + Send,
    ) -> Result<R, StepError> {
        self.cell.update(f).await.map_err(store_failed)
    }

    /// Reads the current recorded state.
    pub async fn read_state<R>(&self, f: impl FnOnce(&DeploymentState) -> R) -> R {
        self.cell.read(f).await
    }

    /// The engine's key store, for private keys that must never reach the state (write a
    /// key there before its public half is used anywhere, so a crash cannot lose it).
    /// Without one, every key is a [`StoreError::NoKeyStore`](crate::store::StoreError::NoKeyStore).
    pub fn keys(&self) -> &dyn KeyStore {
        self.cell.keys()
    }

    /// A safe point: fails with an interrupted error if the step was asked to stop.
    ///
    /// # Errors
    /// [`ErrorKind::Interrupted`](crate::step::ErrorKind::Interrupted) once cancelled.
    pub fn checkpoint(&self) -> Result<(), StepError> {
        if self.cancel.is_cancelled() {
            Err(StepError::interrupted(
                self.cancel
                    .reason()
                    .unwrap_or_else(|| "interrupted".to_owned()),
            ))
        } else {
            Ok(())
        }
    }

    /// Whether the step was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the step is asked to stop (to race long waits against it).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Shown to the user and written to the event log as [`Event::StepProgress`]; not kept
    /// in the state.
    pub fn progress(&self, message: impl Into<String>) {
        self.emitter.emit(Event::StepProgress {
            step: self.step.clone(),
            message: message.into(),
        });
    }
}

/// How long a step may take to stop, as declared through [`StepContext::stop_grace`].
#[derive(Debug, Default)]
pub(crate) struct StopGrace(Mutex<Option<(std::time::Duration, String)>>);

impl StopGrace {
    fn set(
        &self,
        v: Option<(std::time::Duration, String)>,
    ) -> Option<(std::time::Duration, String)> {
        match self.0.lock() {
            Ok(mut g) => std::mem::replace(&mut *g, v),
            Err(_) => None,
        }
    }

    /// The declared grace and what it is for, if any.
    pub(crate) fn get(&self) -> Option<(std::time::Duration, String)> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

/// Keeps a declared stop grace in force; dropping it restores the previous one.
#[derive(Debug)]
#[must_use = "the grace holds only while the guard lives"]
pub struct StopGuard {
    stop: Arc<StopGrace>,
    previous: Option<(std::time::Duration, String)>,
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.stop.set(self.previous.take());
    }
}
