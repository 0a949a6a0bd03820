//! `--state azblob://ACCOUNT/CONTAINER/PATH` (or `K0RDENT_STATE`): the state document, its
//! lock and the event log in Azure Blob Storage, while the private keys and the other local
//! files stay in the local state directory (`./state`).

use std::sync::Arc;

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::FileStore;
use k0rdent_core::cancel::Cancellation;

use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::request::Request;

/// The command's store: the local directory, with the state elsewhere when `--state` says
/// so, and the remote store itself (to wait for its lease release and report a lost lease).
pub(crate) fn open(
    request: &Request,
    cancel: &Cancellation,
) -> Result<(Arc<FileStore>, Option<BlobStore>), CliError> {
    let local = FileStore::new(&request.state_dir);
    let Some(url) = &request.state_url else {
        return Ok((Arc::new(local), None));
    };
    let blob = BlobStore::from_url(url, |k| std::env::var(k).ok())
        .map_err(|e| CliError::usage_from(&e))?;
    // A run whose lease cannot be kept stops before another run could take over.
    blob.cancel_on_lease_loss(cancel.clone());
    let shared = Arc::new(blob.clone());
    Ok((
        Arc::new(local.with_remote_state(shared.clone(), shared)),
        Some(blob),
    ))
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
