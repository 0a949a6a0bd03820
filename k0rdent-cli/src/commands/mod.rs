//! One module per command.

mod completions;
mod config_init;
mod deploy;
mod doctor;
mod import;
mod kubeconfig;
mod man;
mod migrate;
mod plan;
mod refresh;
mod render;
mod reset;
mod ssh;
mod state;
mod vpn;

use std::sync::Arc;

use k0rdent_core::store::LockHolder;
use k0rdent_core::{Engine, FileStore, StepId, cancel::Cancellation, id::RunId, store::StateStore};

use crate::args::{Command, ConfigAction, StateAction};
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::pipeline::{Mode, PipelineFactory};
use crate::printer::Printer;
use crate::request::Request;

/// Runs one command.
pub async fn run(
    command: Command,
    request: Request,
    factory: Arc<dyn PipelineFactory>,
    printer: Arc<Printer>,
) -> Result<ExitStatus, CliError> {
    // Ctrl-C is handled from the start, so an interrupt while credentials, the configuration
    // or the state are read ends the command cleanly too.
    let cancel = Cancellation::new();
    crate::signals::install(cancel.clone());
    let opened = crate::remote_state::open(&request, &cancel).await?;
    let (store, remote) = (opened.store, opened.remote);
    let ctx = Ctx {
        store,
        request,
        factory,
        printer,
        cancel,
    };
    // Completions and the man page come from the arguments alone; `config init` never reads
    // the state; `doctor` reports a Bash tool's state as a check.
    if !matches!(
        command,
        Command::ImportBashState { .. }
            | Command::Completions { .. }
            | Command::Man
            | Command::Config { .. }
            | Command::Doctor { .. }
    ) {
        crate::import::refuse_bash_state(&ctx.request.state_dir)?;
        // The keys from the vault, fresh: nothing stale stays in the local copy.
        if let Some(vault) = &opened.vault {
            let started = tokio::select! {
                r = vault.start() => r,
                () = ctx.cancel.cancelled() => Err(CliError::Interrupted),
            };
            if let Err(e) = started {
                return crate::remote_state::finish(remote, Err(e)).await;
            }
        }
    }
    // The context (and any lock in it) is gone before the remote store is closed.
    let result = dispatch(command, ctx).await;
    crate::remote_state::finish(remote, result).await
}

async fn dispatch(command: Command, ctx: Ctx) -> Result<ExitStatus, CliError> {
    match command {
        Command::ImportBashState { dir, .. } => import::run(&ctx, &dir).await,
        Command::Deploy { until, .. } => deploy::run(&ctx, until).await,
        Command::Plan { until, .. } => plan::plan(&ctx, until).await,
        Command::Status { until, .. } => plan::status(&ctx, until).await,
        Command::Refresh { .. } => refresh::run(&ctx).await,
        Command::Reset { .. } => reset::run(&ctx).await,
        Command::Vpn { action, .. } => vpn::run(&ctx, action).await,
        Command::Kubeconfig { export, .. } => kubeconfig::run(&ctx, export).await,
        Command::Ssh { node, command, .. } => ssh::run(&ctx, &node, &command).await,
        Command::Render { target, .. } => render::run(&ctx, target).await,
        Command::Completions { shell } => Ok(completions::run(shell, &ctx.printer)),
        Command::Man => man::run(&ctx.printer),
        Command::State { action, .. } => match action {
            StateAction::Show => state::show(&ctx).await,
            StateAction::History { last } => state::history(&ctx, last).await,
            StateAction::Unlock { force } => state::unlock(&ctx, force).await,
            StateAction::Migrate { to } => migrate::run(&ctx, &to).await,
        },
        Command::Config {
            action:
                ConfigAction::Init {
                    preset,
                    force,
                    stdout,
                },
            ..
        } => config_init::run(&ctx, preset, force, stdout),
        Command::Doctor { .. } => doctor::run(&ctx).await,
    }
}

/// What every command has at hand.
pub(crate) struct Ctx {
    pub(crate) request: Request,
    pub(crate) store: Arc<FileStore>,
    pub(crate) factory: Arc<dyn PipelineFactory>,
    pub(crate) printer: Arc<Printer>,
    /// The command's cancellation: the first Ctrl-C or SIGTERM cancels it.
    pub(crate) cancel: Cancellation,
}

impl Ctx {
    /// An engine over the factory's pipeline; the first Ctrl-C cancels it. The arguments,
    /// the configuration and the credentials are checked first, writing nothing; then, for
    /// commands that change things (`mode` other than read-only), the run's lock is taken, so
    /// the factory can prepare under it, and handed to the engine.
    pub(crate) async fn engine(
        &self,
        until: Option<String>,
        mode: Mode,
        command: &str,
    ) -> Result<Engine, CliError> {
        let until = until
            .map(|u| {
                StepId::parse(&u).map_err(|e| {
                    CliError::usage(
                        format!("--until {u}: {e}"),
                        "`k0rdent plan` lists the phases",
                    )
                })
            })
            .transpose()?;
        tokio::select! {
            r = self.factory.preflight(&self.request, &self.store, mode) => r?,
            () = self.cancel.cancelled() => return Err(CliError::Interrupted),
        }
        let lock = match mode {
            Mode::ReadOnly | Mode::Preview => None,
            Mode::Locked | Mode::Prepare => Some(
                self.store
                    .lock(&LockHolder::current(RunId::generate(), command))
                    .await?,
            ),
        };
        let deployment = tokio::select! {
            d = self.factory.deployment(&self.request, &self.store, mode) => d?,
            () = self.cancel.cancelled() => return Err(CliError::Interrupted),
        };
        for note in &deployment.notes {
            self.printer.note(note);
        }
        let mut builder = Engine::builder(deployment.pipeline, self.store.clone());
        if let Some(lock) = lock {
            builder = builder.holding_lock(lock);
        }
        if let Some(state) = deployment.planning_state {
            builder = builder.plan_against(state);
        }
        for (phase, limit) in &deployment.time_limits {
            builder = builder.phase_time_limit(phase, *limit);
        }
        Ok(builder
            .sink(self.printer.clone())
            .concurrency(deployment.concurrency)
            .until(until)
            .confirm_replace(self.request.yes)
            .cancellation(self.cancel.clone())
            .build()?)
    }
}
