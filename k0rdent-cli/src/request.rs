//! The validated form of the global arguments, built once from the raw clap structs.

use std::path::PathBuf;

use crate::args::{GlobalArgs, OutputFormat};

/// What every command works with.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct Request {
    /// Configuration file, if given: absolute, so the state records a path that works from
    /// any directory.
    pub config: Option<PathBuf>,
    /// As given (default `./state`); unlike `config`, not made absolute.
    pub state_dir: PathBuf,
    /// No prompts; accept replacements.
    pub yes: bool,
    pub output: OutputFormat,
}

impl Request {
    /// From the raw arguments.
    pub fn from_args(g: &GlobalArgs) -> Self {
        Request {
            config: g
                .config
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            state_dir: g.state_dir.clone(),
            yes: g.yes,
            output: g.output,
        }
    }
}
