//! Crash-safe file replacement: temp file, fsync, rename, directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to a new temp file next to `dest` (mode `mode`) and fsyncs it.
pub(crate) fn write_temp(dest: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, StoreError> {
    let dir = dest.parent().unwrap_or_else(|| Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    Ok(tmp)
}

/// Renames `tmp` over `dest` and fsyncs the directory so the rename is durable.
pub(crate) fn commit(tmp: &Path, dest: &Path) -> Result<(), StoreError> {
    if let Err(e) = fs::rename(tmp, dest) {
        let _ = fs::remove_file(tmp);
        return Err(io_err(dest)(e));
    }
    sync_dir(dest.parent().unwrap_or_else(|| Path::new(".")))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Replaces `dest` with `bytes` atomically.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let tmp = write_temp(dest, bytes, mode)?;
    commit(&tmp, dest)
}

/// Creates a directory (and parents) with `mode` if missing.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new().recursive(true).mode(mode).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Removes temp files a crash left behind (`.NAME.tmp-*`).
pub(crate) fn sweep_temps(dir: &Path) {
    let Ok(rd) = fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = fs::remove_file(e.path());
        }
    }
}
