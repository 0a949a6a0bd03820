//! [`MemoryStore`]: an in-memory store for tests and embedders that persist elsewhere.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{EventLog, History, KeyStore, LockHolder, StateStore, StoreError, StoreLock};
use crate::event::EventRecord;
use crate::secret::Secret;
use crate::state::DeploymentState;

#[derive(Default)]
struct Inner {
    state: Option<DeploymentState>,
    saves: u64,
    holder: Option<LockHolder>,
    lock_epoch: u64,
    events: Vec<EventRecord>,
    secrets: BTreeMap<String, Vec<u8>>,
    archives: Vec<DeploymentState>,
}

/// Keeps everything in memory, with the same compare-and-swap and lock semantics as
/// [`FileStore`](super::FileStore). Clones share the same storage.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

fn poisoned() -> StoreError {
    StoreError::Conflict {
        location: "memory".into(),
        detail: "internal lock poisoned".into(),
    }
}

impl MemoryStore {
    #[allow(missing_docs)]
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A store holding `state` (as if saved at its generation).
    pub fn with_state(state: DeploymentState) -> Self {
        let s = MemoryStore::new();
        if let Ok(mut i) = s.inner.lock() {
            i.state = Some(state);
        }
        s
    }

    /// What was saved last (or set by `with_state`/`overwrite`); `None` before that.
    pub fn state(&self) -> Option<DeploymentState> {
        self.inner.lock().ok().and_then(|i| i.state.clone())
    }

    /// Replaces the stored state behind the engine's back (tests of drift and conflicts).
    pub fn overwrite(&self, state: DeploymentState) {
        if let Ok(mut i) = self.inner.lock() {
            i.state = Some(state);
        }
    }

    /// Number of successful saves.
    pub fn saves(&self) -> u64 {
        self.inner.lock().map(|i| i.saves).unwrap_or(0)
    }

    /// The states archived by reset.
    pub fn archives(&self) -> Vec<DeploymentState> {
        self.inner
            .lock()
            .map(|i| i.archives.clone())
            .unwrap_or_default()
    }
}

struct MemoryLock {
    inner: Arc<Mutex<Inner>>,
    epoch: u64,
}

impl StoreLock for MemoryLock {
    fn check(&self) -> Result<(), StoreError> {
        let i = self.inner.lock().map_err(|_| poisoned())?;
        if i.holder.is_some() && i.lock_epoch == self.epoch {
            Ok(())
        } else {
            Err(StoreError::LockLost {
                location: "memory".into(),
                detail: "the lock was broken".into(),
            })
        }
    }
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        if let Ok(mut i) = self.inner.lock()
            && i.lock_epoch == self.epoch
        {
            i.holder = None;
        }
    }
}

#[async_trait]
impl StateStore for MemoryStore {
    fn location(&self) -> String {
        "memory".into()
    }

    async fn load(&self) -> Result<Option<DeploymentState>, StoreError> {
        Ok(self.inner.lock().map_err(|_| poisoned())?.state.clone())
    }

    async fn save(&self, state: &mut DeploymentState) -> Result<(), StoreError> {
        let mut i = self.inner.lock().map_err(|_| poisoned())?;
        let current = i.state.as_ref().map_or(0, |s| s.generation);
        if current != state.generation {
            return Err(StoreError::Conflict {
                location: "memory".into(),
                detail: format!(
                    "saving generation {} over generation {current}",
                    state.generation
                ),
            });
        }
        state.generation += 1;
        let now = chrono::Utc::now();
        state.updated_at = Some(now);
        state.created_at.get_or_insert(now);
        i.state = Some(state.clone());
        i.saves += 1;
        Ok(())
    }

    async fn lock(&self, holder: &LockHolder) -> Result<Box<dyn StoreLock>, StoreError> {
        let mut i = self.inner.lock().map_err(|_| poisoned())?;
        if let Some(h) = &i.holder {
            return Err(StoreError::Locked {
                location: "memory".into(),
                holder: Some(Box::new(h.clone())),
            });
        }
        i.holder = Some(holder.clone());
        i.lock_epoch += 1;
        Ok(Box::new(MemoryLock {
            inner: self.inner.clone(),
            epoch: i.lock_epoch,
        }))
    }

    async fn lock_holder(&self) -> Result<Option<LockHolder>, StoreError> {
        Ok(self.inner.lock().map_err(|_| poisoned())?.holder.clone())
    }

    async fn force_unlock(&self) -> Result<Option<LockHolder>, StoreError> {
        let mut i = self.inner.lock().map_err(|_| poisoned())?;
        i.lock_epoch += 1;
        Ok(i.holder.take())
    }

    async fn archive(&self, _label: &str) -> Result<String, StoreError> {
        let mut i = self.inner.lock().map_err(|_| poisoned())?;
        if let Some(s) = i.state.take() {
            i.archives.push(s);
        }
        i.events.clear();
        i.secrets.clear();
        Ok(format!("memory archive #{}", i.archives.len()))
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        if !super::valid_secret_name(name) {
            return Err(StoreError::InvalidName(name.to_owned()));
        }
        self.inner
            .lock()
            .map_err(|_| poisoned())?
            .secrets
            .insert(name.to_owned(), value.to_vec());
        Ok(())
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        Ok(self
            .inner
            .lock()
            .map_err(|_| poisoned())?
            .secrets
            .get(name)
            .cloned()
            .map(Secret::new))
    }

    async fn remove_all(&self) -> Result<(), StoreError> {
        self.inner.lock().map_err(|_| poisoned())?.secrets.clear();
        Ok(())
    }
}

#[async_trait]
impl EventLog for MemoryStore {
    async fn append_event(&self, record: &EventRecord) -> Result<(), StoreError> {
        self.inner
            .lock()
            .map_err(|_| poisoned())?
            .events
            .push(record.clone());
        Ok(())
    }

    async fn history(&self) -> Result<History, StoreError> {
        Ok(History {
            events: self.inner.lock().map_err(|_| poisoned())?.events.clone(),
            ..History::default()
        })
    }
}
