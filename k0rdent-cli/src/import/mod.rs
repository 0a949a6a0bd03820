//! `k0rdent import-bash-state DIR`: adopting a deployment made by the Bash tool
//! (randybias/k0rdent-azure-setup) so that nothing it created is created twice.
//!
//! [`bash`] reads its directory as it wrote it; [`mapping`] turns that into our state and
//! keys (pure); [`write()`] puts the keys into `keys/` (0600) and the state into
//! `deployment-state.yaml` through the [`FileStore`], refusing a state directory that already
//! holds a deployment.

pub mod bash;
pub mod mapping;
mod records;

use std::path::{Path, PathBuf};

use k0rdent_core::FileStore;
use k0rdent_core::store::{KeyStore, StateStore, StoreError};

pub use bash::{BashDir, BashStateError, is_bash_state, read_dir};
pub use mapping::{BASH_TOOL, ImportRefused, Imported, bash_k0s_role, map};

use crate::error::CliError;

/// The configuration an import uses: `--config`, else the Bash state's `source_config_file`
/// (relative to DIR, as the Bash tool ran from there) when it exists, else
/// `DIR/config/k0rdent.yaml`, the Bash tool's default.
pub fn config_path(explicit: Option<&Path>, bash: &BashDir) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(src) = &bash.state.source_config_file {
        let p = Path::new(src);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            bash.dir.join(p)
        };
        if p.is_file() {
            return p;
        }
    }
    bash.dir.join("config").join("k0rdent.yaml")
}

/// The error `deploy`, `plan` and the other commands give when the state directory holds
/// the Bash tool's state file instead of ours.
pub fn bash_state_found(state_file: &Path) -> CliError {
    let dir = state_file
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| PathBuf::from("DIR"), Path::to_path_buf);
    CliError::usage(
        format!(
            "{} is the Bash tool's state (k0rdent-azure-setup), not k0rdent's",
            state_file.display()
        ),
        format!(
            "import it with `k0rdent import-bash-state {} --state-dir NEW_DIR` (NEW_DIR another \
             directory than the Bash tool's state/), then use --state-dir NEW_DIR",
            dir.display()
        ),
    )
}

/// Refuses a state directory whose state file is the Bash tool's (see [`bash_state_found`]).
///
/// # Errors
/// That error.
pub fn refuse_bash_state(state_dir: &Path) -> Result<(), CliError> {
    let file = state_dir.join(k0rdent_core::store::STATE_FILE);
    match std::fs::read(&file) {
        Ok(bytes) if is_bash_state(&bytes) => Err(bash_state_found(&file)),
        _ => Ok(()),
    }
}

/// Writes an import: refuses a state directory that already holds a deployment (ours or the
/// Bash tool's) or keys that differ; then the keys (each 0600, before the state that names
/// their public halves), then the state.
///
/// # Errors
/// A refusal with its remedy, or a store error.
pub async fn write(store: &FileStore, imported: &mut Imported) -> Result<(), CliError> {
    refuse_bash_state(store.dir())?;
    if let Some(existing) = store.load().await? {
        return Err(CliError::usage(
            format!(
                "{} already holds a deployment ({})",
                store.dir().display(),
                existing.cluster_id.as_deref().unwrap_or("no cluster id")
            ),
            "import into an empty --state-dir; nothing was written",
        ));
    }
    for (name, value) in &imported.secrets {
        if let Some(old) = store.get_secret(name).await?
            && old.expose() != value.expose()
        {
            return Err(CliError::usage(
                format!("keys/{name} already exists with another key"),
                "import into an empty --state-dir; nothing was written",
            ));
        }
    }
    for (name, value) in &imported.secrets {
        store.put_secret(name, value.expose()).await?;
    }
    store.save(&mut imported.state).await.map_err(|e| match e {
        StoreError::Conflict { .. } => CliError::usage(
            format!(
                "{}: another process wrote a state meanwhile",
                store.dir().display()
            ),
            "run `k0rdent state show` to see what is there; nothing of the import was kept in \
             the state",
        ),
        e => CliError::Store(e),
    })
}
