//! A file-backed fake world: each step's "resource" is a file in a directory. Used by the
//! `fake-k0rdent` binary so lock races, kills and CLI output can be tested across processes
//! with the real engine, store and CLI.
//!
//! One step can also run a stand-in external tool through the runner (`k0rdent-process`), as
//! the k0sctl and helm steps will: a child that ignores SIGTERM and forks a grandchild that
//! ignores it too and holds the output pipe. The step journals the child, waits for it with
//! its cancellation (a failed watch, Ctrl-C) and shows the grace period; every step settles a
//! child journaled by an earlier run before it does anything else.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_cli::{CliError, Deployment, Mode, PipelineFactory, request::Request};
use k0rdent_core::{
    Evidence, FileStore, Observation, Observer, Outputs, Pipeline, Snapshot, Step, StepContext,
    StepError, StepId, StepOutcome, StepRecord, Teardown,
    gate::{Deadline, FnGate, Gate, GateVerdict, WaitBudget},
    observation::{Facts, ObserveError},
    state::DeploymentState,
    step::{RetryPolicy, StepPolicy},
};
use k0rdent_process::{ChildRecord, ChildStatus};

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

/// How one step runs the stand-in tool (see the module docs).
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Where the stand-in writes `child.pid` and `grandchild.pid`; `watch-fails` here makes
    /// the step's watched gate fail.
    pub dir: PathBuf,
    /// Its grace period between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The step's time limit (the engine drops the step when it passes).
    pub step_timeout: Option<Duration>,
}

/// The journal key of the stand-in's [`ChildRecord`].
pub const CHILD_KEY: &str = "child";

impl ChildSpec {
    /// The stand-in: ignores SIGTERM, forks a grandchild that ignores it too and keeps the
    /// output pipe, records both pids, then waits for the grandchild (10 minutes).
    fn command(&self) -> k0rdent_process::Command {
        let script = format!(
            "trap '' TERM; sleep 600 & echo $! > {d}/grandchild.pid; echo $$ > {d}/child.pid; \
             echo started; wait",
            d = self.dir.display()
        );
        k0rdent_process::Command::new("sh")
            .args(["-c", &script])
            .grace(self.grace)
    }

    async fn run(&self, ctx: &StepContext) -> Result<(), StepError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| StepError::permanent(format!("{}: {e}", self.dir.display())))?;
        let running = self
            .command()
            .spawn()
            .await
            .map_err(|e| StepError::permanent(e.to_string()))?;
        ctx.write_journal(CHILD_KEY, running.record()).await?;
        // While it runs, a stop request gives it its grace (SIGTERM, then SIGKILL) before the
        // engine drops the step; the user is told what is being waited for.
        let _stopping =
            ctx.stop_grace(self.grace + Duration::from_millis(500), "the stand-in tool");
        match running
            .wait_until(ctx.cancelled(), |n| ctx.progress(n.to_string()))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.cancelled() => Err(StepError::interrupted(e.to_string())),
            Err(e) => Err(StepError::permanent(e.to_string())),
        }
    }

    /// A watched gate that fails once `watch-fails` exists.
    fn gate(&self) -> Arc<dyn Gate> {
        let flag = self.dir.join("watch-fails");
        Arc::new(
            FnGate::new("stand_in_watch", move |_ctx| {
                let failing = flag.exists();
                async move {
                    if failing {
                        GateVerdict::fail("the watched condition failed")
                    } else {
                        GateVerdict::pass("the watched condition holds")
                    }
                }
            })
            .watch(Duration::from_millis(200)),
        )
    }
}

/// Before anything else: deals with a child an earlier run journaled. Gone: proceed. Still
/// here (itself, or what it left in its process group): wait briefly, then stop its group
/// with the grace period shown. Journaled on another host, or this machine cannot tell:
/// blocked, nothing is signalled.
async fn settle_child(ctx: &StepContext, grace: Duration) -> Result<(), StepError> {
    let Some(entry) = ctx.journal().latest(CHILD_KEY).cloned() else {
        return Ok(());
    };
    let record: ChildRecord = serde_json::from_value(entry.value)
        .map_err(|e| StepError::blocked(format!("journal entry {CHILD_KEY}: {e}")))?;
    let status = record.status();
    match status {
        ChildStatus::Gone => {
            ctx.progress(format!(
                "{} (pid {}) of an earlier run is gone",
                record.program, record.pid
            ));
            return Ok(());
        }
        ChildStatus::Running => {
            ctx.progress(format!(
                "{} (pid {}) of an earlier run still runs: waiting up to 2 s for it",
                record.program, record.pid
            ));
            if !record.wait_gone(Duration::from_secs(2)).await.is_alive() {
                return Ok(());
            }
        }
        ChildStatus::GroupRemains { .. } => {}
        other => {
            return Err(StepError::blocked(format!(
                "{} (pid {}, process group {}) of an earlier run: {other}",
                record.program, record.pid, record.pgid
            ))
            .with_remedy(format!(
                "run the command on {} (where it can be checked and stopped)",
                record.host
            )));
        }
    }
    record
        .stop(grace, |m| ctx.progress(m))
        .await
        .map(drop)
        .map_err(|e| StepError::blocked(e.to_string()))
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
    /// Reads the `FAKE_*` variables named on each field; an unset one means off (or zero).
    pub fn from_env() -> Self {
        let ms = |k: &str| env_ms(k).unwrap_or(Duration::ZERO);
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
/// file; optionally it runs the stand-in tool first.
pub struct WorldStep {
    id: StepId,
    deps: Vec<StepId>,
    dir: PathBuf,
    knobs: Knobs,
    child: Option<ChildSpec>,
    grace: Duration,
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
        let mut gates: Vec<Arc<dyn Gate>> = self.child.iter().map(ChildSpec::gate).collect();
        if self.knobs.gate_wait && self.id.as_str() == "setup_network" {
            gates.push(Arc::new(
                FnGate::new("cloud_init_done", |_| async {
                    GateVerdict::fail("cloud-init status: running")
                })
                .wait(WaitBudget {
                    deadline: Deadline::After(Duration::from_secs(600)),
                    interval: Duration::from_millis(500),
                }),
            ));
        }
        gates
    }

    fn policy(&self) -> StepPolicy {
        let retry = if self.child.is_some() {
            RetryPolicy::none()
        } else {
            // Long back-offs, so an interrupt can land in one.
            RetryPolicy {
                max_attempts: 5,
                initial_delay: Duration::from_secs(120),
                max_delay: Duration::from_secs(600),
            }
        };
        // Like `k0sctl apply`: an interrupted tool is not simply started again.
        let policy = StepPolicy::from(retry).retry_on_timeout(self.child.is_none());
        match self.child.as_ref().and_then(|c| c.step_timeout) {
            Some(limit) => policy.time_limit(limit),
            None => policy,
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        settle_child(ctx, self.grace).await?;
        ctx.write_journal("started", std::process::id()).await?;
        if self.knobs.transient && self.id.as_str() == "setup_network" {
            return Err(StepError::transient("HTTP 503 from the fake cloud"));
        }
        if let Some(child) = &self.child {
            child.run(ctx).await?;
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

/// A deployment-shaped pipeline over the world in `dir`, misbehaving as `knobs` say; the step
/// named in `child` runs the stand-in tool.
///
/// # Panics
/// Never for the fixed step names used here.
#[allow(clippy::expect_used)]
pub fn pipeline(dir: &Path, knobs: &Knobs, child: Option<(&str, ChildSpec)>) -> Pipeline {
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
            child: child
                .as_ref()
                .filter(|(step, _)| *step == id)
                .map(|(_, spec)| spec.clone()),
            grace: child
                .as_ref()
                .map_or(Duration::from_secs(1), |(_, spec)| spec.grace),
        });
    }
    b.build().expect("the fixed pipeline is valid")
}

/// Builds [`pipeline`] from `FAKE_WORLD_DIR` (default `<state-dir>/world`) and the [`Knobs`]
/// variables. With `FAKE_CHILD_STEP=<step id>` that step runs the
/// stand-in tool: `FAKE_CHILD_DIR` (default `<state-dir>/child`), `FAKE_CHILD_GRACE_MS`
/// (default 1000), `FAKE_STEP_TIMEOUT_MS` (the step's time limit, default none).
pub struct WorldFactory;

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

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
        let knobs = Knobs::from_env();
        let child_step = std::env::var("FAKE_CHILD_STEP").ok();
        let spec = ChildSpec {
            dir: std::env::var_os("FAKE_CHILD_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| request.state_dir.join("child")),
            grace: env_ms("FAKE_CHILD_GRACE_MS").unwrap_or(Duration::from_secs(1)),
            step_timeout: env_ms("FAKE_STEP_TIMEOUT_MS"),
        };
        Ok(Deployment {
            pipeline: pipeline(&dir, &knobs, child_step.as_deref().map(|s| (s, spec))),
            concurrency: 4,
            notes: Vec::new(),
            time_limits: Default::default(),
            planning_state: None,
        })
    }
}

/// The `fake-k0rdent` binary (`bin`) over `state`, with steps of `delay_ms`, stdout and stderr
/// piped, `RUST_LOG` unset.
pub fn command(bin: &Path, state: &Path, delay_ms: u64) -> Command {
    let mut c = Command::new(bin);
    c.env("K0RDENT_STATE_DIR", state)
        .env("FAKE_WORLD_DIR", state.join("world"))
        .env("FAKE_STEP_DELAY_MS", delay_ms.to_string())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The `fake-k0rdent` binary (`bin`) run in `local` (its own `./state` for keys) on the
/// remote state `url` with `connection` as `AZURE_STORAGE_CONNECTION_STRING`, the world in
/// `world`, steps of `delay_ms`, stdout and stderr piped, `RUST_LOG` unset.
pub fn remote_command(
    bin: &Path,
    local: &Path,
    url: &str,
    connection: &str,
    world: &Path,
    delay_ms: u64,
) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(local)
        .env_remove("K0RDENT_STATE_DIR")
        .env("K0RDENT_STATE", url)
        .env("AZURE_STORAGE_CONNECTION_STRING", connection)
        .env("FAKE_WORLD_DIR", world)
        .env("FAKE_STEP_DELAY_MS", delay_ms.to_string())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for `child`; its exit code (-1 when killed by a signal) and its stdout and stderr
/// together.
pub fn finish(child: std::process::Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
