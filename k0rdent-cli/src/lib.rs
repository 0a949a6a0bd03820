//! The `k0rdent` command: glue between the command line, the configuration and the
//! `k0rdent-core` engine with the Azure and node-access providers.
//!
//! `main.rs` only calls [`main`]. Tests and embedders run the same commands over their own
//! pipelines with [`run_with`].

#![deny(missing_docs)]

pub mod args;
pub mod cluster;
mod commands;
pub mod config;
pub mod deployment;
#[cfg(test)]
mod doc_coverage;
mod doctor;
pub mod error;
pub mod exit;
pub mod import;
pub mod json_line;
pub mod k0s;
mod logging;
pub mod phases;
pub mod pipeline;
pub mod printer;
mod remote_state;
pub mod request;
mod signals;
mod sudo;
pub mod tools;
mod vault_keys;
pub mod view;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

pub use error::CliError;
pub use exit::ExitStatus;
pub use pipeline::{Deployment, Mode, PipelineFactory};

use crate::args::Cli;
use crate::printer::Printer;
use crate::request::Request;

/// The `k0rdent` binary's entry point.
pub fn main() -> ExitCode {
    run_with(
        std::env::args_os(),
        Arc::new(deployment::K0rdentFactory::from_env()),
    )
    .into()
}

/// Parses `args` and runs the command with pipelines from `factory`.
pub fn run_with<I, T>(args: I, factory: Arc<dyn PipelineFactory>) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are successes; usage errors exit 1, not clap's 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Error
            } else {
                ExitStatus::Success
            };
        }
    };
    let term = view::Term::detect(cli.global.color);
    logging::init(cli.global.verbose, term.color_err);
    let printer = Arc::new(Printer::with_term(
        cli.global.output,
        term,
        cli.global.verbose,
    ));
    let request = Request::from_args(&cli.global, cli.command.targets());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            printer.error(&CliError::Io {
                path: "tokio runtime".into(),
                source: e,
            });
            return ExitStatus::Error;
        }
    };
    let result = runtime.block_on(commands::run(
        cli.command,
        request,
        factory,
        printer.clone(),
    ));
    // Do not wait for blocked I/O (an SSH read) when the command is over.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(status) => status,
        Err(e) => {
            printer.error(&e);
            e.exit_status()
        }
    }
}
