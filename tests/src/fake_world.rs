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
    DeploymentState, Evidence, Facts, FileStore, Observation, ObserveError, Observer, Outputs,
    Pipeline, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
};

/// The facts: which resource files exist.
#[derive(Debug, Clone, Default)]
pub struct WorldFacts(pub Vec<String>);

/// Lists the world directory in one call.
pub struct WorldObserver(pub PathBuf);

#[async_trait]
impl Observer for WorldObserver {
    fn name(&self) -> &str {
        "world"
    }

    async fn observe(&self, _state: &DeploymentState) -> Result<Facts, ObserveError> {
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

/// A step that sleeps (checking for cancellation) and then creates its file.
pub struct WorldStep {
    id: StepId,
    deps: Vec<StepId>,
    dir: PathBuf,
    delay: Duration,
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

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        ctx.write_journal("started", std::process::id()).await?;
        let until = tokio::time::Instant::now() + self.delay;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ctx.checkpoint()?;
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

/// A deployment-shaped pipeline over the world in `dir`, each step taking `delay`.
///
/// # Panics
/// Never for the fixed step names used here.
#[allow(clippy::expect_used)]
pub fn pipeline(dir: &Path, delay: Duration) -> Pipeline {
    let shape: [(&str, &[&str]); 6] = [
        ("prepare_deployment", &[]),
        ("setup_network", &["prepare_deployment"]),
        ("create_vms/k0s-controller-1", &["setup_network"]),
        ("create_vms/k0s-worker-1", &["setup_network"]),
        ("setup_vpn", &["create_vms"]),
        ("connect_vpn", &["setup_vpn"]),
    ];
    let mut b = Pipeline::builder().observer(WorldObserver(dir.to_path_buf()));
    for (id, deps) in shape {
        b = b.step(WorldStep {
            id: StepId::parse(id).expect("fixed step id"),
            deps: deps
                .iter()
                .map(|d| StepId::parse(d).expect("fixed step id"))
                .collect(),
            dir: dir.to_path_buf(),
            delay,
        });
    }
    b.build().expect("the fixed pipeline is valid")
}

/// Builds [`pipeline`] from `FAKE_WORLD_DIR` (default `<state-dir>/world`) and
/// `FAKE_STEP_DELAY_MS` (default 0).
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
        let delay = std::env::var("FAKE_STEP_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        Ok(Deployment {
            pipeline: pipeline(&dir, delay),
            concurrency: 4,
            notes: Vec::new(),
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
