//! A stand-in Helm 3, written from Helm's documentation and sources: its release storage
//! on the "secret" driver ([`record`]), the commands k0rdent-deploy runs (`version`,
//! `upgrade --install`, `list`, `history`, `status`, `rollback`, `uninstall`) against the API
//! named by `--kubeconfig`/`--kube-context`, and the ways they fail (a pending release
//! refusing upgrades, SIGTERM marking the release `failed`, SIGKILL leaving it pending).
//! Each invocation is recorded and overlapping invocations are refused ([`invocation`]).

pub mod actions;
pub mod args;
pub mod client;
pub mod invocation;
pub mod kubeconfig;
pub mod output;
pub mod record;
pub mod storage;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use invocation::Settings;

/// Where command output goes (stdout in the binary).
pub type Out = dyn Write;

/// Why a helm invocation failed; printed as `Error: <message>` with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The kubeconfig could not be read or resolved.
    #[error("{0}")]
    Kubeconfig(String),
    /// The API could not be reached.
    #[error("Kubernetes cluster unreachable: {0}")]
    Unreachable(String),
    /// The API refused a storage operation.
    #[error("{0}")]
    Api(String),
    /// A stored release could not be decoded.
    #[error("decoding a release record")]
    Record(#[from] record::RecordError),
    /// The action failed (Helm's message).
    #[error("{0}")]
    Failed(String),
    /// The stand-in's own machinery (log, lock, signals) failed or refused.
    #[error("{0}")]
    Harness(String),
    /// Writing the output failed.
    #[error("writing output")]
    Output(#[from] std::io::Error),
}

fn kubeconfig_path(cli: &Cli) -> PathBuf {
    if let Some(path) = &cli.kubeconfig {
        return path.clone();
    }
    if let Some(first) =
        std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).next())
    {
        return first;
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".kube")
        .join("config")
}

fn storage_for(cli: &Cli) -> Result<storage::Storage, HelmError> {
    let mut target = kubeconfig::load(&kubeconfig_path(cli), cli.kube_context.as_deref())?;
    if let Some(server) = &cli.kube_apiserver {
        target.server.clone_from(server);
    }
    let namespace = cli
        .namespace
        .clone()
        .or_else(|| target.namespace.clone())
        .unwrap_or_else(|| "default".into());
    Ok(storage::Storage::new(client::Api::new(&target)?, namespace))
}

async fn dispatch(cli: &Cli, settings: &Settings, out: &mut Out) -> Result<(), HelmError> {
    match &cli.command {
        Command::Version { short, template } => {
            output::version(settings, *short, template.as_deref(), out)
        }
        Command::Upgrade(a) => actions::upgrade(&storage_for(cli)?, a, false, settings, out).await,
        Command::Install(a) => actions::upgrade(&storage_for(cli)?, a, true, settings, out).await,
        Command::List(a) => output::list(&storage_for(cli)?, a, out).await,
        Command::Rollback { name, revision, .. } => {
            actions::rollback(&storage_for(cli)?, name, *revision, settings, out).await
        }
        Command::Uninstall {
            name, keep_history, ..
        } => actions::uninstall(&storage_for(cli)?, name, *keep_history, out).await,
        Command::History { name, output, max } => {
            output::history(&storage_for(cli)?, name, output, *max, out).await
        }
        Command::Status {
            name,
            output,
            revision,
        } => output::status(&storage_for(cli)?, name, output, *revision, out).await,
    }
}

/// Runs one invocation with `argv` (program name first); the binary's `main`.
pub fn main_with(argv: Vec<String>) -> ExitCode {
    let settings = Settings::from_env();
    let mut stderr = std::io::stderr();
    if let Err(e) = invocation::record(&settings, &argv) {
        let _ = writeln!(stderr, "Error: {e}");
        return ExitCode::FAILURE;
    }
    let _lock = match invocation::lock(&settings) {
        Ok(lock) => lock,
        Err(e) => {
            let _ = writeln!(stderr, "Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(stderr, "Error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(dispatch(&cli, &settings, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "Error: {e}");
            ExitCode::FAILURE
        }
    }
}
