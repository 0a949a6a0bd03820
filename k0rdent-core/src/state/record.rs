//! Per-step records: status, fingerprint, outputs, evidence and the intent journal.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::evidence::Evidence;
use crate::fingerprint::Fingerprint;

/// The recorded status of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Never started (or reset).
    #[default]
    Pending,
    /// Started and not finished: the run stopped or died inside it.
    InProgress,
    /// Converged; steps that depend on it may start.
    Completed,
    /// The last attempt failed.
    Failed,
    /// Disabled (optional phase off); see `skipped_reason`.
    Skipped,
}

impl Status {
    /// The spelling in the state file (`in_progress`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a step produced; recorded and fed to downstream steps. Downstream work reruns only
/// when these change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outputs(pub BTreeMap<String, serde_json::Value>);

impl Outputs {
    #[allow(missing_docs)]
    pub fn new() -> Self {
        Outputs::default()
    }

    /// Adds an output, replacing an earlier one with the same key.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// An output by key.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.0.get(key)
    }

    /// An output as a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }

    /// Whether there are no outputs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Evidence recorded with the time it was observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // fields named after what they hold
pub struct EvidenceRecord {
    pub observed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Evidence::is_empty")]
    pub facts: Evidence,
}

/// One journal entry: an intent or an intermediate fact recorded before a side effect whose
/// outcome could be lost (e.g. an ARM async-operation URL right after a PUT is accepted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// Step-defined key (`put_accepted`, `k0sctl_apply_started`, ...).
    pub key: String,
    /// Step-defined value; `null` (left out of the file) when the key says it all.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
}

/// The journal of a step: entries in the order they were written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Journal(pub Vec<JournalEntry>);

impl Journal {
    /// The latest entry with this key.
    pub fn latest(&self, key: &str) -> Option<&JournalEntry> {
        self.0.iter().rev().find(|e| e.key == key)
    }

    /// The latest value with this key, deserialized; `None` if absent or of another shape.
    pub fn latest_as<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.latest(key)
            .and_then(|e| serde_json::from_value(e.value.clone()).ok())
    }

    /// Whether the journal is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[allow(missing_docs)]
    pub fn entries(&self) -> &[JournalEntry] {
        &self.0
    }
}

/// The record of one step or sub-step.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct StepRecord {
    #[serde(default)]
    pub status: Status,
    /// When the last attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it last completed, failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Attempts in total (across runs).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The inputs it last converged with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    #[serde(default, skip_serializing_if = "Outputs::is_empty")]
    pub outputs: Outputs,
    /// The last evidence that it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceRecord>,
    /// Intent journal of the current attempt sequence (cleared on completion).
    #[serde(default, skip_serializing_if = "Journal::is_empty")]
    pub journal: Journal,
    /// The last error (failed) or interruption (in progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why it was last blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Why it is skipped (status `skipped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_reason: Option<String>,
    /// Sub-step records, keyed by the item part of `phase/item`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<String, StepRecord>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
