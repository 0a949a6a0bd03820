//! `--state azblob://ACCOUNT/CONTAINER/PATH` (or `K0RDENT_STATE`): the state document, its
//! lock and the event log in Azure Blob Storage, while the private keys and the other local
//! files stay in the local state directory (`./state`).
//!
//! Without `--state`, a local directory whose state file is a pointer left by `k0rdent state
//! migrate` is followed: to the remote store it names (keys stay in the directory), or to
//! another directory on this host. A pointer to a directory on another host is not followed;
//! loading the state then fails naming that host and path.

use std::sync::Arc;

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::FileStore;
use k0rdent_core::cancel::Cancellation;
use k0rdent_core::state::MovedTo;
use k0rdent_core::store::hostname;

use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::request::Request;

/// The command's store: the local directory, with the state elsewhere when `--state` (or a
/// pointer in the directory) says so, and the remote store itself (to wait for its lease
/// release and report a lost lease).
pub(crate) fn open(
    request: &Request,
    cancel: &Cancellation,
) -> Result<(Arc<FileStore>, Option<BlobStore>), CliError> {
    let local = FileStore::new(&request.state_dir);
    let url = match &request.state_url {
        Some(url) => url.clone(),
        None => match followed(&local)? {
            Some(Followed::Remote(url)) => url,
            Some(Followed::Directory(store)) => return Ok((Arc::new(store), None)),
            None => return Ok((Arc::new(local), None)),
        },
    };
    let blob = open_blob(&url, cancel)?;
    let shared = Arc::new(blob.clone());
    Ok((
        Arc::new(local.with_remote_state(shared.clone(), shared)),
        Some(blob),
    ))
}

/// A blob store for `url`, authorized from the environment; a run whose lease cannot be kept
/// is cancelled through `cancel` before another run could take over.
pub(crate) fn open_blob(url: &str, cancel: &Cancellation) -> Result<BlobStore, CliError> {
    let blob = BlobStore::from_url(url, |k| std::env::var(k).ok())
        .map_err(|e| CliError::usage_from(&e))?;
    blob.cancel_on_lease_loss(cancel.clone());
    Ok(blob)
}

enum Followed {
    Remote(String),
    Directory(FileStore),
}

/// Where the pointer in `local` leads, if it holds one this host can follow.
fn followed(local: &FileStore) -> Result<Option<Followed>, CliError> {
    let Some(pointer) = local.pointer()? else {
        return Ok(None);
    };
    let from = local.dir().display();
    Ok(match pointer.moved_to {
        MovedTo::Remote { url } => {
            tracing::info!("the state in {from} moved to {url}; following it");
            Some(Followed::Remote(url))
        }
        MovedTo::Directory { host, path } if host == hostname() && path != local.dir() => {
            tracing::info!(
                "the state in {from} moved to {}; following it",
                path.display()
            );
            Some(Followed::Directory(FileStore::new(path)))
        }
        MovedTo::Directory { .. } => None,
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
