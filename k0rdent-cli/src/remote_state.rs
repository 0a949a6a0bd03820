//! `--state azblob://ACCOUNT/CONTAINER/PATH` (or `K0RDENT_STATE`): the state document, its
//! lock and the event log in Azure Blob Storage, while the private keys and the other local
//! files stay in the local state directory (`./state`). `--keys keyvault://VAULT` (or
//! `K0RDENT_KEYS`): the private keys in Azure Key Vault ([`crate::vault_keys`]).
//!
//! Without `--state`, a local directory whose state file is a pointer left by `k0rdent state
//! migrate` is followed: to the remote store it names (keys stay in the directory), or to
//! another directory on this host. A pointer to a directory on another host is not followed;
//! loading the state then fails naming that host and path.
//!
//! A move into a directory writes [`INCOMING`] there first (a pointer back to the store the
//! state comes from) and removes it last. While it is there, the directory's state is an
//! unfinished copy: commands follow it to the old store, which stays in use until it points
//! here; once it does, the first command to look removes the leftover file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::FileStore;
use k0rdent_core::cancel::Cancellation;
use k0rdent_core::state::{MovedTo, StatePointer, parse_state};
use k0rdent_core::store::{StateStore, StoreError, hostname};

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

/// The command's store: the local directory, with the state elsewhere when `--state` (or a
/// pointer in the directory) says so, and the keys mirrored to Key Vault when `--keys` says
/// so.
pub(crate) async fn open(request: &Request, cancel: &Cancellation) -> Result<Opened, CliError> {
    let local = FileStore::new(&request.state_dir);
    let url = match &request.state_url {
        Some(url) => Some(url.clone()),
        None => match unfinished_move(&local, cancel).await? {
            Some(Followed::Remote(url)) => Some(url),
            Some(Followed::Directory(store)) => return with_keys(request, store, None),
            None => match followed(&local)? {
                Some(Followed::Remote(url)) => Some(url),
                Some(Followed::Directory(store)) => return with_keys(request, store, None),
                None => None,
            },
        },
    };
    match url {
        Some(url) => {
            let blob = open_blob(&url, cancel)?;
            let shared = Arc::new(blob.clone());
            with_keys(
                request,
                local.with_remote_state(shared.clone(), shared),
                Some(blob),
            )
        }
        None => with_keys(request, local, None),
    }
}

/// `local` (and `remote`, the state's blob store if any) with the keys in Key Vault when
/// `--keys` says so.
fn with_keys(
    request: &Request,
    mut local: FileStore,
    remote: Option<BlobStore>,
) -> Result<Opened, CliError> {
    let mut vault = None;
    if let Some(url) = &request.keys_url {
        let state: Arc<dyn StateStore> = match &remote {
            Some(blob) => Arc::new(blob.clone()),
            None => Arc::new(FileStore::new(local.dir())),
        };
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

/// The file a move into a directory leaves there until the old store points to it.
pub(crate) const INCOMING: &str = "migrating-in.yaml";

/// The store a move into `dir` comes from, written before the copy.
pub(crate) fn begin_incoming(dir: &FileStore, from: &MovedTo) -> Result<(), CliError> {
    let pointer = StatePointer::new(from.clone(), None, 0);
    let text = pointer.render().map_err(|e| CliError::Io {
        path: dir.dir().join(INCOMING),
        source: std::io::Error::other(e),
    })?;
    dir.write_file(INCOMING, text.as_bytes(), 0o600)?;
    Ok(())
}

/// Removes [`INCOMING`]: the old store points here now.
pub(crate) fn end_incoming(dir: &Path) -> Result<(), CliError> {
    let path = dir.join(INCOMING);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CliError::Io { path, source }),
    }
}

/// Where to go when a move into `local` was interrupted before the old store pointed here:
/// the old store. `None` when there is no such move, or when it finished (then the leftover
/// file is removed).
async fn unfinished_move(
    local: &FileStore,
    cancel: &Cancellation,
) -> Result<Option<Followed>, CliError> {
    let path = local.dir().join(INCOMING);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        // No move into a directory that is not one (the command says what is wrong with it).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(source) => return Err(CliError::Io { path, source }),
    };
    let from = match parse_state(&bytes) {
        Err(k0rdent_core::state::ParseError::Moved(p)) => p.moved_to,
        _ => {
            return Err(CliError::usage(
                format!("{} is not a k0rdent move record", path.display()),
                "move it away and run again",
            ));
        }
    };
    let here = MovedTo::Directory {
        host: hostname(),
        path: directory(local.dir()),
    };
    let points_here = match &from {
        MovedTo::Remote { url } => matches!(
            open_blob(url, cancel)?.load().await,
            Err(StoreError::Moved { pointer, .. }) if pointer.moved_to == here
        ),
        MovedTo::Directory { path, .. } => FileStore::new(path)
            .pointer()?
            .is_some_and(|p| p.moved_to == here),
    };
    if points_here {
        end_incoming(local.dir())?;
        return Ok(None);
    }
    tracing::warn!(
        "a move of the state into {} from {from} was interrupted; using {from} until \
         `k0rdent state migrate --to {}` finishes it",
        local.dir().display(),
        local.dir().display()
    );
    Ok(Some(match from {
        MovedTo::Remote { url } => Followed::Remote(url),
        MovedTo::Directory { path, .. } => Followed::Directory(FileStore::new(path)),
    }))
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

/// A directory as a pointer names it: absolute, symbolic links resolved where it exists.
pub(crate) fn directory(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}
