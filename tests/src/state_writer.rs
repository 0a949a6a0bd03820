//! The crash-safety experiment: a writer that saves a state of more than 1 MB in a loop, each
//! version with a payload derived from its generation, so a reader can tell whether what it
//! finds is exactly one of the written versions.

use std::io::Write;
use std::path::Path;

use k0rdent_core::state::{NodeRecord, render_state};
use k0rdent_core::{FileStore, state::DeploymentState, store::StoreError};

/// Nodes in each version; with the attributes below a version is about 1.2 MB.
pub const NODES: usize = 2000;

/// The payload of version `generation`: node records whose attributes depend on it.
pub fn payload(generation: u64, state: &mut DeploymentState) {
    state.nodes.clear();
    for i in 0..NODES {
        let mut n = NodeRecord {
            role: if i % 4 == 0 { "controller" } else { "worker" }.into(),
            vm_id: Some(format!("{:032x}", (generation << 20) ^ i as u64)),
            ..NodeRecord::default()
        };
        n.attributes.insert(
            "note".into(),
            serde_json::Value::from(format!(
                "generation {generation} node {i} {}",
                "x".repeat(480)
            )),
        );
        state.nodes.insert(format!("node-{i:05}"), n);
    }
}

/// Whether `state` is exactly the version its generation says (payload-wise).
pub fn is_written_version(state: &DeploymentState) -> bool {
    let mut expect = state.clone();
    // Version g carries the payload computed when saving g-1 -> g, i.e. for g - 1.
    payload(state.generation.saturating_sub(1), &mut expect);
    expect.nodes == state.nodes
}

/// Saves forever through `FileStore` (temp file, fsync, rename): crash-safe.
///
/// # Errors
/// Any store error.
pub fn run_atomic(dir: &Path, mut ready: impl Write) -> Result<(), StoreError> {
    let store = FileStore::new(dir).with_backups(2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Io {
            path: dir.into(),
            source: e,
        })?;
    let holder =
        k0rdent_core::store::LockHolder::current(k0rdent_core::id::RunId::generate(), "writer");
    let _lock = rt.block_on(k0rdent_core::store::StateStore::lock(&store, &holder))?;
    let mut state = store.load_sync()?.unwrap_or_default();
    let _ = writeln!(ready, "ready {}", state.generation);
    let _ = ready.flush();
    loop {
        payload(state.generation, &mut state);
        store.save_sync(&mut state)?;
    }
}

/// Saves forever by truncating and rewriting the file in place: NOT crash-safe. Exists to
/// show that the crash test catches a writer that is.
///
/// # Errors
/// Any I/O error.
pub fn run_in_place(dir: &Path, mut ready: impl Write) -> std::io::Result<()> {
    let path = dir.join(k0rdent_core::store::STATE_FILE);
    std::fs::create_dir_all(dir)?;
    let mut state = match std::fs::read(&path) {
        Ok(b) => k0rdent_core::state::parse_state(&b)
            .map(|m| m.state)
            .unwrap_or_default(),
        Err(_) => DeploymentState::default(),
    };
    let _ = writeln!(ready, "ready {}", state.generation);
    let _ = ready.flush();
    loop {
        payload(state.generation, &mut state);
        state.generation += 1;
        let text = render_state(&state).map_err(std::io::Error::other)?;
        let mut f = std::fs::File::create(&path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
}
