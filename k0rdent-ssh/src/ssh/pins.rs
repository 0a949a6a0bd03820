//! Where pinned host keys are kept: the node records of the deployment state.

use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_core::StepContext;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::state::HostKeyRecord;
use tokio::sync::Mutex;

use super::hostkey::{PinnedHost, recorded_recreates};

/// Why pins could not be read or recorded: the error of the store behind them (for a step,
/// the state save that failed).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct PinError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl PinError {
    /// Wraps the store's error.
    pub fn new(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        PinError {
            source: Box::new(source),
        }
    }
}

/// Reads and records pinned host keys.
#[async_trait]
pub trait PinStore: Send + Sync {
    /// What is pinned for `node`, with the recreates recorded for it.
    async fn pinned(&self, node: &str) -> Result<PinnedHost, PinError>;

    /// Pins `keys` for `node`, which runs as VM `vm_id`; replaces earlier pins.
    async fn pin(
        &self,
        node: &str,
        keys: Vec<HostKeyRecord>,
        vm_id: Option<String>,
    ) -> Result<(), PinError>;
}

fn read(state: &DeploymentState, node: &str) -> PinnedHost {
    let rec = state.nodes.get(node);
    PinnedHost {
        keys: rec.map(|r| r.ssh_host_keys.clone()).unwrap_or_default(),
        vm_id: rec.and_then(|r| r.vm_id.clone()),
        recreates: recorded_recreates(state, node),
    }
}

fn write(state: &mut DeploymentState, node: &str, keys: Vec<HostKeyRecord>, vm_id: Option<String>) {
    let rec = state.nodes.entry(node.to_owned()).or_default();
    rec.ssh_host_keys = keys;
    if vm_id.is_some() {
        rec.vm_id = vm_id;
    }
}

/// Pins kept in a shared, in-memory [`DeploymentState`] (tests, embedders, the CLI's
/// commands outside the engine, which save the state afterwards).
#[derive(Debug, Clone, Default)]
pub struct StatePins {
    state: Arc<Mutex<DeploymentState>>,
}

impl StatePins {
    /// Starts from the host keys `state` records; [`snapshot`](Self::snapshot) reads it back.
    pub fn new(state: DeploymentState) -> Self {
        StatePins {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// A copy of the state as it is now.
    pub async fn snapshot(&self) -> DeploymentState {
        self.state.lock().await.clone()
    }

    /// Changes the state (e.g. to record an observed VM recreate).
    pub async fn update<R>(&self, f: impl FnOnce(&mut DeploymentState) -> R) -> R {
        f(&mut *self.state.lock().await)
    }
}

#[async_trait]
impl PinStore for StatePins {
    async fn pinned(&self, node: &str) -> Result<PinnedHost, PinError> {
        Ok(read(&*self.state.lock().await, node))
    }

    async fn pin(
        &self,
        node: &str,
        keys: Vec<HostKeyRecord>,
        vm_id: Option<String>,
    ) -> Result<(), PinError> {
        write(&mut *self.state.lock().await, node, keys, vm_id);
        Ok(())
    }
}

/// Inside a step: pins are persisted with the state before `pin` returns.
#[async_trait]
impl PinStore for StepContext {
    async fn pinned(&self, node: &str) -> Result<PinnedHost, PinError> {
        Ok(self.read_state(|s| read(s, node)).await)
    }

    async fn pin(
        &self,
        node: &str,
        keys: Vec<HostKeyRecord>,
        vm_id: Option<String>,
    ) -> Result<(), PinError> {
        let node = node.to_owned();
        self.update_state(move |s| write(s, &node, keys, vm_id))
            .await
            .map_err(PinError::new)
    }
}
