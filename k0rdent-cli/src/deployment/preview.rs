//! What `deploy` would prepare, for `plan`: [`super::prepare::ensure`]'s network plan computed
//! without writing anything. A key a new node would get exists only in memory, so `plan`
//! after adding a worker shows its VM, its peer and the k0s install as work to do rather
//! than only "re-planned after prepare_deployment".

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use k0rdent_core::FileStore;
use k0rdent_core::secret::Secret;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::{KeyStore, StoreError};
use k0rdent_ssh::wireguard::prepare_network;

use super::prepare::{SSH_PUBLIC_KEY, network_spec, vm_presence};
use crate::config::Loaded;
use crate::error::CliError;

/// Keys read from the store; keys written stay in memory and are dropped with it.
pub(crate) struct PreviewKeys<'a> {
    store: &'a FileStore,
    written: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl<'a> PreviewKeys<'a> {
    /// Over `store`, nothing written yet.
    pub(crate) fn new(store: &'a FileStore) -> Self {
        PreviewKeys {
            store,
            written: Mutex::new(BTreeMap::new()),
        }
    }
}

#[async_trait]
impl KeyStore for PreviewKeys<'_> {
    async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        let written = self
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        match written {
            Some(v) => Ok(Some(Secret::new(v))),
            None => self.store.get_secret(name).await,
        }
    }

    /// A preview removes nothing.
    async fn remove_all(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// `state` with the nodes and addresses [`super::prepare::ensure`] would record for
/// `loaded`; keys a new node would get go to `keys` (memory), nothing is written. A
/// deployment never prepared (or being reset) is returned as it is: everything in it is to do
/// anyway.
///
/// # Errors
/// What `deploy` would stop on: a lost key while VMs exist, an unusable tunnel network.
pub(crate) async fn preview(
    keys: &PreviewKeys<'_>,
    loaded: &Loaded,
    mut state: DeploymentState,
    routes: &[k0rdent_ssh::os::LocalRoute],
) -> Result<DeploymentState, CliError> {
    if state.reset.is_some()
        || state.cluster_id.is_none()
        || !state.settings.contains_key(SSH_PUBLIC_KEY)
    {
        return Ok(state);
    }
    let prepared = prepare_network(
        keys,
        &network_spec(loaded),
        &state,
        routes,
        &vm_presence(&state),
    )
    .await
    .map_err(|e| CliError::usage_from(&e))?;
    prepared.network.record(&mut state);
    Ok(state)
}
