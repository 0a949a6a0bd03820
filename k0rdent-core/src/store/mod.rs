//! Where a deployment's state, private keys and event log live: three traits, so each can
//! have its own backend.
//!
//! - [`StateStore`]: the state document and the run lock (and archiving both after a reset).
//!   Saves are compare-and-swap on the state's generation, and a held lock can report that it
//!   was lost, so a remote store with leases fits behind the same trait.
//! - [`KeyStore`]: private keys, kept out of the state document.
//! - [`EventLog`]: the append-only log of every run's events.
//!
//! [`FileStore`] (the embedded default, DESIGN "State on disk") and [`MemoryStore`] (tests,
//! examples) implement all three; [`Engine::builder`](crate::engine::Engine::builder) takes
//! such a store, and [`Engine::with_state_store`](crate::engine::Engine::with_state_store)
//! takes the parts separately.

mod atomic;
mod events_log;
mod file;
mod lock;
mod memory;
mod none;
pub mod transfer;

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use events_log::parse as parse_history;
pub use file::{FileStore, STATE_FILE};
pub use memory::MemoryStore;
pub(crate) use none::{NoEventLog, NoKeyStore};

use crate::event::EventRecord;
use crate::id::RunId;
use crate::remedy::Remedy;
use crate::secret::Secret;
use crate::state::{DeploymentState, MovedTo, StatePointer};

/// Who holds (or held) the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    #[allow(missing_docs)]
    pub pid: u32,
    /// The host the process runs on: a pid means nothing on another host.
    pub host: String,
    #[allow(missing_docs)]
    pub run_id: RunId,
    /// The subcommand that took the lock (`deploy`, `reset`, ...).
    pub command: String,
    /// When the lock was taken.
    pub since: DateTime<Utc>,
    /// The user running it (`$USER`), when known: on a shared remote state the host alone
    /// does not say whom to ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl LockHolder {
    /// This process, for `run_id` running `command`.
    pub fn current(run_id: RunId, command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: hostname(),
            run_id,
            command: command.to_owned(),
            since: Utc::now(),
            user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .ok()
                .filter(|u| !u.is_empty()),
        }
    }

    /// Whether the holder is a live process on this host (`None` if on another host).
    pub fn alive_here(&self) -> Option<bool> {
        if self.host != hostname() {
            return None;
        }
        let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return Some(false);
        };
        Some(match rustix::process::test_kill_process(pid) {
            Ok(()) => true,
            // EPERM: exists but belongs to someone else.
            Err(e) => e == rustix::io::Errno::PERM,
        })
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)?;
        if let Some(user) = &self.user {
            write!(f, " as {user}")?;
        }
        write!(
            f,
            " (`{}`, run {}, since {})",
            self.command,
            self.run_id,
            self.since.format("%Y-%m-%d %H:%M:%S UTC")
        )
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// A store failure. Every variant names the file or location concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another run holds the lock.
    #[error("the state in {location} is locked by {}", holder.as_ref().map_or_else(|| "another process".to_owned(), ToString::to_string))]
    Locked {
        /// The store's [`location`](StateStore::location).
        location: String,
        /// Who holds it, if the lock says (boxed: it is large and errors are passed around).
        holder: Option<Box<LockHolder>>,
    },
    /// The state file cannot be read as a state.
    #[error("{path}: {detail}")]
    Corrupt {
        #[allow(missing_docs)]
        path: PathBuf,
        /// The parser's complaint.
        detail: String,
        /// The store's [`Remedy`]: where its backups are and how to restore one.
        remedy: String,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    #[allow(missing_docs)]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The state changed since it was loaded (compare-and-swap failed).
    #[error("{location}: the state changed since it was loaded ({detail})")]
    Conflict {
        /// The store's [`location`](StateStore::location).
        location: String,
        /// What the store saw (`another process modified it`, the generations).
        detail: String,
    },
    /// The lock held by this run was lost (broken by `state unlock --force`, lease expired).
    #[error("{location}: the state lock was lost ({detail})")]
    LockLost {
        /// The store's [`location`](StateStore::location).
        location: String,
        /// How it was lost.
        detail: String,
    },
    /// A remote store (Azure Blob Storage, ...) failed or refused a request.
    #[error("{location}: {detail}")]
    Remote {
        /// The store's [`location`](StateStore::location) (never with a secret in it).
        location: String,
        /// What failed and what the service said (never a secret).
        detail: String,
        /// What to do about it, when there is something to do.
        remedy: Option<String>,
    },
    /// The location holds a pointer left by `k0rdent state migrate`, not a state.
    #[error("{location}: the deployment moved to {}", pointer.moved_to)]
    Moved {
        /// The store's [`location`](StateStore::location).
        location: String,
        /// Where it went.
        pointer: Box<StatePointer>,
    },
    /// The store cannot do what was asked (e.g. `state migrate` into a memory store).
    #[error("{location}: {what} is not supported by this store")]
    Unsupported {
        /// The store's [`location`](StateStore::location).
        location: String,
        #[allow(missing_docs)]
        what: &'static str,
    },
    /// A secret name is not usable as a key-file name.
    #[error("invalid key name {0:?}: use [a-z0-9][a-z0-9._-]*")]
    InvalidName(String),
    /// A step asked for a private key, and the engine was given no key store.
    #[error("cannot {action} key {name}: this engine has no key store")]
    NoKeyStore {
        /// `store` or `read`.
        action: &'static str,
        /// The key asked for.
        name: String,
    },
}

impl Remedy for StoreError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            StoreError::Locked { holder, .. } => Some(match holder {
                Some(h) if h.alive_here() == Some(true) => format!(
                    "wait for it to finish or stop it (kill {}); `k0rdent state show` works meanwhile",
                    h.pid
                )
                .into(),
                _ => "if that run is gone for good, run `k0rdent state unlock`".into(),
            }),
            StoreError::Corrupt { remedy, .. } => Some(remedy.as_str().into()),
            StoreError::Remote { remedy, .. } => remedy.as_deref().map(Cow::Borrowed),
            StoreError::Conflict { .. } => {
                Some("another process wrote the state; run the command again".into())
            }
            StoreError::LockLost { .. } => Some(
                "if the store could not be reached, run again once it answers (the run resumes \
                 from its last save); otherwise another run may have taken over: check `k0rdent \
                 state show` before running again"
                    .into(),
            ),
            StoreError::NoKeyStore { .. } => Some(
                "build the engine with a key store (`EngineBuilder::keys`), or with a store that keeps keys"
                    .into(),
            ),
            StoreError::Io { path, source } => io_remedy(path, source),
            StoreError::Moved { pointer, .. } => Some(moved_remedy(&pointer.moved_to).into()),
            _ => None,
        }
    }
}

/// How to reach a deployment that moved to `to`.
pub fn moved_remedy(to: &MovedTo) -> String {
    match to {
        MovedTo::Remote { url } => format!("pass `--state {url}` (or set K0RDENT_STATE)"),
        MovedTo::Directory { host, path } if *host == hostname() => {
            format!("pass `--state-dir {}`", path.display())
        }
        MovedTo::Directory { host, path } => format!(
            "the state is on host {host}: run k0rdent there with `--state-dir {}`, or move it \
             back to a shared store there (`k0rdent state migrate --to azblob://...`)",
            path.display()
        ),
    }
}

/// What to do about a file that cannot be read or written, by what the system said (`None`
/// when the error says nothing a user can act on).
pub fn io_remedy(path: &std::path::Path, e: &std::io::Error) -> Option<Cow<'static, str>> {
    use std::io::ErrorKind;
    let path = path.display();
    Some(match e.kind() {
        ErrorKind::NotADirectory => format!(
            "a file stands where the state directory (or a directory in it) should be, on the \
             way to {path}: pass --state-dir with a directory, or move that file away"
        )
        .into(),
        ErrorKind::PermissionDenied => format!(
            "this user may not use {path}: run as the user that owns the state directory, or \
             fix its owner and mode (`ls -l` it)"
        )
        .into(),
        ErrorKind::ReadOnlyFilesystem => format!(
            "{path} is on a read-only file system: pass --state-dir with a directory on a \
             writable one"
        )
        .into(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            format!("the disk holding {path} is full: free some space and run again").into()
        }
        ErrorKind::IsADirectory => {
            format!("{path} should be a file but is a directory: move it away").into()
        }
        _ => return None,
    })
}

/// A held lock; dropping it releases the lock.
pub trait StoreLock: Send + Sync {
    /// Fails with [`StoreError::LockLost`] if the lock is no longer held.
    ///
    /// # Errors
    /// [`StoreError::LockLost`].
    fn check(&self) -> Result<(), StoreError>;
}

/// The event log, as read back.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Events in order.
    pub events: Vec<EventRecord>,
    /// Whether the last line was torn (a crash during an append) and was ignored.
    pub torn_tail: bool,
    /// Line numbers (1-based) of other lines that could not be read.
    pub unreadable_lines: Vec<usize>,
}

/// Where a deployment's state document and its run lock live.
///
/// # Guarantees expected from implementations
/// - `save` is atomic: a reader (or a crash at any instant) sees the previous or the new
///   version, never a mix.
/// - `save` is compare-and-swap: it fails with [`StoreError::Conflict`] when the stored
///   generation is not the one `state` was loaded at, and increments `state.generation` on
///   success.
/// - `load` and `lock_holder` never take the lock.
/// - Secrets never appear in the state document.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// A human description of the location (a directory path).
    fn location(&self) -> String;

    /// Reads the state; `None` if there is none yet. Never takes the lock.
    async fn load(&self) -> Result<Option<DeploymentState>, StoreError>;

    /// Writes the state atomically if its generation matches, then increments it.
    async fn save(&self, state: &mut DeploymentState) -> Result<(), StoreError>;

    /// Takes the lock for a whole run.
    async fn lock(&self, holder: &LockHolder) -> Result<Box<dyn StoreLock>, StoreError>;

    /// Who holds the lock, if anyone.
    async fn lock_holder(&self) -> Result<Option<LockHolder>, StoreError>;

    /// Breaks the lock regardless of its holder; returns who held it.
    async fn force_unlock(&self) -> Result<Option<LockHolder>, StoreError>;

    /// Moves the state out of the way after a successful reset, so the next deploy starts
    /// fresh; returns where the archive is. A store that also keeps the event log and the
    /// keys (as [`FileStore`] does, in one directory) archives the log with it and removes
    /// the keys; the engine then also asks the key store to [`remove_all`](KeyStore::remove_all).
    async fn archive(&self, label: &str) -> Result<String, StoreError>;

    /// Writes `state` exactly as it is (generation, timestamps and all) into this store,
    /// which must hold no state, only a [`StatePointer`], or this very state: the destination
    /// side of `k0rdent state migrate`. Call it holding this store's lock.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the store holds another state; the store's own errors.
    async fn save_copy(&self, state: &DeploymentState) -> Result<(), StoreError> {
        let _ = state;
        Err(StoreError::Unsupported {
            location: self.location(),
            what: "copying a state in",
        })
    }

    /// Replaces the state, which must still be at `generation`, with `pointer` (the old
    /// state is kept as a backup): the source side of `k0rdent state migrate`, its last
    /// write. Call it holding this store's lock. A store that holds this pointer already
    /// succeeds.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the state changed; the store's own errors.
    async fn save_pointer(
        &self,
        pointer: &StatePointer,
        generation: u64,
    ) -> Result<(), StoreError> {
        let _ = (pointer, generation);
        Err(StoreError::Unsupported {
            location: self.location(),
            what: "leaving a pointer",
        })
    }
}

/// Where a deployment's private keys (SSH, WireGuard) live, apart from the state document so
/// they never reach it, its backups or the event log.
///
/// Names are file-name-like (`[a-z0-9][a-z0-9._-]*`); an implementation refuses others with
/// [`StoreError::InvalidName`].
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a private key, replacing one of the same name.
    async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Reads a private key; `None` if there is none of that name.
    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError>;

    /// Removes every key (after a successful reset: keys of deleted infrastructure must not
    /// linger).
    async fn remove_all(&self) -> Result<(), StoreError>;
}

/// The append-only log of every run's events (`k0rdent state history`).
///
/// The engine appends from a background task, so a slow log never delays a step; a failed
/// append is logged and the run goes on.
#[async_trait]
pub trait EventLog: Send + Sync {
    /// Appends one event.
    async fn append_event(&self, record: &EventRecord) -> Result<(), StoreError>;

    /// Makes what was appended durable (the engine calls it at the end of every run, and when
    /// the process is about to exit). Default: appends are durable already.
    async fn flush_events(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Reads the log back (tolerating a torn last line). Never takes the lock.
    async fn history(&self) -> Result<History, StoreError>;
}

pub(crate) fn valid_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}
