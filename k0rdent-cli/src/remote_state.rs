//! `--state azblob://ACCOUNT/CONTAINER/PATH` (or `K0RDENT_STATE`): the state document, its
//! lock and the event log in Azure Blob Storage, while the private keys and the other local
//! files stay in the local state directory (`./state`). `--keys keyvault://VAULT` (or
//! `K0RDENT_KEYS`): the private keys in Azure Key Vault ([`crate::vault_keys`]).

use std::sync::Arc;

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::FileStore;
use k0rdent_core::cancel::Cancellation;
use k0rdent_core::store::StateStore;

use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::request::Request;
use crate::vault_keys::{VAULT_KEYS_DIR, VaultKeys};

/// What a command opened: its store, the remote state store (to wait for its lease release
/// and report a lost lease) and the vault behind the keys (to fetch them at start).
pub(crate) struct Opened {
    pub(crate) store: Arc<FileStore>,
    pub(crate) remote: Option<BlobStore>,
    pub(crate) vault: Option<Arc<VaultKeys>>,
}

/// The command's store: the local directory, with the state elsewhere when `--state` says
/// so and the keys mirrored to Key Vault when `--keys` says so.
pub(crate) fn open(request: &Request, cancel: &Cancellation) -> Result<Opened, CliError> {
    let mut local = FileStore::new(&request.state_dir);
    let mut remote = None;
    let mut state: Arc<dyn StateStore> = Arc::new(FileStore::new(&request.state_dir));
    if let Some(url) = &request.state_url {
        let blob = BlobStore::from_url(url, |k| std::env::var(k).ok())
            .map_err(|e| CliError::usage_from(&e))?;
        // A run whose lease cannot be kept stops before another run could take over.
        blob.cancel_on_lease_loss(cancel.clone());
        let shared = Arc::new(blob.clone());
        local = local.with_remote_state(shared.clone(), shared.clone());
        state = shared;
        remote = Some(blob);
    }
    let mut vault = None;
    if let Some(url) = &request.keys_url {
        local = local.with_keys_dir(VAULT_KEYS_DIR);
        let keys = Arc::new(VaultKeys::open(url, state, local.clone())?);
        local = local.with_key_mirror(keys.clone());
        vault = Some(keys);
    }
    Ok(Opened {
        store: Arc::new(local),
        remote,
        vault,
    })
}

/// After the command: waits for the lease release, and turns a run that stopped because its
/// lease was lost into that error (exit 1), whatever the run reported.
pub(crate) async fn finish(
    remote: Option<BlobStore>,
    result: Result<ExitStatus, CliError>,
) -> Result<ExitStatus, CliError> {
    let Some(blob) = remote else {
        return result;
    };
    blob.close().await;
    match blob.lease_lost() {
        Some(e) => Err(CliError::Store(e)),
        None => result,
    }
}
