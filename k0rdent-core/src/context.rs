//! [`StepContext`]: what `apply` and `teardown` can see and do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde::Serialize;

use crate::cancel::Cancellation;
use crate::engine::cell::StateCell;
use crate::engine::emit::Emitter;
use crate::event::Event;
use crate::id::{RunId, StepId};
use crate::observation::Snapshot;
use crate::secret::Secret;
use crate::state::{DeploymentState, Journal, JournalEntry, Outputs, StepRecord};
use crate::step::StepError;

/// Handed to [`Step::apply`](crate::Step::apply) and [`Step::teardown`](crate::Step::teardown).
///
/// Journal entries and state updates made through it are persisted before the call returns.
/// [`StepContext::checkpoint`] marks a safe point: it fails with an interrupted error once the
/// run (first Ctrl-C) or a watched gate asked the step to stop.
pub struct StepContext {
    pub(crate) step: StepId,
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
            .finish()
    }
}

fn store_failed(e: impl std::fmt::Display) -> StepError {
    StepError::permanent(format!("could not persist the state: {e}"))
}

impl StepContext {
    /// The step.
    pub fn step(&self) -> &StepId {
        &self.step
    }

    /// The run.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// The attempt within this run (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
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

    /// Stores a private key in the store's key directory.
    ///
    /// # Errors
    /// A permanent [`StepError`] if it cannot be written.
    pub async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StepError> {
        self.cell
            .store()
            .put_secret(name, value)
            .await
            .map_err(|e| StepError::permanent(format!("could not store key {name}: {e}")))
    }

    /// Reads a private key from the store's key directory.
    ///
    /// # Errors
    /// A permanent [`StepError`] if it cannot be read.
    pub async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StepError> {
        self.cell
            .store()
            .get_secret(name)
            .await
            .map_err(|e| StepError::permanent(format!("could not read key {name}: {e}")))
    }

    /// A safe point: fails with an interrupted error if the step was asked to stop.
    ///
    /// # Errors
    /// [`ErrorKind::Interrupted`](crate::ErrorKind::Interrupted) once cancelled.
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

    /// Reports progress.
    pub fn progress(&self, message: impl Into<String>) {
        self.emitter.emit(Event::StepProgress {
            step: self.step.clone(),
            message: message.into(),
        });
    }
}
