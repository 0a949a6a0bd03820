//! A file-backed fake world: each step's "resource" is a file in a directory. Used by the
//! `fake-k0rdent` binary so lock races, kills and CLI output can be tested across processes
//! with the real engine, store and CLI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_cli::{CliError, Deployment, Mode, PipelineFactory, request::Request};
use k0rdent_core::{
    Deadline, DeploymentState, Evidence, Facts, FileStore, FnGate, Gate, GateVerdict, Observation,
    ObserveError, Observer, Outputs, Pipeline, RetryPolicy, Snapshot, Step, StepContext, StepError,
    StepId, StepOutcome, StepRecord, Teardown, WaitBudget,
};

/// The facts: which resource files exist.
#[derive(Debug, Clone, Default)]
pub struct WorldFacts(pub Vec<String>);

/// Lists the world directory in one call (after `delay`: a slow cloud API).
pub struct WorldObserver(pub PathBuf, pub Duration);

#[async_trait]
impl Observer for WorldObserver {
    fn name(&self) -> &str {
        "world"
    }

    async fn observe(&self, _state: &DeploymentState) -> Result<Facts, ObserveError> {
        tokio::time::sleep(self.1).await;
        if self.0.join("observer-fails").exists() {
            return Err(ObserveError::new("HTTP 403 AuthorizationFailed on list"));
        }
        let names = match std::fs::read_dir(&self.0) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ObserveError::new(format!("{}: {e}", self.0.display()))),
        };
        Ok(Facts::new(WorldFacts(names)))
    }
}

/// How the fake world misbehaves, for the interruption tests (`FAKE_*` variables).
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Each step takes this long (`FAKE_STEP_DELAY_MS`).
    pub step_delay: Duration,
    /// The observer takes this long (`FAKE_OBSERVE_DELAY_MS`).
    pub observe_delay: Duration,
    /// Steps never reach a safe point while they take their delay (`FAKE_IGNORE_CANCEL=1`).
    pub ignore_cancel: bool,
    /// `setup_network` waits for a gate that never passes, within a 10 min budget
    /// (`FAKE_GATE_WAIT=1`).
    pub gate_wait: bool,
    /// `setup_network` fails transiently and backs off for minutes (`FAKE_TRANSIENT=1`).
    pub transient: bool,
}

impl Knobs {
    /// From the environment.
    pub fn from_env() -> Self {
        let ms = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(Duration::ZERO, Duration::from_millis)
        };
        let on = |k: &str| std::env::var(k).is_ok_and(|v| v == "1");
        Knobs {
            step_delay: ms("FAKE_STEP_DELAY_MS"),
            observe_delay: ms("FAKE_OBSERVE_DELAY_MS"),
            ignore_cancel: on("FAKE_IGNORE_CANCEL"),
            gate_wait: on("FAKE_GATE_WAIT"),
            transient: on("FAKE_TRANSIENT"),
        }
    }
}

/// A step that sleeps (checking for cancellation unless told not to) and then creates its
/// file.
pub struct WorldStep {
    id: StepId,
    deps: Vec<StepId>,
    dir: PathBuf,
    knobs: Knobs,
}

fn file_name(id: &StepId) -> String {
    id.as_str().replace('/', "--")
}

#[async_trait]
impl Step for WorldStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        self.deps.clone()
    }

    fn observe(&self, snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        match snapshot.require::<WorldFacts>("world") {
            Ok(f) if f.0.contains(&file_name(&self.id)) => {
                Observation::done(Evidence::new().with("file", file_name(&self.id)))
            }
            Ok(_) => Observation::absent(format!("{} not found", file_name(&self.id))),
            Err(o) => o,
        }
    }

    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        if !(self.knobs.gate_wait && self.id.as_str() == "setup_network") {
            return Vec::new();
        }
        vec![Arc::new(
            FnGate::new("cloud_init_done", |_| async {
                GateVerdict::fail("cloud-init status: running")
            })
            .wait(WaitBudget {
                deadline: Deadline::After(Duration::from_secs(600)),
                interval: Duration::from_millis(500),
            }),
        )]
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_secs(120),
            max_delay: Duration::from_secs(600),
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        ctx.write_journal("started", std::process::id()).await?;
        if self.knobs.transient && self.id.as_str() == "setup_network" {
            return Err(StepError::transient("HTTP 503 from the fake cloud"));
        }
        let until = tokio::time::Instant::now() + self.knobs.step_delay;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if !self.knobs.ignore_cancel {
                ctx.checkpoint()?;
            }
        }
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(self.dir.join(file_name(&self.id)), b"x"))
            .map_err(|e| StepError::permanent(format!("{}: {e}", self.dir.display())))?;
        Ok(StepOutcome::done(
            Outputs::new().with("file", file_name(&self.id)),
            Evidence::new(),
        ))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        let _ = std::fs::remove_file(self.dir.join(file_name(&self.id)));
        Ok(Teardown::Done)
    }
}

/// A deployment-shaped pipeline over the world in `dir`, misbehaving as `knobs` say.
///
/// # Panics
/// Never for the fixed step names used here.
#[allow(clippy::expect_used)]
pub fn pipeline(dir: &Path, knobs: &Knobs) -> Pipeline {
    let shape: [(&str, &[&str]); 6] = [
        ("prepare_deployment", &[]),
        ("setup_network", &["prepare_deployment"]),
        ("create_vms/k0s-controller-1", &["setup_network"]),
        ("create_vms/k0s-worker-1", &["setup_network"]),
        ("setup_vpn", &["create_vms"]),
        ("connect_vpn", &["setup_vpn"]),
    ];
    let mut b = Pipeline::builder().observer(WorldObserver(dir.to_path_buf(), knobs.observe_delay));
    for (id, deps) in shape {
        b = b.step(WorldStep {
            id: StepId::parse(id).expect("fixed step id"),
            deps: deps
                .iter()
                .map(|d| StepId::parse(d).expect("fixed step id"))
                .collect(),
            dir: dir.to_path_buf(),
            knobs: knobs.clone(),
        });
    }
    b.build().expect("the fixed pipeline is valid")
}

/// Builds [`pipeline`] from `FAKE_WORLD_DIR` (default `<state-dir>/world`) and the
/// [`Knobs`] variables.
pub struct WorldFactory;

#[async_trait]
impl PipelineFactory for WorldFactory {
    async fn deployment(
        &self,
        request: &Request,
        _store: &Arc<FileStore>,
        _mode: Mode,
    ) -> Result<Deployment, CliError> {
        let dir = std::env::var_os("FAKE_WORLD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| request.state_dir.join("world"));
        Ok(Deployment {
            pipeline: pipeline(&dir, &Knobs::from_env()),
            concurrency: 4,
            notes: Vec::new(),
            time_limits: Default::default(),
        })
    }
}

/// The `fake-k0rdent` binary (`bin`) over `state`, with steps of `delay_ms`, stdout and stderr
/// piped, `RUST_LOG` unset.
pub fn command(bin: &Path, state: &Path, delay_ms: u64) -> Command {
    let mut c = Command::new(bin);
    c.arg("--state-dir")
        .arg(state)
        .env("FAKE_WORLD_DIR", state.join("world"))
        .env("FAKE_STEP_DELAY_MS", delay_ms.to_string())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}
