//! The run lock: an OS advisory lock (flock) on `lock`, plus holder details in the file.
//!
//! The OS releases the lock when the holder dies, so a dead holder on the same host is taken
//! over automatically. Breaking a lock (`state unlock --force`) unlinks the file; the old
//! holder then notices on its next [`StoreLock::check`] that the path no longer refers to the
//! file it locked.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::atomic::io_err;
use super::{LockHolder, StoreError, StoreLock};

pub(crate) struct FileLock {
    // Held open: closing it releases the lock.
    file: File,
    path: PathBuf,
    ino: (u64, u64),
}

fn identity(m: &fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

impl StoreLock for FileLock {
    fn check(&self) -> Result<(), StoreError> {
        match fs::metadata(&self.path) {
            Ok(m) if identity(&m) == self.ino => Ok(()),
            Ok(_) => Err(StoreError::LockLost {
                location: self.path.display().to_string(),
                detail: "the lock file was replaced".into(),
            }),
            Err(_) => Err(StoreError::LockLost {
                location: self.path.display().to_string(),
                detail: "the lock file was removed".into(),
            }),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Clear the holder details if the file is still ours; the OS releases the lock when
        // `file` closes.
        if self.check().is_ok() {
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(s.trim()).ok()
}

fn open(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))
}

pub(crate) fn acquire(path: &Path, holder: &LockHolder) -> Result<FileLock, StoreError> {
    // A few tries: the file may be unlinked by a force-unlock between open and lock.
    for _ in 0..5 {
        let mut file = open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // The holder writes its details right after locking; give it a moment so the
                // message can name it.
                let mut who = read_holder(&mut file);
                for _ in 0..20 {
                    if who.is_some() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    who = read_holder(&mut file);
                }
                return Err(StoreError::Locked {
                    location: path
                        .parent()
                        .map_or_else(String::new, |p| p.display().to_string()),
                    holder: who.map(Box::new),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(path)(e)),
        }
        let ours = identity(&file.metadata().map_err(io_err(path))?);
        match fs::metadata(path) {
            Ok(m) if identity(&m) == ours => {}
            _ => continue,
        }
        let text = serde_json::to_string(holder).unwrap_or_default();
        file.set_len(0).map_err(io_err(path))?;
        file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
        file.write_all(text.as_bytes()).map_err(io_err(path))?;
        return Ok(FileLock {
            file,
            path: path.to_path_buf(),
            ino: ours,
        });
    }
    Err(StoreError::Conflict {
        location: path.display().to_string(),
        detail: "the lock file kept changing while taking the lock".into(),
    })
}

/// Who holds the lock now (`None` if nobody does). Never takes the lock for longer than the
/// probe.
pub(crate) fn holder(path: &Path) -> Result<Option<LockHolder>, StoreError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => {
            Ok(Some(read_holder(&mut file).unwrap_or_else(|| LockHolder {
                pid: 0,
                host: "unknown".into(),
                run_id: crate::id::RunId::from_string("unknown"),
                command: "unknown".into(),
                since: chrono::Utc::now(),
                user: None,
            })))
        }
        Err(TryLockError::Error(e)) => Err(io_err(path)(e)),
    }
}

/// Unlinks the lock file; returns who held it.
pub(crate) fn force(path: &Path) -> Result<Option<LockHolder>, StoreError> {
    let held = holder(path)?;
    match fs::remove_file(path) {
        Ok(()) => Ok(held),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(held),
        Err(e) => Err(io_err(path)(e)),
    }
}
