//! [`FileStore`]: the state directory on local disk (DESIGN "State on disk").

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;

mod moves;

use super::atomic::{commit, ensure_dir, io_err, sweep_temps, sync_dir, write_atomic, write_temp};
use super::lock::{FileLock, acquire};
use super::{
    EventLog, History, KeyStore, LockHolder, StateStore, StoreError, StoreLock, events_log,
};
use crate::event::EventRecord;
use crate::secret::Secret;
use crate::state::{
    DeploymentState, LegacySecret, ParseError, StatePointer, parse_state, render_next,
};

/// The state document's file name.
pub const STATE_FILE: &str = "deployment-state.yaml";
const EVENTS_FILE: &str = "deployment-events.jsonl";
const LOCK_FILE: &str = "lock";
const BACKUPS_DIR: &str = "backups";
const KEYS_DIR: &str = "keys";
const ARCHIVE_DIR: &str = "archive";
const KNOWN_HOSTS: &str = "known_hosts";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    fn of(m: &fs::Metadata) -> Self {
        FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Never loaded by this store instance.
    Unknown,
    /// Loaded (or written) and absent.
    Absent,
    /// Loaded (or written) at this identity and generation.
    Present(FileIdentity, u64),
}

struct PendingMigration {
    original: Vec<u8>,
    from: u32,
    secrets: Vec<LegacySecret>,
}

struct Tracking {
    known: Known,
    migration: Option<PendingMigration>,
}

/// The state directory: `deployment-state.yaml`, `deployment-events.jsonl`, `backups/`,
/// `keys/`, `known_hosts`, `lock` and `archive/`.
///
/// Saves write a temp file, fsync it, hard-link the previous version into `backups/`, rename
/// the temp file over the state and fsync the directory: a crash at any instant leaves the
/// previous or the new version. The file is mode 0600, `keys/` 0700 with 0600 files.
///
/// Through [`StateStore`], the file work (and its fsyncs) runs on tokio's blocking pool, never
/// on an async worker. Clones share the same tracking (they are the same store).
#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    backups: usize,
    tracking: Arc<Mutex<Tracking>>,
    events: Arc<Mutex<Option<File>>>,
    remote: Option<Remote>,
    /// The name of the local keys directory (`keys` unless [`FileStore::with_keys_dir`]).
    keys_dir_name: String,
    /// Where every stored key is also written, first ([`FileStore::with_key_mirror`]).
    mirror: Option<Arc<dyn KeyStore>>,
}

/// The state document, its lock and the event log kept elsewhere (a remote store), while the
/// keys and the local files stay in the directory.
#[derive(Clone)]
struct Remote {
    state: Arc<dyn StateStore>,
    events: Arc<dyn EventLog>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir).finish()
    }
}

fn poisoned(path: &Path) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::other("internal lock poisoned"),
    }
}

impl FileStore {
    /// A store in `dir` (created on first write) keeping the last 10 versions in `backups/`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: dir.into(),
            backups: 10,
            tracking: Arc::new(Mutex::new(Tracking {
                known: Known::Unknown,
                migration: None,
            })),
            events: Arc::new(Mutex::new(None)),
            remote: None,
            keys_dir_name: KEYS_DIR.to_owned(),
            mirror: None,
        }
    }

    /// Keeps the local key files in `name` (a directory of the state directory) instead of
    /// `keys/`: keys fetched from a remote key store go there, so they never mix with keys
    /// kept only on this machine.
    #[must_use]
    pub fn with_keys_dir(mut self, name: &str) -> Self {
        name.clone_into(&mut self.keys_dir_name);
        self
    }

    /// Writes every key stored through [`KeyStore::put_secret`] to `mirror` first (a remote
    /// key store such as Azure Key Vault), then to the local keys directory, and removes it
    /// there too in [`KeyStore::remove_all`]. Reads stay local: the caller fills the
    /// directory from the mirror at start ([`FileStore::sweep_keys_sync`], then
    /// [`FileStore::put_secret_sync`]), so steps that hand key *paths* to ssh or wg-quick
    /// keep working.
    #[must_use]
    pub fn with_key_mirror(mut self, mirror: Arc<dyn KeyStore>) -> Self {
        self.mirror = Some(mirror);
        self
    }

    /// Whether stored keys also go to a remote key store ([`FileStore::with_key_mirror`]).
    pub fn has_key_mirror(&self) -> bool {
        self.mirror.is_some()
    }

    /// Empties the local keys directory (recreating it 0700), so nothing stale stays in a
    /// directory that mirrors a remote key store.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the directory.
    pub fn sweep_keys_sync(&self) -> Result<(), StoreError> {
        self.remove_keys_sync()?;
        ensure_dir(&self.dir, 0o700)?;
        ensure_dir(&self.keys_dir(), 0o700)
    }

    /// Keeps the state document, the run lock and the event log in `state` and `events` (a
    /// remote store such as Azure Blob Storage) instead of the directory; the private keys,
    /// `known_hosts` and the other local files stay in the directory. Every [`StateStore`]
    /// and [`EventLog`] call goes to them; an archive archives there and removes the local
    /// keys.
    #[must_use]
    pub fn with_remote_state(
        mut self,
        state: Arc<dyn StateStore>,
        events: Arc<dyn EventLog>,
    ) -> Self {
        self.remote = Some(Remote { state, events });
        self
    }

    /// Whether the state lives elsewhere ([`FileStore::with_remote_state`]).
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Keeps the last `n` versions in `backups/`.
    #[must_use]
    pub fn with_backups(mut self, n: usize) -> Self {
        self.backups = n;
        self
    }

    #[allow(missing_docs)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file's path.
    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The pinned host keys file handed to k0sctl (`SSH_KNOWN_HOSTS`).
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join(KNOWN_HOSTS)
    }

    /// `keys/` (or the [`FileStore::with_keys_dir`] name): private keys, one 0600 file each
    /// in a 0700 directory.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.join(&self.keys_dir_name)
    }

    /// Writes a file in the state directory atomically (e.g. `known_hosts`).
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the file.
    pub fn write_file(&self, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, StoreError> {
        if !super::valid_secret_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        ensure_dir(&self.dir, 0o700)?;
        let path = self.dir.join(name);
        write_atomic(&path, bytes, mode)?;
        Ok(path)
    }

    /// Reads the state (synchronously). See [`StateStore::load`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] (file left untouched) or [`StoreError::Io`].
    pub fn load_sync(&self) -> Result<Option<DeploymentState>, StoreError> {
        let path = self.state_path();
        let (bytes, meta) = match File::open(&path) {
            Ok(mut f) => {
                let meta = f.metadata().map_err(io_err(&path))?;
                let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
                io::Read::read_to_end(&mut f, &mut bytes).map_err(io_err(&path))?;
                (bytes, meta)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.tracking.lock().map_err(|_| poisoned(&path))?.known = Known::Absent;
                return Ok(None);
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let migrated = match parse_state(&bytes) {
            Ok(m) => m,
            Err(ParseError::Moved(pointer)) => {
                self.tracking.lock().map_err(|_| poisoned(&path))?.known = Known::Unknown;
                return Err(StoreError::Moved {
                    location: self.dir.display().to_string(),
                    pointer,
                });
            }
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    detail: e.to_string(),
                    remedy: self.corrupt_remedy(),
                });
            }
        };
        let mut t = self.tracking.lock().map_err(|_| poisoned(&path))?;
        t.known = Known::Present(FileIdentity::of(&meta), migrated.state.generation);
        t.migration = migrated.from_schema.map(|from| PendingMigration {
            original: bytes,
            from,
            secrets: migrated.secrets,
        });
        Ok(Some(migrated.state))
    }

    fn corrupt_remedy(&self) -> String {
        let newest = self.newest_backup();
        match newest {
            Some(b) => format!(
                "the file was left untouched; restore the newest backup ({}) or move the file away to start over",
                b.display()
            ),
            None => "the file was left untouched; fix it or move it away to start over".to_owned(),
        }
    }

    fn backups(&self) -> Vec<PathBuf> {
        let dir = self.dir.join(BACKUPS_DIR);
        let Ok(rd) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut v: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix("deployment-state."))
                    .and_then(|n| n.strip_suffix(".yaml"))
                    .is_some_and(|g| g.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        v.sort();
        v
    }

    fn newest_backup(&self) -> Option<PathBuf> {
        self.backups().pop()
    }

    /// Writes the state (synchronously). See [`StateStore::save`].
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the file changed since it was loaded, or I/O errors.
    pub fn save_sync(&self, state: &mut DeploymentState) -> Result<(), StoreError> {
        let path = self.state_path();
        ensure_dir(&self.dir, 0o700)?;
        let mut t = self.tracking.lock().map_err(|_| poisoned(&path))?;
        let on_disk = match fs::metadata(&path) {
            Ok(m) => Some(FileIdentity::of(&m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path)(e)),
        };
        let conflict = |detail: &str| StoreError::Conflict {
            location: path.display().to_string(),
            detail: detail.to_owned(),
        };
        match (t.known, on_disk) {
            (Known::Unknown, Some(_)) => return Err(conflict("it was not loaded before saving")),
            (Known::Absent | Known::Unknown, None) => {
                if state.generation != 0 {
                    return Err(conflict("the file was removed"));
                }
            }
            (Known::Absent, Some(_)) => {
                return Err(conflict("another process created it"));
            }
            (Known::Present(..), None) => return Err(conflict("the file was removed")),
            (Known::Present(id, generation), Some(now)) => {
                if id != now {
                    return Err(conflict("another process modified it"));
                }
                if generation != state.generation {
                    return Err(conflict(&format!(
                        "saving generation {} over generation {generation}",
                        state.generation
                    )));
                }
            }
        }
        if let Some(m) = t.migration.take()
            && let Err(e) = self.finish_migration(&m)
        {
            t.migration = Some(m);
            return Err(e);
        }
        let previous = state.generation;
        let text = match render_next(state) {
            Ok(t) => t,
            Err(e) => {
                return Err(StoreError::Io {
                    path,
                    source: io::Error::other(e),
                });
            }
        };
        let result = (|| {
            let tmp = write_temp(&path, text.as_bytes(), 0o600)?;
            let mut backed_up = None;
            if on_disk.is_some() && self.backups > 0 {
                let bdir = self.dir.join(BACKUPS_DIR);
                ensure_dir(&bdir, 0o700)?;
                // A hard link keeps the previous version without copying it: the rename below
                // replaces the directory entry, not the file the link points to. A failed
                // backup does not stop the save; it is logged.
                let link = bdir.join(format!("deployment-state.{previous:010}.yaml"));
                match fs::hard_link(&path, &link) {
                    Ok(()) => backed_up = Some(bdir),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        tracing::warn!(backup = %link.display(), error = %e, "could not keep a backup")
                    }
                }
            }
            commit(&tmp, &path)?;
            // The backup's directory entry is durable too (the state's own directory was
            // fsynced by `commit`).
            if let Some(bdir) = backed_up {
                sync_dir(&bdir)?;
            }
            let m = fs::metadata(&path).map_err(io_err(&path))?;
            Ok(FileIdentity::of(&m))
        })();
        match result {
            Ok(id) => {
                t.known = Known::Present(id, state.generation);
                drop(t);
                self.prune_backups();
                Ok(())
            }
            Err(e) => {
                state.generation = previous;
                Err(e)
            }
        }
    }

    fn prune_backups(&self) {
        let all = self.backups();
        if all.len() > self.backups {
            for old in &all[..all.len() - self.backups] {
                let _ = fs::remove_file(old);
            }
        }
    }

    fn finish_migration(&self, m: &PendingMigration) -> Result<(), StoreError> {
        let bdir = self.dir.join(BACKUPS_DIR);
        ensure_dir(&bdir, 0o700)?;
        let name = format!(
            "pre-migration-schema-{}.{}.yaml",
            m.from,
            Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        write_atomic(&bdir.join(name), &m.original, 0o600)?;
        for s in &m.secrets {
            let path = self.keys_dir().join(&s.name);
            if path.exists() {
                tracing::warn!(key = %s.name, "legacy key not moved: a key with this name exists");
                continue;
            }
            self.put_secret_sync(&s.name, s.value.expose())?;
        }
        Ok(())
    }

    /// Stores a private key in the local keys directory (0600), and only there (no
    /// [mirror](FileStore::with_key_mirror)).
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] or I/O errors.
    pub fn put_secret_sync(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        if !super::valid_secret_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let dir = self.keys_dir();
        ensure_dir(&self.dir, 0o700)?;
        ensure_dir(&dir, 0o700)?;
        write_atomic(&dir.join(name), value, 0o600)
    }

    /// Reads a private key from `keys/`.
    ///
    /// # Errors
    /// [`StoreError::InvalidName`] or I/O errors.
    pub fn get_secret_sync(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        if !super::valid_secret_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        let path = self.keys_dir().join(name);
        match fs::read(&path) {
            Ok(b) => Ok(Some(Secret::new(b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Removes the key directory with every key in it.
    fn remove_keys_sync(&self) -> Result<(), StoreError> {
        let keys = self.keys_dir();
        match fs::remove_dir_all(&keys) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&keys)(e)),
        }
    }

    fn archive_sync(&self, label: &str) -> Result<String, StoreError> {
        let cluster = self
            .load_sync()
            .ok()
            .flatten()
            .and_then(|s| s.cluster_id)
            .unwrap_or_else(|| "deployment".into());
        let dest = self.dir.join(ARCHIVE_DIR).join(format!(
            "{cluster}-{}-{label}",
            Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        ensure_dir(&dest, 0o700)?;
        for name in [STATE_FILE, EVENTS_FILE, BACKUPS_DIR] {
            let from = self.dir.join(name);
            match fs::rename(&from, dest.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&from)(e)),
            }
        }
        // Keys of deleted infrastructure are useless and must not linger in archives.
        self.remove_keys_sync()?;
        let _ = fs::remove_file(self.known_hosts_path());
        if let Ok(mut e) = self.events.lock() {
            *e = None;
        }
        if let Ok(mut t) = self.tracking.lock() {
            t.known = Known::Absent;
            t.migration = None;
        }
        Ok(dest.display().to_string())
    }
}

/// Runs file work on tokio's blocking pool (fsync must not stall an async worker).
async fn blocking<T: Send + 'static>(
    store: &FileStore,
    f: impl FnOnce(&FileStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let this = store.clone();
    tokio::task::spawn_blocking(move || f(&this))
        .await
        .map_err(|e| StoreError::Io {
            path: store.dir.clone(),
            source: io::Error::other(format!("the state file task failed: {e}")),
        })?
}

#[async_trait]
impl StateStore for FileStore {
    fn location(&self) -> String {
        match &self.remote {
            Some(r) => r.state.location(),
            None => self.dir.display().to_string(),
        }
    }

    async fn load(&self) -> Result<Option<DeploymentState>, StoreError> {
        if let Some(r) = &self.remote {
            return r.state.load().await;
        }
        blocking(self, FileStore::load_sync).await
    }

    async fn save(&self, state: &mut DeploymentState) -> Result<(), StoreError> {
        if let Some(r) = &self.remote {
            return r.state.save(state).await;
        }
        // The state moves to the blocking pool and back (a copy of a big state costs more than
        // the save's own CPU work). Only a panic in the save could keep it there: then the
        // last saved version is read back, so the caller never goes on with an empty state.
        let mut moved = std::mem::take(state);
        let this = self.clone();
        match tokio::task::spawn_blocking(move || {
            let r = this.save_sync(&mut moved);
            (moved, r)
        })
        .await
        {
            Ok((back, r)) => {
                *state = back;
                r
            }
            Err(e) => {
                let dir = self.dir.clone();
                *state = blocking(self, FileStore::load_sync)
                    .await?
                    .unwrap_or_default();
                Err(StoreError::Io {
                    path: dir,
                    source: io::Error::other(format!("the state file task failed: {e}")),
                })
            }
        }
    }

    async fn lock(&self, holder: &LockHolder) -> Result<Box<dyn StoreLock>, StoreError> {
        if let Some(r) = &self.remote {
            return r.state.lock(holder).await;
        }
        let holder = holder.clone();
        blocking(self, move |s| {
            ensure_dir(&s.dir, 0o700)?;
            let lock: FileLock = acquire(&s.dir.join(LOCK_FILE), &holder)?;
            sweep_temps(&s.dir);
            Ok(Box::new(lock) as Box<dyn StoreLock>)
        })
        .await
    }

    async fn lock_holder(&self) -> Result<Option<LockHolder>, StoreError> {
        if let Some(r) = &self.remote {
            return r.state.lock_holder().await;
        }
        super::lock::holder(&self.dir.join(LOCK_FILE))
    }

    async fn force_unlock(&self) -> Result<Option<LockHolder>, StoreError> {
        if let Some(r) = &self.remote {
            return r.state.force_unlock().await;
        }
        super::lock::force(&self.dir.join(LOCK_FILE))
    }

    async fn save_copy(&self, state: &DeploymentState) -> Result<(), StoreError> {
        if let Some(r) = &self.remote {
            return r.state.save_copy(state).await;
        }
        let state = state.clone();
        blocking(self, move |s| s.save_copy_sync(&state)).await
    }

    async fn save_pointer(
        &self,
        pointer: &StatePointer,
        generation: u64,
    ) -> Result<(), StoreError> {
        if let Some(r) = &self.remote {
            return r.state.save_pointer(pointer, generation).await;
        }
        let pointer = pointer.clone();
        blocking(self, move |s| s.save_pointer_sync(&pointer, generation)).await
    }

    async fn archive(&self, label: &str) -> Result<String, StoreError> {
        if let Some(r) = &self.remote {
            let at = r.state.archive(label).await?;
            blocking(self, |s| {
                s.remove_keys_sync()?;
                let _ = fs::remove_file(s.known_hosts_path());
                Ok(())
            })
            .await?;
            return Ok(at);
        }
        let label = label.to_owned();
        blocking(self, move |s| s.archive_sync(&label)).await
    }
}

#[async_trait]
impl KeyStore for FileStore {
    async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        if !super::valid_secret_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        // The mirror first: a key that could not be kept remotely is never used.
        if let Some(m) = &self.mirror {
            m.put_secret(name, value).await?;
        }
        let (name, value) = (name.to_owned(), Secret::new(value.to_vec()));
        blocking(self, move |s| s.put_secret_sync(&name, value.expose())).await
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        let name = name.to_owned();
        blocking(self, move |s| s.get_secret_sync(&name)).await
    }

    async fn remove_all(&self) -> Result<(), StoreError> {
        if let Some(m) = &self.mirror {
            m.remove_all().await?;
        }
        blocking(self, FileStore::remove_keys_sync).await
    }
}

#[async_trait]
impl EventLog for FileStore {
    async fn append_event(&self, record: &EventRecord) -> Result<(), StoreError> {
        if let Some(r) = &self.remote {
            return r.events.append_event(record).await;
        }
        let record = record.clone();
        blocking(self, move |s| {
            let path = s.dir.join(EVENTS_FILE);
            let mut guard = s.events.lock().map_err(|_| poisoned(&path))?;
            if guard.is_none() {
                ensure_dir(&s.dir, 0o700)?;
                *guard = Some(events_log::open_for_append(&path)?);
            }
            match guard.as_mut() {
                Some(f) => events_log::append(f, &path, &record),
                None => Ok(()),
            }
        })
        .await
    }

    async fn flush_events(&self) -> Result<(), StoreError> {
        if let Some(r) = &self.remote {
            return r.events.flush_events().await;
        }
        blocking(self, |s| {
            let path = s.dir.join(EVENTS_FILE);
            let guard = s.events.lock().map_err(|_| poisoned(&path))?;
            match guard.as_ref() {
                Some(f) => f.sync_data().map_err(io_err(&path)),
                None => Ok(()),
            }
        })
        .await
    }

    async fn history(&self) -> Result<History, StoreError> {
        if let Some(r) = &self.remote {
            return r.events.history().await;
        }
        let path = self.dir.join(EVENTS_FILE);
        blocking(self, move |_| events_log::read(&path)).await
    }
}
