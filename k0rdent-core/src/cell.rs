//! The run's state, shared by the engine and its step tasks; every update is saved. It also
//! carries the key store the steps reach through their context.

use std::sync::Arc;

use tokio::sync::Mutex;

use crate::state::DeploymentState;
use crate::store::{KeyStore, StateStore, StoreError, StoreLock};

pub(crate) struct StateCell {
    state: Mutex<DeploymentState>,
    store: Arc<dyn StateStore>,
    keys: Arc<dyn KeyStore>,
    lock: Option<Box<dyn StoreLock>>,
}

impl StateCell {
    pub(crate) fn new(
        state: DeploymentState,
        store: Arc<dyn StateStore>,
        keys: Arc<dyn KeyStore>,
        lock: Option<Box<dyn StoreLock>>,
    ) -> Self {
        StateCell {
            state: Mutex::new(state),
            store,
            keys,
            lock,
        }
    }

    pub(crate) fn keys(&self) -> &dyn KeyStore {
        self.keys.as_ref()
    }

    /// Applies `f` and saves. Updates are serialized, so concurrent steps never lose each
    /// other's changes.
    pub(crate) async fn update<R: Send>(
        &self,
        f: impl FnOnce(&mut DeploymentState) -> R + Send,
    ) -> Result<R, StoreError> {
        let mut s = self.state.lock().await;
        if let Some(lock) = &self.lock {
            lock.check()?;
        }
        let r = f(&mut s);
        self.store.save(&mut s).await?;
        Ok(r)
    }

    pub(crate) async fn read<R>(&self, f: impl FnOnce(&DeploymentState) -> R) -> R {
        let s = self.state.lock().await;
        f(&s)
    }

    pub(crate) async fn snapshot(&self) -> DeploymentState {
        self.state.lock().await.clone()
    }
}
