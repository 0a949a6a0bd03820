//! `k0rdent state migrate --to azblob://…|DIR`: moves the deployment's state and event log
//! to another store under both locks, verifies the copy, then leaves a pointer behind
//! ([`k0rdent_core::store::transfer`]). Private keys and `known_hosts` stay local: moving to
//! a remote store leaves them in the local directory; moving to another directory copies
//! them there first.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::id::RunId;
use k0rdent_core::state::MovedTo;
use k0rdent_core::store::transfer::{Copied, Side, Transfer, TransferError};
use k0rdent_core::store::{EventLog, LockHolder, StateStore, hostname};
use k0rdent_core::{FileStore, Remedy};
use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::remote_state::directory;

impl From<TransferError> for CliError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::Store(e) => CliError::Store(e),
            other => CliError::Usage {
                message: other.to_string(),
                remedy: other.remedy().map(std::borrow::Cow::into_owned),
            },
        }
    }
}

/// The destination, opened.
enum Dest {
    Blob(BlobStore),
    Dir(FileStore),
}

impl Dest {
    fn state(&self) -> &dyn StateStore {
        match self {
            Dest::Blob(b) => b,
            Dest::Dir(f) => f,
        }
    }

    fn events(&self) -> &dyn EventLog {
        match self {
            Dest::Blob(b) => b,
            Dest::Dir(f) => f,
        }
    }
}

pub(crate) async fn run(ctx: &Ctx, to: &str) -> Result<ExitStatus, CliError> {
    let source = ctx.store.as_ref();
    let source_named = if source.is_remote() {
        MovedTo::Remote {
            url: source.location(),
        }
    } else {
        MovedTo::Directory {
            host: hostname(),
            path: directory(source.dir()),
        }
    };
    let dest = if to.starts_with("azblob://") {
        Dest::Blob(crate::remote_state::open_blob(to, &ctx.cancel)?)
    } else {
        // Made first, so the pointer names it as it resolves (symbolic links followed).
        let path = Path::new(to);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| CliError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Dest::Dir(FileStore::new(directory(path)))
    };
    let dest_named = match &dest {
        Dest::Blob(b) => MovedTo::Remote {
            url: b.url().to_string(),
        },
        Dest::Dir(f) => MovedTo::Directory {
            host: hostname(),
            path: f.dir().to_path_buf(),
        },
    };
    let result = if dest_named == source_named {
        already_there(ctx, &dest_named).await
    } else {
        migrate(ctx, &source_named, &dest, &dest_named).await
    };
    if let Dest::Blob(b) = &dest {
        // The move's lease is released before the process exits.
        b.close().await;
        if let Some(e) = b.lease_lost() {
            return Err(CliError::Store(e));
        }
    }
    result
}

async fn already_there(ctx: &Ctx, at: &MovedTo) -> Result<ExitStatus, CliError> {
    let state = ctx.store.load().await?;
    if state.is_none() {
        return Err(TransferError::NoDeployment {
            location: ctx.store.location(),
        }
        .into());
    }
    ctx.printer.json(&serde_json::json!({
        "result": "migrate", "to": at.to_string(), "moved": false,
    }));
    ctx.printer.text(&format!(
        "The deployment is already in {at}; nothing to do."
    ));
    Ok(ExitStatus::Success)
}

#[derive(Serialize)]
struct Out<'a> {
    result: &'static str,
    from: String,
    to: String,
    moved: bool,
    cluster_id: Option<&'a str>,
    generation: u64,
    events: usize,
    events_appended: usize,
    resumed: bool,
    keys_at: String,
    pointer_at: String,
}

async fn migrate(
    ctx: &Ctx,
    source_named: &MovedTo,
    dest: &Dest,
    dest_named: &MovedTo,
) -> Result<ExitStatus, CliError> {
    let source: Arc<FileStore> = ctx.store.clone();
    let holder = LockHolder::current(RunId::generate(), "state migrate");
    let transfer = tokio::select! {
        t = Transfer::begin(
            Side { state: source.as_ref(), events: source.as_ref(), named: source_named },
            Side { state: dest.state(), events: dest.events(), named: dest_named },
            &holder,
        ) => t?,
        () = ctx.cancel.cancelled() => return Err(CliError::Interrupted),
    };
    // Keys never go to a remote store; a directory gets a copy, written before the state so
    // a directory holding the state always holds its keys.
    let keys_at = match dest {
        Dest::Dir(d) if directory(d.dir()) != directory(source.dir()) => {
            copy_local_files(&source, d)?;
            d.dir().to_path_buf()
        }
        _ => source.dir().to_path_buf(),
    };
    // A directory's copy is in use as soon as it is written, and the old store stays in use
    // until it points there: until then a record in the directory sends commands back to
    // the old store.
    if let Dest::Dir(d) = dest {
        crate::remote_state::begin_incoming(d, source_named)?;
    }
    let copied = transfer.copy().await?;
    tracing::info!(
        "the copy in {dest_named} is verified; leaving the pointer in {}",
        source.location()
    );
    pause_for_tests().await;
    if ctx.cancel.is_cancelled() {
        // The source is still authoritative; a rerun finds the copy and finishes.
        return Err(CliError::Interrupted);
    }
    let from = source.location();
    transfer.switch().await?;
    if let Dest::Dir(d) = dest {
        crate::remote_state::end_incoming(d.dir())?;
    }
    report(ctx, &from, dest_named, &copied, &keys_at);
    Ok(ExitStatus::Success)
}

fn report(ctx: &Ctx, from: &str, to: &MovedTo, copied: &Copied, keys_at: &Path) {
    let pointer_at = from.to_owned();
    ctx.printer.json(&Out {
        result: "migrate",
        from: from.to_owned(),
        to: to.to_string(),
        moved: true,
        cluster_id: copied.cluster_id.as_deref(),
        generation: copied.generation,
        events: copied.events,
        events_appended: copied.events_appended,
        resumed: copied.resumed,
        keys_at: keys_at.display().to_string(),
        pointer_at: pointer_at.clone(),
    });
    let cluster = copied.cluster_id.as_deref().unwrap_or("(unnamed)");
    let resumed = if copied.resumed {
        " (finishing an interrupted move)"
    } else {
        ""
    };
    // A directory's pointer is followed; a remote store's pointer to a directory is not (the
    // directory may be on another machine): commands given it say where the state went.
    let follow = match to {
        MovedTo::Directory { .. } if from.starts_with("azblob://") => {
            "commands given it say where the state went"
        }
        _ => "commands given it follow the pointer",
    };
    ctx.printer.text(&format!(
        "Moved deployment {cluster} (generation {}) from {from} to {to}{resumed}.\n\
         Copied and read back: the state document and the event log ({} events, {} appended).\n\
         Private keys (keys/) and known_hosts stay in {}.\n\
         {pointer_at} now holds a pointer to {to}; {follow}.",
        copied.generation,
        copied.events,
        copied.events_appended,
        keys_at.display(),
    ));
}

/// Copies `keys/` and `known_hosts` into another directory; a key there that differs is
/// refused rather than overwritten.
fn copy_local_files(from: &FileStore, to: &FileStore) -> Result<(), CliError> {
    let keys = from.keys_dir();
    let entries = match std::fs::read_dir(&keys) {
        Ok(rd) => rd
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| CliError::Io {
                path: keys.clone(),
                source,
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(source) => return Err(CliError::Io { path: keys, source }),
    };
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some(key) = from.get_secret_sync(&name)? else {
            continue;
        };
        match to.get_secret_sync(&name)? {
            Some(there) if there.expose() == key.expose() => {}
            Some(_) => {
                return Err(CliError::usage(
                    format!(
                        "{} differs from the deployment's key {name}; nothing was changed",
                        to.keys_dir().join(&name).display()
                    ),
                    "move to a directory without keys of another deployment",
                ));
            }
            None => to.put_secret_sync(&name, key.expose())?,
        }
    }
    let hosts = from.known_hosts_path();
    match std::fs::read(&hosts) {
        Ok(bytes) => {
            to.write_file("known_hosts", &bytes, 0o600)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CliError::Io {
                path: hosts,
                source,
            });
        }
    }
    Ok(())
}

/// A test hook: `K0RDENT_TEST_MIGRATE_PAUSE_MS` holds the move between the verified copy and
/// the pointer, so a test can kill it there. Debug builds only.
async fn pause_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("K0RDENT_TEST_MIGRATE_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
