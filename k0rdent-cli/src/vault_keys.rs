//! `--keys keyvault://VAULT` (or `K0RDENT_KEYS`): the private keys in Azure Key Vault.
//!
//! The local keys directory becomes `keys-vault/` in the state directory: emptied at the
//! start of every command, then filled with this cluster's keys from the vault (0700, files
//! 0600), so ssh and wg-quick still get paths and nothing stale stays. Every key a step
//! stores goes to the vault first, then to the file; `reset` deletes and purges the
//! cluster's secrets. The vault's secrets are named after the cluster id, which a fresh
//! deployment only has once `prepare_deployment` recorded it: until then the vault is not
//! bound, and the first stored key binds it (reading the id from the state).

use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_azure::keyvault::{KeyVault, VaultKeyStore};
use k0rdent_core::FileStore;
use k0rdent_core::secret::Secret;
use k0rdent_core::store::{KeyStore, StateStore, StoreError};
use tokio::sync::Mutex;

use crate::error::CliError;

/// The local directory (in the state directory) holding the keys fetched from the vault.
pub(crate) const VAULT_KEYS_DIR: &str = "keys-vault";

/// The vault behind a [`FileStore`]'s keys ([`FileStore::with_key_mirror`]).
pub(crate) struct VaultKeys {
    vault: KeyVault,
    /// Where the cluster id is read from.
    state: Arc<dyn StateStore>,
    /// The local keys directory, without the mirror (fetched keys are written here).
    local: FileStore,
    bound: Mutex<Option<VaultKeyStore>>,
}

impl VaultKeys {
    /// The vault of `url`; `local` is the store whose keys directory is filled.
    pub(crate) fn open(
        url: &str,
        state: Arc<dyn StateStore>,
        local: FileStore,
    ) -> Result<VaultKeys, CliError> {
        let vault = KeyVault::from_url(url, |k| std::env::var(k).ok())
            .map_err(|e| CliError::usage_from(&e))?;
        Ok(VaultKeys {
            vault,
            state,
            local,
            bound: Mutex::new(None),
        })
    }

    /// At the start of a command: empties the local directory and, when the state already
    /// has a cluster id, fetches the cluster's keys into it.
    pub(crate) async fn start(&self) -> Result<(), CliError> {
        self.local.sweep_keys_sync()?;
        let mut bound = self.bound.lock().await;
        if let Some(cluster) = self.cluster_id().await? {
            *bound = Some(self.bind(&cluster).await?);
        }
        Ok(())
    }

    async fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.state.load().await?.and_then(|s| s.cluster_id))
    }

    /// Fetches the cluster's keys into the local directory.
    async fn bind(&self, cluster: &str) -> Result<VaultKeyStore, StoreError> {
        let keys = self.vault.for_cluster(cluster);
        let fetched = keys.fetch_all().await?;
        tracing::info!(vault = %self.vault.url(), cluster, keys = fetched.len(), "fetched the keys from Key Vault");
        for (name, value) in fetched {
            let local = self.local.clone();
            tokio::task::spawn_blocking(move || local.put_secret_sync(&name, value.expose()))
                .await
                .map_err(|e| StoreError::Io {
                    path: self.local.keys_dir(),
                    source: std::io::Error::other(e.to_string()),
                })??;
        }
        Ok(keys)
    }

    /// The bound store, binding it now if the state has a cluster id.
    async fn store(&self) -> Result<Option<VaultKeyStore>, StoreError> {
        let mut bound = self.bound.lock().await;
        if bound.is_none()
            && let Some(cluster) = self.cluster_id().await?
        {
            *bound = Some(self.bind(&cluster).await?);
        }
        Ok(bound.clone())
    }
}

#[async_trait]
impl KeyStore for VaultKeys {
    async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        match self.store().await? {
            Some(s) => s.put_secret(name, value).await,
            None => Err(StoreError::Remote {
                location: self.vault.url().to_string(),
                detail: format!(
                    "cannot store key {name} before the state records the cluster id that names \
                     the secrets"
                ),
                // `prepare_deployment` records the id first; only `import-bash-state` writes
                // keys before its state.
                remedy: Some(
                    "import-bash-state does not upload keys to Key Vault yet: run it without \
                     --keys (and K0RDENT_KEYS unset); the keys go to ./state/keys"
                        .into(),
                ),
            }),
        }
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        match self.store().await? {
            Some(s) => s.get_secret(name).await,
            None => Ok(None),
        }
    }

    async fn remove_all(&self) -> Result<(), StoreError> {
        // Bound at the start (reset reads a state with a cluster id); an archived state has
        // no id to bind by, and then there is nothing of it in the vault either.
        let bound = self.bound.lock().await.clone();
        match bound {
            Some(s) => s.remove_all().await,
            None => Ok(()),
        }
    }
}
