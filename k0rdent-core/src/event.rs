//! The typed event stream: everything the engine reports goes through an [`EventSink`].
//! The terminal view, `--output json` (JSON Lines) and the persisted event log are sinks;
//! library crates never print.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::{RunId, StepId};
use crate::plan::{Decision, Plan};
use crate::remedy::Remedy;
use crate::state::RunOutcome;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
#[allow(missing_docs)] // fields such as `step`, `gate`, `run_id` or `pid` need none
pub enum Event {
    /// A run started.
    RunStarted {
        run_id: RunId,
        /// `deploy`, `reset`, `refresh`.
        command: String,
        pid: u32,
        host: String,
    },
    /// The previous run died without recording how it ended.
    PreviousRunDied { run_id: RunId, pid: u32 },
    /// An observer finished.
    Observed {
        observer: String,
        /// Its failure, if it failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        duration_ms: u64,
    },
    /// The plan (emitted once per run, before anything executes).
    Planned { plan: Plan },
    /// A completed step's reality differs from its record.
    Drift {
        step: StepId,
        /// What differs.
        detail: String,
    },
    /// A gate passed.
    GatePassed {
        step: StepId,
        gate: String,
        evidence: String,
    },
    /// A gate with a wait budget has not passed yet; still waiting.
    GateWaiting {
        step: StepId,
        gate: String,
        /// Why it has not passed yet.
        reason: String,
        /// Time left in the budget.
        remaining_ms: u64,
    },
    /// A gate failed.
    GateFailed {
        step: StepId,
        gate: String,
        /// The gate's one-line diagnosis.
        reason: String,
        /// The gate's [`Remedy`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
    /// A step started (or resumed).
    StepStarted {
        step: StepId,
        /// The decision being carried out.
        decision: Decision,
        /// Attempt number across runs.
        attempt: u32,
    },
    /// Progress inside a step.
    StepProgress {
        step: StepId,
        /// What is happening.
        message: String,
    },
    /// A step is waiting on something it started (a long-running operation).
    StepPending {
        step: StepId,
        /// What is pending.
        detail: String,
        /// When it is looked at again.
        after_ms: u64,
    },
    /// A transient failure; the step is retried.
    StepRetrying {
        step: StepId,
        /// Attempt that failed (1-based, this run).
        attempt: u32,
        error: String,
        /// Delay before the retry.
        delay_ms: u64,
    },
    /// A step completed.
    StepCompleted {
        step: StepId,
        duration_ms: u64,
        /// Whether its outputs differ from the recorded ones (downstream may rerun).
        outputs_changed: bool,
    },
    /// A step failed.
    StepFailed {
        step: StepId,
        error: String,
        /// The step's [`Remedy`] (or the failed state save's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
    /// A step could not proceed.
    StepBlocked {
        step: StepId,
        /// The step's message, or why it needs confirmation.
        reason: String,
        /// The step's [`Remedy`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
    /// A step stopped at a safe point (or was abandoned) and stays in progress.
    StepInterrupted {
        step: StepId,
        /// What stopped it: the cancellation's reason, a watched gate, its time limit.
        reason: String,
    },
    /// Destructive or disruptive work a step found while it ran was confirmed by `-y`.
    StepConfirmed {
        step: StepId,
        /// What will be deleted, re-created or restarted.
        change: String,
    },
    /// A step was asked to stop and is given a declared grace (an external tool got SIGTERM).
    StepStopping {
        step: StepId,
        /// What is stopping (e.g. `helm upgrade`).
        what: String,
        /// How long it is given before it is killed.
        grace_ms: u64,
    },
    /// A step was recorded as skipped because it is disabled.
    StepDisabled {
        step: StepId,
        /// The step's [`Availability::Disabled`](crate::step::Availability::Disabled) reason.
        reason: String,
    },
    /// Teardown of a step started (reset).
    TeardownStarted { step: StepId },
    /// Teardown of a step finished.
    TeardownCompleted {
        step: StepId,
        /// Set when the step has nothing of its own to undo: why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nothing_to_undo: Option<String>,
    },
    /// Teardown of a step failed.
    TeardownFailed { step: StepId, error: String },
    /// A stop was requested (first Ctrl-C): nothing new starts.
    StopRequested {
        /// The reason given to [`Cancellation::cancel`](crate::cancel::Cancellation::cancel).
        reason: String,
    },
    /// The run ended.
    RunFinished {
        run_id: RunId,
        outcome: RunOutcome,
        duration_ms: u64,
    },
}

/// An event as persisted: time and run id around it.
///
/// One JSON object per line: `at`, `run_id` and the event's fields. An event that carries its
/// own `run_id` (`run_started`, `run_finished`) writes it once. Logs written before that, with
/// `run_id` twice in one object, still read.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The run it belongs to.
    pub run_id: RunId,
    #[allow(missing_docs)]
    pub event: Event,
}

/// The remedy of a failed or blocked step and of a failed gate; other events have none.
impl Remedy for Event {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            Event::StepFailed { remedy, .. }
            | Event::StepBlocked { remedy, .. }
            | Event::GateFailed { remedy, .. } => remedy.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }
}

impl Event {
    /// The run id the event itself carries, if any.
    fn own_run_id(&self) -> Option<&RunId> {
        match self {
            Event::RunStarted { run_id, .. } | Event::RunFinished { run_id, .. } => Some(run_id),
            _ => None,
        }
    }
}

impl Serialize for EventRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Line<'a> {
            at: &'a DateTime<Utc>,
            #[serde(skip_serializing_if = "Option::is_none")]
            run_id: Option<&'a RunId>,
            #[serde(flatten)]
            event: &'a Event,
        }
        let run_id = match self.event.own_run_id() {
            Some(own) if own == &self.run_id => None,
            _ => Some(&self.run_id),
        };
        Line {
            at: &self.at,
            run_id,
            event: &self.event,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // Through a map, so that `run_id` can belong to both the record and its event (and a
        // duplicated key in an old line keeps its last value instead of failing).
        let value = serde_json::Value::deserialize(deserializer)?;
        let at = value
            .get("at")
            .cloned()
            .ok_or_else(|| D::Error::missing_field("at"))
            .and_then(|v| serde_json::from_value(v).map_err(D::Error::custom))?;
        let run_id = value
            .get("run_id")
            .cloned()
            .ok_or_else(|| D::Error::missing_field("run_id"))
            .and_then(|v| serde_json::from_value(v).map_err(D::Error::custom))?;
        let event = serde_json::from_value(value).map_err(D::Error::custom)?;
        Ok(EventRecord { at, run_id, event })
    }
}

/// Receives events. Implementations must be cheap (they run on the engine's task) and must
/// not fail the run: a sink that cannot write reports it through its own channel.
pub trait EventSink: Send + Sync {
    /// One event.
    fn emit(&self, event: &Event);
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

impl<S: EventSink + ?Sized> EventSink for &S {
    fn emit(&self, event: &Event) {
        (**self).emit(event);
    }
}

/// Discards events.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _event: &Event) {}
}

/// Sends every event to several sinks.
#[derive(Default)]
pub struct FanOut(pub Vec<Arc<dyn EventSink>>);

impl EventSink for FanOut {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}

/// Keeps every event in memory (tests, embedders that want a report).
#[derive(Default)]
pub struct RecordingSink {
    events: Mutex<Vec<Event>>,
}

impl RecordingSink {
    /// An empty recorder.
    pub fn new() -> Self {
        RecordingSink::default()
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_events_write_their_run_id_once_and_read_back() {
        let run_id = RunId::generate();
        let rec = EventRecord {
            at: Utc::now(),
            run_id: run_id.clone(),
            event: Event::RunStarted {
                run_id: run_id.clone(),
                command: "deploy".into(),
                pid: 7,
                host: "h".into(),
            },
        };
        let line = serde_json::to_string(&rec).unwrap();
        assert_eq!(line.matches("\"run_id\"").count(), 1, "{line}");
        let back: EventRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        let other = EventRecord {
            event: Event::StopRequested { reason: "x".into() },
            ..rec.clone()
        };
        let line = serde_json::to_string(&other).unwrap();
        assert_eq!(serde_json::from_str::<EventRecord>(&line).unwrap(), other);
    }

    #[test]
    fn old_lines_with_run_id_twice_still_read() {
        let line = r#"{"at":"2026-11-30T10:00:00Z","run_id":"r-1","event":"run_started","run_id":"r-1","command":"deploy","pid":1,"host":"h"}"#;
        let rec: EventRecord = serde_json::from_str(line).unwrap();
        assert_eq!(rec.run_id.as_str(), "r-1");
        assert!(matches!(rec.event, Event::RunStarted { .. }));
    }
}
