//! [`Evidence`]: the facts an observation found, recorded with a step so a later run can show
//! what it was verified against.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Facts that show a step's result exists (e.g. `provisioning_state: Succeeded`, `vm_id: …`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Evidence(pub BTreeMap<String, String>);

impl Evidence {
    #[allow(missing_docs)]
    pub fn new() -> Self {
        Evidence::default()
    }

    /// Adds a fact, replacing an earlier one with the same key.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.0.insert(key.to_owned(), value.to_string());
        self
    }

    /// A fact by key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether there are no facts.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
