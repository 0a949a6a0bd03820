//! Plans: one decision per step with a machine-readable reason and a one-line human reason.

mod graph;
mod planner;
mod render;

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use graph::{GraphError, PlanGraph, StepSpec};
pub use planner::{PlanFacts, RunMark, plan};

use crate::id::StepId;
use crate::remedy::Remedy;
use crate::state::Status;

/// What to do about work that needs confirmation, wherever it is found: in the plan or by a
/// step mid-run.
pub(crate) const CONFIRM_REMEDY: &str =
    "review the plan (`k0rdent plan`) and run again with -y to accept";

/// What the engine will do with a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Completed and verified: nothing to do.
    Skip,
    /// Never done (or the last attempt failed): run it.
    Run,
    /// Was in progress when a run stopped: settle its journal, then continue.
    Resume,
    /// Recorded done, but reality or its inputs differ; converged in place.
    Rerun,
    /// The change needs delete + create (an immutable input changed); needs confirmation.
    Replace,
    /// Cannot proceed: a gate, an unknown observation or a dependency.
    Blocked,
    /// Optional and off.
    Disabled,
}

impl Decision {
    /// Whether the decision does work.
    pub fn executes(self) -> bool {
        matches!(
            self,
            Decision::Run | Decision::Resume | Decision::Rerun | Decision::Replace
        )
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Skip => "skip",
            Decision::Run => "run",
            Decision::Resume => "resume",
            Decision::Rerun => "rerun",
            Decision::Replace => "replace",
            Decision::Blocked => "blocked",
            Decision::Disabled => "disabled",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a decision was made (machine-readable; `code` is the stable tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// Never started.
    NotStarted,
    /// The last attempt failed.
    PreviousAttemptFailed {
        /// The recorded error.
        error: String,
    },
    /// Was disabled, now enabled.
    ReEnabled,
    /// Was in progress when a run stopped.
    Interrupted,
    /// Completed, observed done, same inputs.
    Verified,
    /// Completed (migrated, no fingerprint recorded), observed done: adopted.
    Adopted,
    /// Completed, not observable, same inputs: the record is trusted.
    TrustedRecord,
    /// Completed in this run.
    CompletedThisRun,
    /// Completed, but reality differs.
    Drift {
        /// What differs.
        detail: String,
    },
    /// Completed, but its inputs changed (config or upstream outputs).
    InputsChanged,
    /// Completed without recorded inputs and not observable: converged again.
    InputsUnknown,
    /// An input that cannot change in place changed since it was recorded.
    ImmutableInputsChanged,
    /// What exists can only be repaired by delete + create (provisioning failed, immutable
    /// properties differ).
    ReplaceNeeded {
        /// What was observed.
        detail: String,
    },
    /// What exists differs in a way whose repair restarts it (e.g. a VM's size).
    DisruptiveChange {
        /// What was observed.
        detail: String,
    },
    /// An input whose change restarts the resource changed since it was recorded.
    DisruptiveInputsChanged,
    /// Re-planned once an upstream step has run.
    AwaitingUpstream {
        /// The first upstream step that runs first.
        upstream: StepId,
    },
    /// Its observation is unknown.
    ObservationUnknown {
        /// Why the observer or the step could not tell.
        reason: String,
    },
    /// A gate failed.
    GateFailed {
        #[allow(missing_docs)]
        gate: String,
        /// The gate's one-line diagnosis.
        reason: String,
        /// The gate's [`Remedy`], shown as this reason's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
    /// A dependency is blocked.
    #[allow(missing_docs)]
    DependencyBlocked { dependency: StepId },
    /// A dependency failed in this run.
    #[allow(missing_docs)]
    DependencyFailed { dependency: StepId },
    /// A dependency is disabled while this step is enabled.
    #[allow(missing_docs)]
    DependencyDisabled { dependency: StepId },
    /// It failed in this run.
    FailedThisRun {
        /// Its error message.
        error: String,
    },
    /// It cannot run in this build or environment.
    Unavailable {
        /// The step's [`Availability::Unavailable`](crate::step::Availability::Unavailable)
        /// reason.
        reason: String,
    },
    /// Its journal from an interrupted run cannot be read.
    JournalCorrupt {
        /// What is wrong.
        detail: String,
    },
    /// A reset is in progress.
    ResetInProgress,
    /// A replace or a disruptive change needs confirmation.
    NeedsConfirmation {
        /// What needs it.
        detail: String,
    },
    /// Optional and turned off.
    Disabled {
        /// The step's [`Availability::Disabled`](crate::step::Availability::Disabled) reason.
        reason: String,
    },
}

impl Reason {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotStarted => "not_started",
            Reason::PreviousAttemptFailed { .. } => "previous_attempt_failed",
            Reason::ReEnabled => "re_enabled",
            Reason::Interrupted => "interrupted",
            Reason::Verified => "verified",
            Reason::Adopted => "adopted",
            Reason::TrustedRecord => "trusted_record",
            Reason::CompletedThisRun => "completed_this_run",
            Reason::Drift { .. } => "drift",
            Reason::InputsChanged => "inputs_changed",
            Reason::InputsUnknown => "inputs_unknown",
            Reason::ImmutableInputsChanged => "immutable_inputs_changed",
            Reason::ReplaceNeeded { .. } => "replace_needed",
            Reason::DisruptiveChange { .. } => "disruptive_change",
            Reason::DisruptiveInputsChanged => "disruptive_inputs_changed",
            Reason::AwaitingUpstream { .. } => "awaiting_upstream",
            Reason::ObservationUnknown { .. } => "observation_unknown",
            Reason::GateFailed { .. } => "gate_failed",
            Reason::DependencyBlocked { .. } => "dependency_blocked",
            Reason::DependencyFailed { .. } => "dependency_failed",
            Reason::DependencyDisabled { .. } => "dependency_disabled",
            Reason::FailedThisRun { .. } => "failed_this_run",
            Reason::Unavailable { .. } => "unavailable",
            Reason::JournalCorrupt { .. } => "journal_corrupt",
            Reason::ResetInProgress => "reset_in_progress",
            Reason::NeedsConfirmation { .. } => "needs_confirmation",
            Reason::Disabled { .. } => "disabled",
        }
    }

    /// Whether a step executed for this reason deletes, creates again or restarts what it
    /// manages.
    pub fn needs_confirmation(&self) -> bool {
        matches!(
            self,
            Reason::ImmutableInputsChanged
                | Reason::ReplaceNeeded { .. }
                | Reason::DisruptiveChange { .. }
                | Reason::DisruptiveInputsChanged
        )
    }
}

impl Remedy for Reason {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            Reason::GateFailed { remedy, .. } => remedy.as_deref().map(Cow::Borrowed),
            Reason::ObservationUnknown { .. } => Some(
                "nothing was changed; fix access and run again (`k0rdent status` shows what is unknown)"
                    .into(),
            ),
            Reason::JournalCorrupt { .. } => Some(
                "inspect it with `k0rdent state show`; `k0rdent refresh` re-reads reality and clears the journal"
                    .into(),
            ),
            Reason::ResetInProgress => {
                Some("run `k0rdent reset` to finish the interrupted reset".into())
            }
            Reason::NeedsConfirmation { .. } => Some(CONFIRM_REMEDY.into()),
            _ => None,
        }
    }
}

/// The kind of an observation, as the plan reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObservedKind {
    /// Present and healthy.
    Done,
    /// Definitely not there.
    Absent,
    /// Partly there.
    Partial,
    /// Could not tell.
    Unknown,
    /// Nothing to observe.
    Unobservable,
}

impl ObservedKind {
    /// The kind of `o`.
    pub fn of(o: &crate::observation::Observation) -> Self {
        use crate::observation::Observation as O;
        match o {
            O::Done { .. } => ObservedKind::Done,
            O::Absent { .. } => ObservedKind::Absent,
            O::Partial { .. } => ObservedKind::Partial,
            O::Unknown { .. } => ObservedKind::Unknown,
            O::Unobservable => ObservedKind::Unobservable,
        }
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PlanEntry {
    #[allow(missing_docs)]
    pub step: StepId,
    #[allow(missing_docs)]
    pub decision: Decision,
    /// Why (machine-readable).
    pub reason: Reason,
    /// Why (one line for humans).
    pub message: Cow<'static, str>,
    /// True when the decision depends on upstream steps that run first; the engine re-plans
    /// after them and never executes a provisional decision.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    /// The step's status as recorded when the plan was made.
    pub status: Status,
    /// The kind of the step's observation.
    pub observed: ObservedKind,
}

impl PlanEntry {
    /// Whether the engine may execute it now.
    pub fn ready(&self) -> bool {
        self.decision.executes() && !self.provisional
    }

    /// Whether executing it deletes and creates something or disrupts it (a restart), so it
    /// runs only when confirmed (`-y`).
    pub fn needs_confirmation(&self) -> bool {
        self.decision.executes() && self.reason.needs_confirmation()
    }
}

/// The decisions for a whole pipeline, in dependency order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Plan {
    /// One entry per step, dependencies first.
    pub entries: Vec<PlanEntry>,
}

impl Plan {
    /// The entry of a step.
    pub fn entry(&self, id: &StepId) -> Option<&PlanEntry> {
        self.entries.iter().find(|e| &e.step == id)
    }

    /// Whether anything would be done (including provisional work).
    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| e.decision.executes())
    }

    /// Whether anything is blocked.
    ///
    /// (See also [`PlanEntry::needs_confirmation`].)
    pub fn is_blocked(&self) -> bool {
        self.entries.iter().any(|e| e.decision == Decision::Blocked)
    }

    /// Number of entries per decision, in [`Decision`] order.
    pub fn counts(&self) -> Vec<(Decision, usize)> {
        let all = [
            Decision::Skip,
            Decision::Run,
            Decision::Resume,
            Decision::Rerun,
            Decision::Replace,
            Decision::Blocked,
            Decision::Disabled,
        ];
        all.iter()
            .map(|d| (*d, self.entries.iter().filter(|e| e.decision == *d).count()))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}
