//! The two writes of `k0rdent state migrate` on the state directory: a copied state written
//! in (the destination side) and the pointer left behind (the source side), plus reading a
//! pointer without parsing a whole state.

use std::fs;
use std::io;

use super::{BACKUPS_DIR, FileIdentity, FileStore, Known, poisoned};
use crate::state::{DeploymentState, ParseError, StatePointer, parse_state, render_state};
use crate::store::StoreError;
use crate::store::atomic::{ensure_dir, io_err, sync_dir, write_atomic};

impl FileStore {
    /// The pointer `k0rdent state migrate` left in this directory, if the state file is one
    /// (cheap for a real state: only a file with a top-level `moved_to:` line is parsed).
    ///
    /// # Errors
    /// [`StoreError::Io`], or [`StoreError::Corrupt`] for a pointer that cannot be read.
    pub fn pointer(&self) -> Result<Option<StatePointer>, StoreError> {
        let path = self.state_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // A file where the directory should be holds no pointer; loading the state says
            // what is wrong with the path.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        if !bytes
            .split(|b| *b == b'\n')
            .any(|l| l.starts_with(b"moved_to:"))
        {
            return Ok(None);
        }
        match parse_state(&bytes) {
            Err(ParseError::Moved(p)) => Ok(Some(*p)),
            Ok(_) => Ok(None),
            Err(e) => Err(StoreError::Corrupt {
                path,
                detail: e.to_string(),
                remedy: self.corrupt_remedy(),
            }),
        }
    }

    /// Writes a state copied from another store (synchronously). See
    /// [`StateStore::save_copy`](crate::store::StateStore::save_copy).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the directory holds another deployment; I/O errors.
    pub fn save_copy_sync(&self, state: &DeploymentState) -> Result<(), StoreError> {
        let path = self.state_path();
        ensure_dir(&self.dir, 0o700)?;
        let mut t = self.tracking.lock().map_err(|_| poisoned(&path))?;
        match fs::read(&path) {
            Ok(bytes) => match parse_state(&bytes) {
                Err(ParseError::Moved(_)) => {}
                Ok(m) if m.state == *state => {}
                Ok(m) => {
                    return Err(StoreError::Conflict {
                        location: self.dir.display().to_string(),
                        detail: format!(
                            "it holds a deployment of its own (cluster {}, generation {})",
                            m.state.cluster_id.as_deref().unwrap_or("unnamed"),
                            m.state.generation
                        ),
                    });
                }
                Err(e) => {
                    return Err(StoreError::Corrupt {
                        path,
                        detail: e.to_string(),
                        remedy: self.corrupt_remedy(),
                    });
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        let text = render_state(state).map_err(|e| StoreError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&path, text.as_bytes(), 0o600)?;
        let m = fs::metadata(&path).map_err(io_err(&path))?;
        t.known = Known::Present(FileIdentity::of(&m), state.generation);
        t.migration = None;
        Ok(())
    }

    /// Replaces the state with a pointer (synchronously). See [`StateStore::save_pointer`](crate::store::StateStore::save_pointer).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the state is gone or at another generation; I/O errors.
    pub fn save_pointer_sync(
        &self,
        pointer: &StatePointer,
        generation: u64,
    ) -> Result<(), StoreError> {
        let path = self.state_path();
        let mut t = self.tracking.lock().map_err(|_| poisoned(&path))?;
        let conflict = |detail: String| StoreError::Conflict {
            location: self.dir.display().to_string(),
            detail,
        };
        match fs::read(&path) {
            Ok(bytes) => match parse_state(&bytes) {
                Ok(m) if m.state.generation == generation => {}
                Ok(m) => {
                    return Err(conflict(format!(
                        "leaving a pointer over generation {}, expected {generation}",
                        m.state.generation
                    )));
                }
                Err(ParseError::Moved(p)) if p.moved_to == pointer.moved_to => return Ok(()),
                Err(ParseError::Moved(p)) => {
                    return Err(conflict(format!("it already points to {}", p.moved_to)));
                }
                Err(e) => return Err(conflict(e.to_string())),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(conflict("the state file was removed".into()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        }
        // The state as it was stays in backups/, as after any save.
        let bdir = self.dir.join(BACKUPS_DIR);
        ensure_dir(&bdir, 0o700)?;
        let link = bdir.join(format!("deployment-state.{generation:010}.yaml"));
        match fs::hard_link(&path, &link) {
            Ok(()) => sync_dir(&bdir)?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&link)(e)),
        }
        let text = pointer.render().map_err(|e| StoreError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        write_atomic(&path, text.as_bytes(), 0o600)?;
        t.known = Known::Unknown;
        t.migration = None;
        Ok(())
    }
}
