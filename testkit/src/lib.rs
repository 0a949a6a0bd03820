//! Test doubles for `k0rdent-core`'s engine: a fake world with a bulk observer, configurable
//! fake steps and helpers. A crate of its own so that the engine crate holds only product
//! code; its integration tests and other crates' tests depend on this one.

pub mod azurite;
pub mod slow_proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use k0rdent_core::StepContext;
use k0rdent_core::fingerprint::Fingerprint;
use k0rdent_core::gate::Gate;
use k0rdent_core::id::StepId;
use k0rdent_core::observation::{Evidence, Facts, Observation, ObserveError, Observer, Snapshot};
use k0rdent_core::state::{DeploymentState, Outputs, StepRecord};
use k0rdent_core::step::{
    Availability, JournalError, RetryPolicy, Step, StepError, StepInputs, StepOutcome, StepPolicy,
    Teardown,
};

/// Parses a step id; panics on a bad literal (test code only).
///
/// # Panics
/// If `s` is not a valid step id.
#[allow(clippy::expect_used)]
pub fn sid(s: &str) -> StepId {
    StepId::parse(s).expect("valid step id literal")
}

/// What exists in the fake world.
#[derive(Default)]
pub struct FakeWorld {
    present: Mutex<BTreeMap<StepId, String>>,
    unknown: Mutex<BTreeSet<StepId>>,
    partial: Mutex<BTreeMap<StepId, String>>,
    observer_error: Mutex<Option<String>>,
    observer_delay: Mutex<Duration>,
    log: Mutex<Vec<String>>,
    observations: AtomicU32,
}

/// The fake observer's facts: a copy of the world at observation time.
#[derive(Debug, Clone, Default)]
pub struct FakeFacts {
    /// Present resources and their "version".
    pub present: BTreeMap<StepId, String>,
    /// Resources whose state is unknown.
    pub unknown: BTreeSet<StepId>,
    /// Partially present resources and the detail they are observed with.
    pub partial: BTreeMap<StepId, String>,
}

impl FakeWorld {
    /// An empty world, in an `Arc` to share with [`FakeObserver`] and every [`FakeStep`].
    pub fn new() -> Arc<Self> {
        Arc::new(FakeWorld::default())
    }

    /// Makes a resource exist.
    pub fn create(&self, id: &StepId, version: &str) {
        if let Ok(mut p) = self.present.lock() {
            p.insert(id.clone(), version.to_owned());
        }
    }

    /// Deletes a resource behind the engine's back.
    pub fn delete(&self, id: &StepId) {
        if let Ok(mut p) = self.present.lock() {
            p.remove(id);
        }
    }

    /// Whether a resource is present; `set_unknown` and `set_partial` do not change it.
    pub fn exists(&self, id: &StepId) -> bool {
        self.present
            .lock()
            .map(|p| p.contains_key(id))
            .unwrap_or(false)
    }

    /// Makes a resource's observation unknown (or known again).
    pub fn set_unknown(&self, id: &StepId, unknown: bool) {
        if let Ok(mut u) = self.unknown.lock() {
            if unknown {
                u.insert(id.clone());
            } else {
                u.remove(id);
            }
        }
    }

    /// Marks a resource partial (or whole again with `None`).
    pub fn set_partial(&self, id: &StepId, detail: Option<&str>) {
        if let Ok(mut p) = self.partial.lock() {
            match detail {
                Some(d) => {
                    p.insert(id.clone(), d.to_owned());
                }
                None => {
                    p.remove(id);
                }
            }
        }
    }

    /// Makes the whole observer fail (or work again with `None`).
    pub fn fail_observer(&self, error: Option<&str>) {
        if let Ok(mut e) = self.observer_error.lock() {
            *e = error.map(str::to_owned);
        }
    }

    /// Makes every observation take this long (a slow cloud API).
    pub fn slow_observer(&self, d: Duration) {
        if let Ok(mut o) = self.observer_delay.lock() {
            *o = d;
        }
    }

    /// What happened, in order (`apply <id>`, `teardown <id>`, `replace <id>`).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Number of observer calls.
    pub fn observations(&self) -> u32 {
        self.observations.load(Ordering::SeqCst)
    }

    fn record(&self, entry: String) {
        if let Ok(mut l) = self.log.lock() {
            l.push(entry);
        }
    }
}

/// The fake world's bulk observer: one call copies the whole world.
pub struct FakeObserver(pub Arc<FakeWorld>);

#[async_trait]
impl Observer for FakeObserver {
    fn name(&self) -> &str {
        "fake"
    }

    async fn observe(&self, _state: &DeploymentState) -> Result<Facts, ObserveError> {
        self.0.observations.fetch_add(1, Ordering::SeqCst);
        let delay = self.0.observer_delay.lock().map(|d| *d).unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(e) = self.0.observer_error.lock().ok().and_then(|e| e.clone()) {
            return Err(ObserveError::new(e));
        }
        Ok(Facts::new(FakeFacts {
            present: self.0.present.lock().map(|p| p.clone()).unwrap_or_default(),
            unknown: self.0.unknown.lock().map(|u| u.clone()).unwrap_or_default(),
            partial: self.0.partial.lock().map(|p| p.clone()).unwrap_or_default(),
        }))
    }
}

/// A configurable step acting on a [`FakeWorld`].
pub struct FakeStep {
    id: StepId,
    deps: Vec<StepId>,
    world: Arc<FakeWorld>,
    input: String,
    immutable: String,
    outputs: Outputs,
    transient_failures: AtomicU32,
    permanent_failure: Option<String>,
    pending_polls: AtomicU32,
    delay: Duration,
    gates: Vec<Arc<dyn Gate>>,
    disabled: Option<String>,
    unavailable: Option<String>,
    observable: bool,
    journal_required: Option<String>,
    applies: AtomicU32,
    retry: RetryPolicy,
    ignore_cancel: bool,
    destructive: Option<String>,
    timeout: Option<Duration>,
    retry_on_timeout: bool,
    self_input: bool,
}

impl FakeStep {
    /// A step that creates its resource and outputs `{"id": <id>}`.
    pub fn new(id: &str, world: &Arc<FakeWorld>) -> Self {
        FakeStep {
            id: sid(id),
            deps: Vec::new(),
            world: world.clone(),
            input: String::new(),
            immutable: String::new(),
            outputs: Outputs::new().with("id", id),
            transient_failures: AtomicU32::new(0),
            permanent_failure: None,
            pending_polls: AtomicU32::new(0),
            delay: Duration::ZERO,
            gates: Vec::new(),
            disabled: None,
            unavailable: None,
            observable: true,
            journal_required: None,
            applies: AtomicU32::new(0),
            retry: RetryPolicy {
                max_attempts: 3,
                initial_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            },
            ignore_cancel: false,
            destructive: None,
            timeout: None,
            retry_on_timeout: true,
            self_input: false,
        }
    }

    /// Finds, once its resource exists, that converging replaces it (`what`): asks for
    /// confirmation unless confirmed, then logs `replace <id>`.
    #[must_use]
    pub fn destructive(mut self, what: &str) -> Self {
        self.destructive = Some(what.to_owned());
        self
    }

    /// A time limit per attempt; `retry` says whether a timed-out attempt may be retried.
    #[must_use]
    pub fn time_limit(mut self, d: Duration, retry: bool) -> Self {
        self.timeout = Some(d);
        self.retry_on_timeout = retry;
        self
    }

    /// Its fingerprint reads a setting (`<id>.written`) that its own `apply` writes.
    #[must_use]
    pub fn reads_what_it_writes(mut self) -> Self {
        self.self_input = true;
        self
    }

    /// Depends on these steps (or phases).
    #[must_use]
    pub fn after(mut self, deps: &[&str]) -> Self {
        self.deps = deps.iter().map(|d| sid(d)).collect();
        self
    }

    /// A config input (changes plan `rerun`).
    #[must_use]
    pub fn input(mut self, v: &str) -> Self {
        self.input = v.to_owned();
        self
    }

    /// An immutable input (changes plan `replace`).
    #[must_use]
    pub fn immutable(mut self, v: &str) -> Self {
        self.immutable = v.to_owned();
        self
    }

    /// Outputs to produce instead of `{"id": <id>}`.
    #[must_use]
    pub fn outputs(mut self, o: Outputs) -> Self {
        self.outputs = o;
        self
    }

    /// Fails transiently this many times first.
    #[must_use]
    pub fn transient_failures(self, n: u32) -> Self {
        self.transient_failures.store(n, Ordering::SeqCst);
        self
    }

    /// Every `apply` fails permanently with `msg`, after logging and journaling the attempt.
    #[must_use]
    pub fn fails(mut self, msg: &str) -> Self {
        self.permanent_failure = Some(msg.to_owned());
        self
    }

    /// Returns `Pending` this many times first.
    #[must_use]
    pub fn pending_polls(self, n: u32) -> Self {
        self.pending_polls.store(n, Ordering::SeqCst);
        self
    }

    /// Takes this long (checking for cancellation every 10 ms unless told not to).
    #[must_use]
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Never reaches a safe point while delaying.
    #[must_use]
    pub fn ignore_cancel(mut self) -> Self {
        self.ignore_cancel = true;
        self
    }

    /// Adds a gate the engine checks before `apply`.
    #[must_use]
    pub fn gate(mut self, g: Arc<dyn Gate>) -> Self {
        self.gates.push(g);
        self
    }

    /// Reports [`Availability::Disabled`] with `reason`; wins over [`FakeStep::unavailable`].
    #[must_use]
    pub fn disabled(mut self, reason: &str) -> Self {
        self.disabled = Some(reason.to_owned());
        self
    }

    /// Reports [`Availability::Unavailable`] with `reason`.
    #[must_use]
    pub fn unavailable(mut self, reason: &str) -> Self {
        self.unavailable = Some(reason.to_owned());
        self
    }

    /// Observes [`Observation::Unobservable`] whatever the world holds.
    #[must_use]
    pub fn unobservable(mut self) -> Self {
        self.observable = false;
        self
    }

    /// Rejects journals that lack this key.
    #[must_use]
    pub fn journal_requires(mut self, key: &str) -> Self {
        self.journal_required = Some(key.to_owned());
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// How many times `apply` ran.
    pub fn applies(&self) -> u32 {
        self.applies.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Step for FakeStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        self.deps.clone()
    }

    fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
        let b = inputs
            .upstream
            .iter()
            .fold(Fingerprint::builder(), |b, (id, out)| {
                b.input(id.as_str(), out)
            })
            .input("input", &self.input)
            .immutable("immutable", &self.immutable);
        let b = if self.self_input {
            b.input(
                "written",
                &inputs.state.settings.get(&format!("{}.written", self.id)),
            )
        } else {
            b
        };
        b.finish()
    }

    fn policy(&self) -> StepPolicy {
        let p = StepPolicy::from(self.retry).retry_on_timeout(self.retry_on_timeout);
        match self.timeout {
            Some(limit) => p.time_limit(limit),
            None => p,
        }
    }

    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        self.gates.clone()
    }

    fn availability(&self) -> Availability {
        // Disabled wins: an optional step that is off is never reported unavailable.
        match (&self.disabled, &self.unavailable) {
            (Some(reason), _) => Availability::Disabled(reason.clone()),
            (None, Some(reason)) => Availability::Unavailable(reason.clone()),
            (None, None) => Availability::Enabled,
        }
    }

    fn check_journal(&self, journal: &k0rdent_core::state::Journal) -> Result<(), JournalError> {
        match &self.journal_required {
            Some(k) if journal.latest(k).is_none() => {
                Err(JournalError::new(format!("no `{k}` entry")))
            }
            _ => Ok(()),
        }
    }

    fn observe(&self, snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        if !self.observable {
            return Observation::Unobservable;
        }
        let facts = match snapshot.require::<FakeFacts>("fake") {
            Ok(f) => f,
            Err(o) => return o,
        };
        if facts.unknown.contains(&self.id) {
            return Observation::unknown("fake: not observable right now");
        }
        if let Some(d) = facts.partial.get(&self.id) {
            return Observation::partial(d.clone(), Evidence::new());
        }
        match facts.present.get(&self.id) {
            Some(v) => Observation::done(Evidence::new().with("version", v)),
            None => Observation::absent(format!("{} not found", self.id)),
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        ctx.checkpoint()?;
        let n = self.applies.fetch_add(1, Ordering::SeqCst) + 1;
        self.world.record(format!("apply {}", self.id));
        if ctx.journal().latest("started").is_none() {
            ctx.write_journal("started", n).await?;
        }
        if let Some(what) = &self.destructive
            && self.world.exists(&self.id)
        {
            if !ctx.confirmed() {
                return Err(StepError::needs_confirmation(format!(
                    "{}: {what}",
                    self.id
                )));
            }
            self.world.record(format!("replace {}", self.id));
        }
        if self.self_input {
            let key = format!("{}.written", self.id);
            ctx.update_state(move |s| {
                s.settings.insert(key, serde_json::Value::from(n));
            })
            .await?;
        }
        if let Some(msg) = &self.permanent_failure {
            return Err(StepError::permanent(msg.clone()).with_remedy("fix the fake"));
        }
        if self
            .transient_failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
        {
            return Err(StepError::transient("fake transient failure"));
        }
        if !self.delay.is_zero() {
            let until = tokio::time::Instant::now() + self.delay;
            if self.ignore_cancel {
                tokio::time::sleep_until(until).await;
            } else {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => {}
                    () = ctx.cancelled() => {}
                }
                ctx.checkpoint()?;
            }
        }
        if self
            .pending_polls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
        {
            return Ok(StepOutcome::pending(
                Duration::from_millis(5),
                "fake operation",
            ));
        }
        self.world.create(&self.id, &self.input);
        Ok(StepOutcome::done(
            self.outputs.clone(),
            Evidence::new().with("version", &self.input),
        ))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        self.world.record(format!("teardown {}", self.id));
        self.world.delete(&self.id);
        Ok(Teardown::Done)
    }
}

/// A deployment-shaped pipeline over `world` (prepare → network → two VMs → setup_vpn →
/// connect_vpn → install_k0s); `tweak` adjusts individual steps.
///
/// # Panics
/// Never for the fixed shape used here.
#[allow(clippy::expect_used)]
pub fn deployment_pipeline(
    world: &Arc<FakeWorld>,
    tweak: impl Fn(FakeStep) -> FakeStep,
) -> k0rdent_core::Pipeline {
    let steps = vec![
        FakeStep::new("prepare_deployment", world),
        FakeStep::new("setup_network", world).after(&["prepare_deployment"]),
        FakeStep::new("create_vms/vm-1", world).after(&["setup_network"]),
        FakeStep::new("create_vms/vm-2", world).after(&["setup_network"]),
        FakeStep::new("setup_vpn", world).after(&["create_vms"]),
        FakeStep::new("connect_vpn", world).after(&["setup_vpn"]),
        FakeStep::new("install_k0s", world).after(&["connect_vpn"]),
    ];
    steps
        .into_iter()
        .map(&tweak)
        .fold(k0rdent_core::Pipeline::builder(), |b, s| b.step(s))
        .observer(FakeObserver(world.clone()))
        .build()
        .expect("a valid fixed pipeline")
}

/// The ids of the steps whose `apply` ran, in order.
pub fn applies(world: &FakeWorld) -> Vec<String> {
    world
        .log()
        .into_iter()
        .filter_map(|l| l.strip_prefix("apply ").map(str::to_owned))
        .collect()
}
