//! The engine: lock → load → observe → plan → execute → save after every transition.

mod deploy;
mod facts;
mod finish;
mod gates;
mod preview;
mod refresh;
mod reset;
mod scheduler;
mod task;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cancel::Cancellation;
use crate::event::{EventSink, NullSink};
use crate::id::{RunId, StepId};
use crate::observation::Observation;
use crate::pipeline::Pipeline;
use crate::plan::Plan;
use crate::remedy::Remedy;
use crate::state::{DeploymentState, RunOutcome};
use crate::store::{EventLog, KeyStore, NoEventLog, NoKeyStore, StateStore, StoreError, StoreLock};

pub use refresh::RefreshReport;
pub use reset::ResetReport;

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Concurrency must be at least 1.
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    /// `until` names no step or phase of the pipeline.
    #[error("unknown phase {until} for --until (the phases: {})", phases.join(", "))]
    UnknownUntil {
        /// What was asked for.
        until: StepId,
        /// The pipeline's phases, in order.
        phases: Vec<String>,
    },
}

/// Why a run could not proceed at all (step failures are reported in [`RunReport`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The state store failed (including: locked by another run).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A reset was interrupted; `deploy` refuses until it is finished.
    #[error(
        "a reset started at {since} (run {run_id}) did not finish; the deployment is partly torn down"
    )]
    ResetInProgress {
        /// When the reset started, as recorded in the state.
        since: String,
        /// The run that started the reset.
        run_id: RunId,
    },
}

impl Remedy for EngineError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            EngineError::Store(e) => e.remedy(),
            EngineError::ResetInProgress { .. } => {
                Some("run `k0rdent reset` to finish it; deploy starts fresh afterwards".into())
            }
        }
    }
}

impl EngineError {
    /// Whether another live run holds the lock.
    pub fn is_locked(&self) -> bool {
        matches!(self, EngineError::Store(StoreError::Locked { .. }))
    }
}

/// How one step ended in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StepResult {
    /// Converged.
    Completed {
        /// From its first attempt in this run to completion, retries and waits included.
        duration_ms: u64,
        /// Whether its outputs differ from the recorded ones (downstream steps may rerun).
        outputs_changed: bool,
    },
    /// Failed after its retries.
    Failed {
        /// Its error (the last attempt's), followed by a failed state save if there was one.
        error: String,
        /// The step's (or the failed save's) [`Remedy`].
        #[serde(skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
    /// A gate or precondition blocked it.
    Blocked {
        /// The gate's or the step's message.
        reason: String,
        /// The gate's or the step's [`Remedy`].
        #[serde(skip_serializing_if = "Option::is_none")]
        remedy: Option<String>,
    },
    /// Stopped at a safe point or abandoned; resumes next run.
    Interrupted {
        /// What stopped it (Ctrl-C, a watched gate, its time limit).
        reason: String,
    },
}

/// What a step did in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs)]
pub struct StepReport {
    pub step: StepId,
    #[serde(flatten)]
    pub result: StepResult,
}

/// The result of `deploy`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    #[allow(missing_docs)]
    pub run_id: RunId,
    #[allow(missing_docs)]
    pub outcome: RunOutcome,
    /// The plan before anything ran.
    pub initial_plan: Plan,
    /// The plan after the run (what is left).
    pub final_plan: Plan,
    /// The steps that executed, in the order they finished.
    pub steps: Vec<StepReport>,
}

/// The result of `plan`/`status`: decisions plus what was recorded and observed.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    #[allow(missing_docs)]
    pub plan: Plan,
    /// Per step, in pipeline order: how it interpreted the snapshot.
    pub observations: Vec<(StepId, Observation)>,
    /// Per observer that failed or timed out: its name and the error (its facts are unknown).
    pub observer_failures: Vec<(String, String)>,
    /// The recorded state (`None` if there is none yet).
    #[serde(skip)]
    pub state: Option<DeploymentState>,
}

impl PlanReport {
    /// Whether completed steps were observed drifted.
    pub fn has_drift(&self) -> bool {
        self.plan
            .entries
            .iter()
            .any(|e| matches!(e.reason, crate::plan::Reason::Drift { .. }))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) concurrency: usize,
    pub(crate) until: Option<StepId>,
    pub(crate) confirm_replace: bool,
    pub(crate) stop_grace: Duration,
    pub(crate) observe_timeout: Duration,
    pub(crate) step_timeout: Duration,
    /// Per phase (and its items): the time limit of an attempt for steps that set none.
    pub(crate) phase_limits: std::collections::BTreeMap<String, Duration>,
    /// [`Engine::plan`] plans against this state instead of the stored one.
    pub(crate) planning_state: Option<crate::state::DeploymentState>,
}

impl Options {
    /// The limit for a step that sets none: its phase's, else the engine default.
    pub(crate) fn default_limit(&self, step: &StepId) -> Duration {
        self.phase_limits
            .get(step.phase())
            .copied()
            .unwrap_or(self.step_timeout)
    }
}

/// How long a step that was asked to stop gets to return before it is dropped, unless it
/// declared a longer grace for an external tool it runs.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);

/// The time limit of a step attempt when neither the step nor the caller sets one.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Runs a pipeline against a store. Build with [`Engine::builder`] (one store that keeps the
/// state, the keys and the event log) or [`Engine::with_state_store`] (each from its own
/// backend).
pub struct Engine {
    pipeline: Arc<Pipeline>,
    store: Arc<dyn StateStore>,
    keys: Arc<dyn KeyStore>,
    events: Arc<dyn EventLog>,
    sink: Arc<dyn EventSink>,
    cancel: Cancellation,
    options: Options,
    held: std::sync::Mutex<Option<Box<dyn StoreLock>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("pipeline", &self.pipeline)
            .field("store", &self.store.location())
            .field("options", &self.options)
            .finish()
    }
}

impl Engine {
    /// Starts building an engine for `pipeline` on `store`, which keeps the state, the private
    /// keys and the event log (as [`FileStore`](crate::store::FileStore) and
    /// [`MemoryStore`](crate::store::MemoryStore) do). [`EngineBuilder::keys`] and
    /// [`EngineBuilder::event_log`] can still put either elsewhere.
    pub fn builder<S>(pipeline: Pipeline, store: Arc<S>) -> EngineBuilder
    where
        S: StateStore + KeyStore + EventLog + 'static,
    {
        Engine::with_state_store(pipeline, store.clone())
            .keys(store.clone())
            .event_log(store)
    }

    /// Starts building an engine for `pipeline` whose state lives in `state` alone. Give it a
    /// key store with [`EngineBuilder::keys`] (until then a step asking for a key fails with
    /// [`StoreError::NoKeyStore`]) and an event log with [`EngineBuilder::event_log`] (until
    /// then events reach only the [sink](EngineBuilder::sink)).
    pub fn with_state_store(pipeline: Pipeline, state: Arc<dyn StateStore>) -> EngineBuilder {
        EngineBuilder {
            pipeline,
            store: state,
            keys: Arc::new(NoKeyStore),
            events: Arc::new(NoEventLog),
            sink: Arc::new(NullSink),
            cancel: Cancellation::new(),
            held: None,
            options: Options {
                concurrency: 4,
                until: None,
                confirm_replace: false,
                stop_grace: DEFAULT_STOP_GRACE,
                observe_timeout: Duration::from_secs(60),
                step_timeout: DEFAULT_STEP_TIMEOUT,
                phase_limits: std::collections::BTreeMap::new(),
                planning_state: None,
            },
        }
    }

    /// The run's cancellation: cancel it on the first Ctrl-C.
    pub fn cancellation(&self) -> &Cancellation {
        &self.cancel
    }

    #[allow(missing_docs)]
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    #[allow(missing_docs)]
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The lock handed over with [`EngineBuilder::holding_lock`] (once), or a new one.
    async fn take_lock(
        &self,
        holder: &crate::store::LockHolder,
    ) -> Result<Box<dyn StoreLock>, StoreError> {
        let held = self.held.lock().ok().and_then(|mut h| h.take());
        match held {
            Some(lock) => {
                lock.check()?;
                Ok(lock)
            }
            None => self.store.lock(holder).await,
        }
    }
}

/// Builds an [`Engine`].
#[must_use]
pub struct EngineBuilder {
    pipeline: Pipeline,
    store: Arc<dyn StateStore>,
    keys: Arc<dyn KeyStore>,
    events: Arc<dyn EventLog>,
    sink: Arc<dyn EventSink>,
    cancel: Cancellation,
    options: Options,
    held: Option<Box<dyn StoreLock>>,
}

impl EngineBuilder {
    /// Where steps keep private keys ([`StepContext::keys`](crate::StepContext::keys)); a
    /// successful reset removes them all.
    pub fn keys(mut self, keys: Arc<dyn KeyStore>) -> Self {
        self.keys = keys;
        self
    }

    /// Where every run's events are persisted (`k0rdent state history`).
    pub fn event_log(mut self, log: Arc<dyn EventLog>) -> Self {
        self.events = log;
        self
    }

    /// Where events go as they happen (the event log gets them too).
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sink = sink;
        self
    }

    /// Steps run at once at most (default 4).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.options.concurrency = n;
        self
    }

    /// Stop after this phase (or step): only it and what it depends on run.
    pub fn until(mut self, step: Option<StepId>) -> Self {
        self.options.until = step;
        self
    }

    /// Allow destructive and disruptive work (`-y`): `replace` decisions, changes that
    /// restart what a step manages, and such work a step discovers while it runs. Without it
    /// they block (exit 3), and nothing is deleted, re-created or restarted.
    ///
    /// ## Warning
    /// Replacing deletes and re-creates resources (e.g. a VM and its disk).
    pub fn confirm_replace(mut self, yes: bool) -> Self {
        self.options.confirm_replace = yes;
        self
    }

    /// Makes [`Engine::plan`] plan against `state` instead of the stored state: a preview of
    /// what a run would record before its steps (local facts a deploy prepares first), so a
    /// plan shows the work they cause. Runs always use the stored state.
    pub fn plan_against(mut self, state: crate::state::DeploymentState) -> Self {
        self.options.planning_state = Some(state);
        self
    }

    /// How long a step that was asked to stop (first Ctrl-C, a failed watched gate, its time
    /// limit) gets to reach a safe point before it is dropped (default 2 s); a step running
    /// an external tool may declare a longer grace for it. Dropped steps stay in progress and
    /// resume next run.
    pub fn stop_grace(mut self, d: Duration) -> Self {
        self.options.stop_grace = d;
        self
    }

    /// Time limit per observer (default 60 s); a timeout makes its facts unknown.
    pub fn observe_timeout(mut self, d: Duration) -> Self {
        self.options.observe_timeout = d;
        self
    }

    /// Time limit per step attempt for steps that do not set one (default 30 min).
    pub fn step_timeout(mut self, d: Duration) -> Self {
        self.options.step_timeout = d;
        self
    }

    /// Time limit per attempt for the steps of `phase` (the phase step or its items) that do
    /// not set one themselves, e.g. from the configuration's `timeouts.*` keys.
    pub fn phase_time_limit(mut self, phase: &str, d: Duration) -> Self {
        self.options.phase_limits.insert(phase.to_owned(), d);
        self
    }

    /// The first run (deploy, reset or refresh) uses this already-held lock instead of taking
    /// one, so a caller can prepare the state under the same lock before the run starts.
    pub fn holding_lock(mut self, lock: Box<dyn StoreLock>) -> Self {
        self.held = Some(lock);
        self
    }

    /// Use this cancellation (e.g. wired to signal handlers before the engine exists).
    pub fn cancellation(mut self, c: Cancellation) -> Self {
        self.cancel = c;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError`] for zero concurrency or an unknown `until`.
    pub fn build(self) -> Result<Engine, ConfigError> {
        if self.options.concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency);
        }
        if let Some(u) = &self.options.until
            && self.pipeline.graph().closure(u).is_none()
        {
            let mut phases: Vec<String> = Vec::new();
            for step in self.pipeline.steps() {
                let phase = step.id().phase().to_owned();
                if !phases.contains(&phase) {
                    phases.push(phase);
                }
            }
            return Err(ConfigError::UnknownUntil {
                until: u.clone(),
                phases,
            });
        }
        Ok(Engine {
            pipeline: Arc::new(self.pipeline),
            store: self.store,
            keys: self.keys,
            events: self.events,
            sink: self.sink,
            cancel: self.cancel,
            options: self.options,
            held: std::sync::Mutex::new(self.held),
        })
    }
}
