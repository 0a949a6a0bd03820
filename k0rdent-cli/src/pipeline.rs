//! Where a command's pipeline comes from. The `k0rdent` binary builds the k0rdent-on-Azure
//! pipeline; tests and embedders can run the same commands over their own pipelines.

use std::sync::Arc;

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
}

/// Builds the pipeline for a command.
#[async_trait]
pub trait PipelineFactory: Send + Sync {
    /// The deployment for `request`, over `store`.
    async fn deployment(
        &self,
        request: &Request,
        store: &Arc<FileStore>,
    ) -> Result<Deployment, CliError>;
}

/// The factory of a build without deployment phases: every deployment command says so.
#[derive(Debug, Default)]
pub struct NoPhases;

#[async_trait]
impl PipelineFactory for NoPhases {
    async fn deployment(
        &self,
        _request: &Request,
        _store: &Arc<FileStore>,
    ) -> Result<Deployment, CliError> {
        Err(CliError::NoPhases(
            "the Azure, VPN and cluster phases are not part of this build yet".into(),
        ))
    }
}
