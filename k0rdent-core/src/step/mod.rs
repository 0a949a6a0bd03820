//! The [`Step`] trait and what flows in and out of it.

mod context;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::availability::Availability;
use crate::evidence::Evidence;
use crate::fingerprint::Fingerprint;
use crate::gate::Gate;
use crate::id::StepId;
use crate::observation::{Observation, Snapshot};
use crate::remedy::Remedy;
use crate::state::{DeploymentState, Journal, Outputs, StepRecord};

pub(crate) use context::StopGrace;
pub use context::{StepContext, StopGuard};

/// What `apply` returns when it did not fail.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum StepOutcome {
    /// Converged: record these outputs and evidence.
    Done {
        /// What downstream work depends on.
        outputs: Outputs,
        /// What shows it is done.
        evidence: Evidence,
    },
    /// Not yet (e.g. a long-running operation was accepted and journaled): call `apply` again
    /// after `after`. The engine owns the waiting; steps never sleep in a loop.
    Pending {
        /// When to look again.
        after: Duration,
        /// What is pending, for progress output.
        detail: String,
    },
}

impl StepOutcome {
    /// Done with outputs and evidence.
    pub fn done(outputs: Outputs, evidence: Evidence) -> Self {
        StepOutcome::Done { outputs, evidence }
    }

    /// Call again after `after`.
    pub fn pending(after: Duration, detail: impl Into<String>) -> Self {
        StepOutcome::Pending {
            after,
            detail: detail.into(),
        }
    }
}

/// How a step error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// May succeed if tried again (throttling, a dropped connection): retried by the policy.
    Transient,
    /// Will not succeed by retrying: the step fails.
    Permanent,
    /// A precondition does not hold (unknown state, missing confirmation): the step is
    /// blocked, its record is left as it was.
    Blocked,
    /// Cancelled at a safe point: the step stays in progress and resumes next run.
    Interrupted,
    /// The step found that converging deletes and creates something, or restarts it, and the
    /// engine had not confirmed that: with `-y` the engine confirms and calls `apply` again at
    /// once, otherwise the step is blocked (its record and journal are kept).
    NeedsConfirmation,
}

/// A step failure with a kind, a one-line message and an optional remedy.
#[derive(Debug)]
pub struct StepError {
    kind: ErrorKind,
    message: String,
    remedy: Option<String>,
    retry_after: Option<Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StepError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            message: message.into(),
            remedy: None,
            retry_after: None,
            source: None,
        }
    }

    /// A retryable failure.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A failure retrying will not fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    /// A precondition does not hold.
    pub fn blocked(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Blocked, message)
    }

    /// Cancelled at a safe point.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Interrupted, message)
    }

    /// Converging needs a delete + create or a restart that was not confirmed; `message` says
    /// what would happen ("VM k0s-worker-1: provisioning failed; it is deleted and created
    /// again").
    pub fn needs_confirmation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NeedsConfirmation, message)
    }

    /// Adds the [`Remedy`] (what the user can do: the command to run, the key to set).
    #[must_use]
    pub fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = Some(remedy.into());
        self
    }

    /// Asks for a retry no sooner than `after` (e.g. from `Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// How the engine handles it: retry, fail, block, leave in progress or ask for `-y`.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The requested minimum delay before a retry.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl Remedy for StepError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        self.remedy.as_deref().map(Cow::Borrowed)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|b| b.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// What a teardown did, so `reset` can say it: every step declares its teardown, and one
/// that has nothing to undo says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Teardown {
    /// What the step made is gone (or was never made).
    Done,
    /// The step has nothing of its own to undo, for this reason (e.g. "the resource group's
    /// deletion removes the VM").
    Nothing(std::borrow::Cow<'static, str>),
}

impl Teardown {
    /// Nothing to undo, because `why`.
    pub fn nothing(why: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Teardown::Nothing(why.into())
    }
}

/// A journal left by an interrupted run that the step cannot settle: the step plans as
/// blocked, because a corrupt journal is never guessed around. Its text (with the source's,
/// if any) is the plan's `journal unreadable: …` detail.
#[derive(Debug)]
pub struct JournalError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl JournalError {
    /// What is wrong, e.g. "no `k0sctl_started` entry".
    pub fn new(message: impl Into<String>) -> Self {
        JournalError {
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the error that made the entry unreadable (its text follows the message).
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|b| b.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// How the engine runs a step's attempts: how long one may take, whether one that ran out of
/// time may start again, and how transient errors are retried.
///
/// Build it from the default (or a [`RetryPolicy`]) with the setters, so that settings added
/// later keep their defaults in existing steps.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct StepPolicy {
    /// Time limit for one attempt (including `Pending` waits); `None`: the limit the engine
    /// was given for the step's phase, else the engine default.
    pub time_limit: Option<Duration>,
    /// Whether an attempt that ran out of time may simply be started again in the same run
    /// (default `true`). A step driving a tool whose interrupted run must be inspected first
    /// (`k0sctl apply`, `helm upgrade`) says `false`: its timeout fails the step, its journal
    /// is kept, and the next run settles it.
    pub retry_on_timeout: bool,
    /// Retries for transient errors.
    pub retry: RetryPolicy,
}

impl Default for StepPolicy {
    fn default() -> Self {
        StepPolicy {
            time_limit: None,
            retry_on_timeout: true,
            retry: RetryPolicy::default(),
        }
    }
}

impl From<RetryPolicy> for StepPolicy {
    fn from(retry: RetryPolicy) -> Self {
        StepPolicy {
            retry,
            ..StepPolicy::default()
        }
    }
}

impl StepPolicy {
    /// Limits each attempt to `limit`.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    /// Whether an attempt that ran out of time may start again in the same run.
    #[must_use]
    pub fn retry_on_timeout(mut self, retry: bool) -> Self {
        self.retry_on_timeout = retry;
        self
    }

    /// Retries transient errors with `retry`.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

/// Retries for [`ErrorKind::Transient`] errors: exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial_delay: Duration,
    /// Upper bound for any delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before attempt `attempt + 1` after `attempt` attempts failed (1-based):
    /// `initial · 2^(attempt-1)`, capped, with "equal jitter" (uniform in [d/2, d]) so many
    /// retrying clients do not synchronise. `hint` (e.g. Retry-After) is a lower bound.
    pub fn delay(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .initial_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = base / 2;
        let jitter = half.mul_f64(fastrand::f64());
        let d = half + jitter;
        match hint {
            Some(h) => d.max(h),
            None => d,
        }
    }
}

/// What a step's fingerprint may depend on: its direct dependencies' recorded outputs (a
/// dependency on a phase with items yields each item's outputs) and the recorded state.
#[derive(Debug, Clone, Copy)]
pub struct StepInputs<'a> {
    /// The step being fingerprinted.
    pub step: &'a StepId,
    /// Recorded outputs of the (resolved) dependencies.
    pub upstream: &'a BTreeMap<StepId, Outputs>,
    /// The recorded state.
    pub state: &'a DeploymentState,
}

impl StepInputs<'_> {
    /// The fingerprint of "all upstream outputs" (the default for steps that do not say).
    pub fn upstream_fingerprint(&self) -> Fingerprint {
        self.upstream
            .iter()
            .fold(Fingerprint::builder(), |b, (id, out)| {
                b.input(id.as_str(), out)
            })
            .finish()
    }
}

/// One unit of convergent work.
///
/// Required: [`id`](Step::id), [`observe`](Step::observe), [`apply`](Step::apply) and
/// [`teardown`](Step::teardown). The rest has defaults: no dependencies, a fingerprint of all
/// upstream outputs, no gates, [`Availability::Enabled`], the engine's [`StepPolicy`], and
/// any journal accepted.
///
/// # Expected flow
/// 1. The engine gathers a [`Snapshot`] through the observers and asks each step to
///    [`observe`](Step::observe) it (pure: it only interprets the snapshot).
/// 2. The planner decides from the record, the observation and the
///    [`fingerprint`](Step::fingerprint) whether the step runs.
/// 3. Before running, the engine checks the step's [`gates`](Step::gates).
/// 4. [`apply`](Step::apply) converges to done. It receives facts (the snapshot, its previous
///    record and journal), never the planner's label: it must do the right thing whether this
///    is a first run, a resume or a repair.
///
/// # Guarantees
/// - A step id runs at most once at a time.
/// - Journal entries written through [`StepContext::write_journal`] are persisted before the call
///   returns, so they survive a kill -9 right after.
///
/// # Assumptions
/// - `apply` is safe to repeat after a crash at any point: it reads reality (or its journal)
///   and converges, never blindly re-creates.
/// - `teardown` is idempotent and tolerant of parts already gone, and works even if `apply`
///   never ran or stopped halfway.
///
/// # Errors
/// `apply` classifies failures through [`StepError`]: transient ones are retried with backoff,
/// permanent ones fail the step, blocked ones block it, interrupted ones leave it in progress,
/// and [`StepError::needs_confirmation`] asks for the user's `-y` before anything destructive.
///
/// # Destructive work
/// `apply` never deletes, re-creates or restarts what it manages unless
/// [`StepContext::confirmed`] is true; otherwise it returns
/// [`StepError::needs_confirmation`] saying what it would do.
#[async_trait]
pub trait Step: Send + Sync {
    /// The step's id.
    fn id(&self) -> &StepId;

    /// Steps (or phases, meaning all their items) that must be done first.
    fn dependencies(&self) -> Vec<StepId> {
        Vec::new()
    }

    /// A digest of exactly the inputs this step consumes. Defaults to all upstream outputs.
    fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
        inputs.upstream_fingerprint()
    }

    /// Checks that must pass before it runs.
    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        Vec::new()
    }

    /// Whether the step runs at all: enabled (the default), disabled on purpose, or
    /// unavailable in this build.
    fn availability(&self) -> Availability {
        Availability::Enabled
    }

    /// Time limit, retry-on-timeout and retries of its attempts.
    fn policy(&self) -> StepPolicy {
        StepPolicy::default()
    }

    /// Validates a journal left by an interrupted run; `Err` plans the step as blocked (a
    /// corrupt journal is never guessed around).
    fn check_journal(&self, _journal: &Journal) -> Result<(), JournalError> {
        Ok(())
    }

    /// Interprets the snapshot. `record` is the step's previous record, if any.
    fn observe(&self, snapshot: &Snapshot, record: Option<&StepRecord>) -> Observation;

    /// Converges to done.
    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError>;

    /// The reverse of `apply` (used by reset): idempotent, tolerant of parts already gone, and
    /// correct after an `apply` that stopped halfway. There is no default: a step that has
    /// nothing to undo returns [`Teardown::Nothing`] with the reason, so `reset` never counts
    /// a forgotten teardown as done.
    async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError>;
}

macro_rules! forward_step {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Step + ?Sized> Step for $ty {
            fn id(&self) -> &StepId {
                (**self).id()
            }
            fn dependencies(&self) -> Vec<StepId> {
                (**self).dependencies()
            }
            fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
                (**self).fingerprint(inputs)
            }
            fn gates(&self) -> Vec<Arc<dyn Gate>> {
                (**self).gates()
            }
            fn availability(&self) -> Availability {
                (**self).availability()
            }
            fn policy(&self) -> StepPolicy {
                (**self).policy()
            }
            fn check_journal(&self, journal: &Journal) -> Result<(), JournalError> {
                (**self).check_journal(journal)
            }
            fn observe(&self, snapshot: &Snapshot, record: Option<&StepRecord>) -> Observation {
                (**self).observe(snapshot, record)
            }
            async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
                (**self).apply(ctx).await
            }
            async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError> {
                (**self).teardown(ctx).await
            }
        }
    };
}

forward_step!(Arc<T>);
forward_step!(Box<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        };
        for _ in 0..100 {
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(500) && d1 <= Duration::from_secs(1));
            let d3 = p.delay(3, None);
            assert!(d3 >= Duration::from_secs(2) && d3 <= Duration::from_secs(4));
            let d9 = p.delay(9, None);
            assert!(d9 >= Duration::from_secs(4) && d9 <= Duration::from_secs(8));
            assert!(p.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        }
    }
}
