//! Where a command's pipeline comes from. The `k0rdent` binary builds the k0rdent-on-Azure
//! pipeline; tests and embedders can run the same commands over their own pipelines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::{FileStore, Pipeline};

use crate::error::CliError;
use crate::request::Request;

/// What the deployment commands run.
pub struct Deployment {
    /// The steps and observers.
    pub pipeline: Pipeline,
    /// Steps run at once at most.
    pub concurrency: usize,
    /// Things to tell the user before running (configuration warnings and changes).
    pub notes: Vec<String>,
    /// Per phase: the time limit of one attempt of its steps (those that set none).
    pub time_limits: BTreeMap<String, Duration>,
    /// For [`Mode::Preview`]: the state a deploy would prepare, planned against instead of
    /// the stored one.
    pub planning_state: Option<k0rdent_core::state::DeploymentState>,
}

/// What the command may do while the factory builds the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read only, no lock (`status`, `vpn status`).
    ReadOnly,
    /// Read only, no lock, and what `deploy` would prepare computed in memory (`plan`).
    Preview,
    /// The run's lock is held; nothing is prepared (`reset`, `refresh`).
    Locked,
    /// The run's lock is held and local facts may be prepared (`deploy`).
    Prepare,
}

/// Builds the pipeline for a command.
#[async_trait]
pub trait PipelineFactory: Send + Sync {
    /// Checks, writing nothing, what would make the command fail — the configuration, the
    /// credentials — before the command takes the run's lock (which creates the state
    /// directory) and [`PipelineFactory::deployment`] prepares anything. The default checks
    /// nothing.
    async fn preflight(
        &self,
        _request: &Request,
        _store: &Arc<FileStore>,
        _mode: Mode,
    ) -> Result<(), CliError> {
        Ok(())
    }

    /// The deployment for `request`, over `store` (after [`PipelineFactory::preflight`]).
    async fn deployment(
        &self,
        request: &Request,
        store: &Arc<FileStore>,
        mode: Mode,
    ) -> Result<Deployment, CliError>;
}
