//! The directory `k0rdent-lab` works in. The lab deletes only what it wrote itself: a
//! directory it made (or found empty) gets a marker file, and a later run replaces only the
//! lab's own entries in it. Any other non-empty directory is refused, untouched.

use std::io;
use std::path::{Path, PathBuf};

/// The marker file of a lab directory.
pub const MARKER: &str = ".k0rdent-lab";

/// The configuration file the lab writes.
pub const CONFIG_FILE: &str = "k0rdent-lab.yaml";

/// The state directory the lab's deployment uses.
pub const STATE_DIR: &str = "state";

/// Everything the lab writes in its directory (configuration, state, the running lab's
/// `export` lines, pid and log, its tool wrappers and their logs); a new run replaces these
/// and nothing else.
pub const OWN_ENTRIES: [&str; 7] = [
    CONFIG_FILE,
    STATE_DIR,
    "env",
    "lab.pid",
    "lab.log",
    "bin",
    "tools",
];

const MARKER_TEXT: &str = "This directory was made by k0rdent-lab. Each run replaces \
k0rdent-lab.yaml, state/, env, lab.pid, lab.log, bin/ and tools/ here and nothing else.\n";

/// Why a directory cannot be used.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
pub enum LabDirError {
    /// The directory has other things in it and no marker.
    #[error(
        "{dir} is not empty and was not made by k0rdent-lab (no {MARKER} in it); refusing to \
         touch it"
    )]
    Foreign { dir: PathBuf },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl LabDirError {
    /// What to do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            LabDirError::Foreign { .. } => {
                "pass a new or empty DIR (a directory from an older k0rdent-lab has no marker: \
                 remove it yourself if you are sure)"
            }
            LabDirError::Io { .. } => "check the path and its permissions",
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LabDirError + '_ {
    move |source| LabDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes `dir` ready for a lab run: created (with the marker) if missing; adopted if empty; if
/// it is a lab directory, the previous run's configuration and state are removed — nothing
/// else. Returns whether the directory was reused.
///
/// # Errors
/// [`LabDirError::Foreign`] for a non-empty directory without the marker (nothing is touched),
/// or the file error.
pub fn prepare(dir: &Path) -> Result<bool, LabDirError> {
    let entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err(dir))?
            .into_iter()
            .map(|e| e.file_name())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            Vec::new()
        }
        Err(e) => return Err(io_err(dir)(e)),
    };
    let marker = dir.join(MARKER);
    if entries.is_empty() {
        std::fs::write(&marker, MARKER_TEXT).map_err(io_err(&marker))?;
        return Ok(false);
    }
    // symlink_metadata: a symlink named like the marker does not make a directory ours.
    if !std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file()) {
        return Err(LabDirError::Foreign {
            dir: dir.to_path_buf(),
        });
    }
    for name in OWN_ENTRIES {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path).map_err(io_err(&path))?,
            Ok(_) => std::fs::remove_file(&path).map_err(io_err(&path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_labs_own_entries_are_replaced() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("lab");
        assert!(!prepare(&dir).unwrap(), "created");
        std::fs::create_dir_all(dir.join(STATE_DIR).join("keys")).unwrap();
        std::fs::write(dir.join(STATE_DIR).join("keys/k"), "x").unwrap();
        std::fs::write(dir.join(CONFIG_FILE), "x").unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        assert!(prepare(&dir).unwrap(), "reused");
        assert!(!dir.join(STATE_DIR).exists() && !dir.join(CONFIG_FILE).exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn a_foreign_directory_is_refused_untouched_and_an_empty_one_adopted() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join(STATE_DIR)).unwrap();
        std::fs::write(t.path().join(STATE_DIR).join("deployment-state.yaml"), "y").unwrap();
        let e = prepare(t.path()).unwrap_err();
        assert!(matches!(e, LabDirError::Foreign { .. }), "{e}");
        assert!(
            t.path()
                .join(STATE_DIR)
                .join("deployment-state.yaml")
                .exists()
        );
        assert!(!t.path().join(MARKER).exists());
        let empty = tempfile::tempdir().unwrap();
        assert!(!prepare(empty.path()).unwrap());
        assert!(empty.path().join(MARKER).is_file());
        // A file is not a directory to work in.
        let file = t.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(matches!(prepare(&file), Err(LabDirError::Io { .. })));
    }
}
