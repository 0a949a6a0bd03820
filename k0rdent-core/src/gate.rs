//! Gates: named checks with a timeout that guard steps and phase boundaries.
//!
//! A gate returns [`GateVerdict::Pass`] with evidence or [`GateVerdict::Fail`] with a reason
//! and a remedy. The engine runs a step's gates before it starts (a failure blocks the step and
//! everything behind it), polls gates that have a [`WaitBudget`] until they pass or the budget
//! runs out, and re-checks gates that have a watch interval while the step runs (a failure
//! cancels the step at its next safe point).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::StepId;
use crate::remedy::Remedy;
use crate::state::DeploymentState;

/// The result of one gate check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum GateVerdict {
    /// The condition holds.
    Pass {
        /// What shows it.
        evidence: String,
    },
    /// The condition does not hold.
    Fail {
        /// Why, in one line.
        reason: String,
        /// What the user can do about it (its [`Remedy`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
}

impl GateVerdict {
    /// A pass.
    pub fn pass(evidence: impl Into<String>) -> Self {
        GateVerdict::Pass {
            evidence: evidence.into(),
        }
    }

    /// A failure without a remedy.
    pub fn fail(reason: impl Into<String>) -> Self {
        GateVerdict::Fail {
            reason: reason.into(),
            remedy: None,
        }
    }

    /// A failure with a remedy.
    pub fn fail_with(reason: impl Into<String>, remedy: impl Into<String>) -> Self {
        GateVerdict::Fail {
            reason: reason.into(),
            remedy: Some(remedy.into()),
        }
    }

    /// A failure that is `error`: its message is the reason, its [`Remedy`] the remedy.
    pub fn from_error(error: &(impl fmt::Display + Remedy + ?Sized)) -> Self {
        GateVerdict::Fail {
            reason: error.to_string(),
            remedy: error.remedy().map(Cow::into_owned),
        }
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, GateVerdict::Pass { .. })
    }
}

/// A recorded gate failure, as the planner consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateFailure {
    /// The failed gate's [`name`](Gate::name).
    pub gate: String,
    /// Why it failed.
    pub reason: String,
    /// The gate's [`Remedy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<String>,
}

impl fmt::Display for GateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "gate {}: {}", self.gate, self.reason)
    }
}

/// When a gate's wait budget runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// This long after the engine starts waiting.
    After(Duration),
    /// At a fixed time (e.g. VM creation time + 15 minutes for cloud-init).
    At(DateTime<Utc>),
}

/// Poll a gate until it passes or the deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBudget {
    /// When to give up.
    pub deadline: Deadline,
    /// Pause between checks.
    pub interval: Duration,
}

/// What a gate check can see.
#[derive(Debug, Clone)]
pub struct GateContext {
    /// The step the gate guards.
    pub step: StepId,
    /// The recorded state as of the check.
    pub state: Arc<DeploymentState>,
    /// Whether the step is running (a watch re-check) rather than about to start.
    pub watching: bool,
}

/// A named check with a timeout.
///
/// Only [`Gate::name`] and [`Gate::check`] are required; the timeout defaults to 10 s, and
/// there is no wait budget or watch unless the gate asks for one. Checks must be read-only and
/// must return within their timeout (the engine enforces it and reports a timeout as a
/// failure).
#[async_trait]
pub trait Gate: Send + Sync {
    /// Short snake_case name (`vpn_up`, `vms_running`, `cloud_init_done`).
    fn name(&self) -> &str;

    /// Per-check timeout.
    fn timeout(&self) -> Duration {
        Duration::from_secs(10)
    }

    /// Poll until pass instead of failing at once. `state` lets the deadline depend on
    /// recorded facts (e.g. a VM's creation time).
    fn wait(&self, _state: &DeploymentState) -> Option<WaitBudget> {
        None
    }

    /// Re-check every this often while the guarded step runs.
    fn watch_interval(&self) -> Option<Duration> {
        None
    }

    /// Whether the check depends only on the inputs (the configuration against the cloud),
    /// not on what upstream steps make: `plan` then checks it for every step that would run,
    /// even one that waits for an upstream step (an unknown VM size shows before the first
    /// step has run). Default `false`.
    fn preflight(&self) -> bool {
        false
    }

    /// Runs the check.
    async fn check(&self, ctx: &GateContext) -> GateVerdict;
}

#[async_trait]
impl<T: Gate + ?Sized> Gate for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn preflight(&self) -> bool {
        (**self).preflight()
    }
    fn timeout(&self) -> Duration {
        (**self).timeout()
    }
    fn wait(&self, state: &DeploymentState) -> Option<WaitBudget> {
        (**self).wait(state)
    }
    fn watch_interval(&self) -> Option<Duration> {
        (**self).watch_interval()
    }
    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        (**self).check(ctx).await
    }
}

#[async_trait]
impl<T: Gate + ?Sized> Gate for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn preflight(&self) -> bool {
        (**self).preflight()
    }
    fn timeout(&self) -> Duration {
        (**self).timeout()
    }
    fn wait(&self, state: &DeploymentState) -> Option<WaitBudget> {
        (**self).wait(state)
    }
    fn watch_interval(&self) -> Option<Duration> {
        (**self).watch_interval()
    }
    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        (**self).check(ctx).await
    }
}

/// A gate from a closure, for tests and simple checks.
///
/// ```
/// use k0rdent_core::gate::{FnGate, GateVerdict};
/// let gate = FnGate::new("always", |_ctx| async { GateVerdict::pass("ok") });
/// # let _ = gate;
/// ```
pub struct FnGate<F> {
    name: String,
    timeout: Duration,
    wait: Option<WaitBudget>,
    watch: Option<Duration>,
    f: F,
}

impl<F, Fut> FnGate<F>
where
    F: Fn(GateContext) -> Fut + Send + Sync,
    Fut: Future<Output = GateVerdict> + Send,
{
    /// A gate named `name` running `f`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnGate {
            name: name.into(),
            timeout: Duration::from_secs(10),
            wait: None,
            watch: None,
            f,
        }
    }

    /// Sets the per-check timeout.
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets a wait budget.
    #[must_use]
    pub fn wait(mut self, budget: WaitBudget) -> Self {
        self.wait = Some(budget);
        self
    }

    /// Re-checks while the step runs.
    #[must_use]
    pub fn watch(mut self, every: Duration) -> Self {
        self.watch = Some(every);
        self
    }
}

#[async_trait]
impl<F, Fut> Gate for FnGate<F>
where
    F: Fn(GateContext) -> Fut + Send + Sync,
    Fut: Future<Output = GateVerdict> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn wait(&self, _state: &DeploymentState) -> Option<WaitBudget> {
        self.wait
    }
    fn watch_interval(&self) -> Option<Duration> {
        self.watch
    }
    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        (self.f)(ctx.clone()).await
    }
}
