//! What the engine uses when it was given no key store or no event log.

use async_trait::async_trait;

use super::{EventLog, History, KeyStore, StoreError};
use crate::event::EventRecord;
use crate::secret::Secret;

/// No key store: every key a step asks for is a [`StoreError::NoKeyStore`], so a missing
/// store is named instead of looking like a missing key.
pub(crate) struct NoKeyStore;

#[async_trait]
impl KeyStore for NoKeyStore {
    async fn put_secret(&self, name: &str, _value: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::NoKeyStore {
            action: "store",
            name: name.to_owned(),
        })
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        Err(StoreError::NoKeyStore {
            action: "read",
            name: name.to_owned(),
        })
    }

    async fn remove_all(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// No event log: events reach only the engine's sink.
pub(crate) struct NoEventLog;

#[async_trait]
impl EventLog for NoEventLog {
    async fn append_event(&self, _record: &EventRecord) -> Result<(), StoreError> {
        Ok(())
    }

    async fn history(&self) -> Result<History, StoreError> {
        Ok(History::default())
    }
}
