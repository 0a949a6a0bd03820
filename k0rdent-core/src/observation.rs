//! Observation: what reality looks like, gathered in bulk and interpreted per step.
//!
//! An [`Observer`] (one per provider: Azure, VPN, nodes, cluster) gathers the facts for all of
//! its steps in a bounded number of calls into a [`Snapshot`]. Each step's
//! [`Step::observe`](crate::Step::observe) interprets the snapshot into an [`Observation`].
//! Only a definite "not found" is [`Observation::Absent`]; any other failure is
//! [`Observation::Unknown`], and unknown blocks — it never triggers work.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::evidence::Evidence;
use crate::state::DeploymentState;

/// A step's interpretation of the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "observed", rename_all = "snake_case")]
#[allow(missing_docs)] // fields named after what they hold
pub enum Observation {
    /// The step's result exists and is healthy.
    Done { evidence: Evidence },
    /// Definitely not there (a "not found" from the source of truth).
    Absent {
        /// What was not found.
        reason: String,
    },
    /// Partly there (e.g. a VM exists but is deallocated). `change` says what converging
    /// takes: an in-place fix, a disruptive one (a restart) or delete + create; the last two
    /// need confirmation.
    Partial {
        detail: String,
        evidence: Evidence,
        /// What repairing it takes.
        #[serde(default, skip_serializing_if = "Change::is_in_place")]
        change: Change,
    },
    /// Could not tell (an error that is not a definite not-found). Blocks; never triggers work.
    Unknown { reason: String },
    /// The step has nothing to observe; its record is trusted.
    Unobservable,
}

#[allow(missing_docs)] // constructors named after their variant
impl Observation {
    pub fn done(evidence: Evidence) -> Self {
        Observation::Done { evidence }
    }

    pub fn absent(reason: impl Into<String>) -> Self {
        Observation::Absent {
            reason: reason.into(),
        }
    }

    /// `Partial` with a detail, repaired in place.
    pub fn partial(detail: impl Into<String>, evidence: Evidence) -> Self {
        Observation::Partial {
            detail: detail.into(),
            evidence,
            change: Change::InPlace,
        }
    }

    /// `Partial` whose repair deletes and creates the resource (e.g. a VM whose provisioning
    /// failed, or whose immutable properties differ): planned as `replace`, needs confirmation.
    pub fn needs_replace(detail: impl Into<String>, evidence: Evidence) -> Self {
        Observation::Partial {
            detail: detail.into(),
            evidence,
            change: Change::Replace,
        }
    }

    /// `Partial` whose repair is applied in place but disrupts the resource (e.g. a VM resize
    /// restarts it): planned as a rerun that needs confirmation.
    pub fn disruptive(detail: impl Into<String>, evidence: Evidence) -> Self {
        Observation::Partial {
            detail: detail.into(),
            evidence,
            change: Change::Disruptive,
        }
    }

    /// What repairing a partial observation takes (`InPlace` for every other kind).
    pub fn change(&self) -> Change {
        match self {
            Observation::Partial { change, .. } => *change,
            _ => Change::InPlace,
        }
    }

    pub fn unknown(reason: impl Into<String>) -> Self {
        Observation::Unknown {
            reason: reason.into(),
        }
    }

    /// The snake_case name of the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Observation::Done { .. } => "done",
            Observation::Absent { .. } => "absent",
            Observation::Partial { .. } => "partial",
            Observation::Unknown { .. } => "unknown",
            Observation::Unobservable => "unobservable",
        }
    }
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observation::Done { .. } => f.write_str("present"),
            Observation::Absent { reason } => write!(f, "absent ({reason})"),
            Observation::Partial { detail, .. } => write!(f, "partial ({detail})"),
            Observation::Unknown { reason } => write!(f, "unknown ({reason})"),
            Observation::Unobservable => f.write_str("not observable"),
        }
    }
}

/// What converging a [`Observation::Partial`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Fixed in place without disruption.
    #[default]
    InPlace,
    /// Fixed in place, but the resource restarts (needs confirmation).
    Disruptive,
    /// Deleted and created again (needs confirmation).
    Replace,
}

impl Change {
    /// Whether it is [`Change::InPlace`].
    pub fn is_in_place(&self) -> bool {
        *self == Change::InPlace
    }

    /// Whether it needs the user's confirmation.
    pub fn needs_confirmation(self) -> bool {
        self != Change::InPlace
    }
}

/// Facts one observer gathered. Any `Send + Sync` type; steps read it back by type.
pub struct Facts(Arc<dyn Any + Send + Sync>, TypeId);

impl Facts {
    /// Wraps an observer's facts.
    pub fn new<T: Any + Send + Sync>(facts: T) -> Self {
        Facts(Arc::new(facts), TypeId::of::<T>())
    }
}

impl fmt::Debug for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Facts(..)")
    }
}

/// Why an observer could not observe (a 403 on a list call, a timeout, the VPN being down).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
#[allow(missing_docs)]
pub struct ObserveError {
    pub message: String,
}

#[allow(missing_docs)]
impl ObserveError {
    pub fn new(message: impl Into<String>) -> Self {
        ObserveError {
            message: message.into(),
        }
    }
}

/// The shared, read-only facts for one plan.
#[derive(Clone, Default)]
pub struct Snapshot {
    facts: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    /// Which observer provided which facts, so one observer's can be replaced alone.
    owners: BTreeMap<String, TypeId>,
    failures: BTreeMap<String, String>,
    observed_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("facts", &self.facts.len())
            .field("failures", &self.failures)
            .field("observed_at", &self.observed_at)
            .finish()
    }
}

impl Snapshot {
    /// An empty snapshot taken now.
    pub fn new() -> Self {
        Snapshot {
            observed_at: Some(Utc::now()),
            ..Snapshot::default()
        }
    }

    /// Adds one observer's facts.
    pub fn insert(&mut self, facts: Facts) {
        self.facts.insert(facts.1, facts.0);
    }

    /// Adds the facts `observer` gathered, replacing what it gave before (and its failure).
    pub fn insert_from(&mut self, observer: &str, facts: Facts) {
        self.forget(observer);
        self.owners.insert(observer.to_owned(), facts.1);
        self.insert(facts);
    }

    /// Drops what `observer` gave (its facts and its failure), before it observes again.
    pub fn forget(&mut self, observer: &str) {
        if let Some(t) = self.owners.remove(observer) {
            self.facts.remove(&t);
        }
        self.failures.remove(observer);
    }

    /// Adds facts of type `T`.
    pub fn insert_value<T: Any + Send + Sync>(&mut self, facts: T) {
        self.insert(Facts::new(facts));
    }

    /// Records that an observer failed.
    pub fn record_failure(&mut self, observer: &str, reason: impl Into<String>) {
        self.failures.insert(observer.to_owned(), reason.into());
    }

    /// The facts of type `T`, if an observer provided them.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.facts
            .get(&TypeId::of::<T>())
            .and_then(|a| a.downcast_ref::<T>())
    }

    /// The facts of type `T` from `observer`, or the [`Observation::Unknown`] to report when
    /// that observer failed or did not run.
    ///
    /// # Errors
    /// `Observation::Unknown` naming the observer and its failure.
    pub fn require<T: Any + Send + Sync>(&self, observer: &str) -> Result<&T, Observation> {
        self.get::<T>()
            .ok_or_else(|| match self.failures.get(observer) {
                Some(reason) => {
                    Observation::unknown(format!("{observer} observer failed: {reason}"))
                }
                None => Observation::unknown(format!("{observer} observer did not run")),
            })
    }

    /// Observer failures by observer name.
    pub fn failures(&self) -> &BTreeMap<String, String> {
        &self.failures
    }

    /// When the snapshot was taken.
    pub fn observed_at(&self) -> Option<DateTime<Utc>> {
        self.observed_at
    }
}

/// Gathers facts for all of a provider's steps in a bounded number of calls.
///
/// # Guarantees expected from implementations
/// - Read-only: observing never changes anything.
/// - Bounded: the number of remote calls does not grow with the number of steps it covers.
/// - Honest: only a definite not-found may be reported as absence; any other error is either
///   returned as [`ObserveError`] (all facts unknown) or recorded per resource as unknown.
#[async_trait]
pub trait Observer: Send + Sync {
    /// A short name (`azure`, `vpn`, `nodes`, `cluster`), used in messages.
    fn name(&self) -> &str;

    /// Gathers facts. `state` is the recorded state (e.g. which VMs to expect).
    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError>;

    /// Whether finishing `step` can change what this observer sees. After steps finish, the
    /// engine observes again with only the observers they affect (the layers that depend on
    /// what just finished) and keeps the others' facts. Default: every step does.
    fn affected_by(&self, _step: &crate::id::StepId) -> bool {
        true
    }
}

#[async_trait]
impl<T: Observer + ?Sized> Observer for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError> {
        (**self).observe(state).await
    }
    fn affected_by(&self, step: &crate::id::StepId) -> bool {
        (**self).affected_by(step)
    }
}

#[async_trait]
impl<T: Observer + ?Sized> Observer for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError> {
        (**self).observe(state).await
    }
    fn affected_by(&self, step: &crate::id::StepId) -> bool {
        (**self).affected_by(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct AzureFacts(u32);

    #[test]
    fn facts_are_read_back_by_type_and_failures_become_unknown() {
        let mut s = Snapshot::new();
        s.insert(Facts::new(AzureFacts(3)));
        assert_eq!(s.get::<AzureFacts>(), Some(&AzureFacts(3)));
        assert_eq!(s.get::<String>(), None);
        s.record_failure("cluster", "HTTP 403 on list");
        match s.require::<String>("cluster") {
            Err(Observation::Unknown { reason }) => assert!(reason.contains("403"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match s.require::<u8>("vpn") {
            Err(Observation::Unknown { reason }) => assert!(reason.contains("did not run")),
            other => panic!("{other:?}"),
        }
    }
}
