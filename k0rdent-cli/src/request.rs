//! The validated form of the global arguments and the command's `--config`, `--state-dir`
//! and `-y`, built once from the raw clap structs.

use std::path::PathBuf;

use crate::args::{GlobalArgs, OutputFormat, Targets};

/// What every command works with.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct Request {
    /// Configuration file, if given: absolute, so the state records a path that works from
    /// any directory.
    pub config: Option<PathBuf>,
    /// As given (default `./state`); unlike `config`, not made absolute.
    pub state_dir: PathBuf,
    /// `--state URL` (`K0RDENT_STATE`): the state, its lock and the event log elsewhere.
    pub state_url: Option<String>,
    /// `--keys URL` (`K0RDENT_KEYS`): the private keys in Azure Key Vault.
    pub keys_url: Option<String>,
    /// No prompts; accept replacements.
    pub yes: bool,
    pub output: OutputFormat,
}

impl Request {
    /// From the raw arguments.
    pub fn from_args(g: &GlobalArgs, t: Targets) -> Self {
        Request {
            config: t
                .config
                .config
                .map(|p| std::path::absolute(&p).unwrap_or(p)),
            state_dir: t.state.state_dir,
            state_url: t.state.state_url,
            keys_url: t.state.keys_url,
            yes: t.yes.yes,
            output: g.output,
        }
    }
}
