//! The vaults' secrets: live secrets with their versions, and soft-deleted ones, by vault
//! and by name (names are case-insensitive; a secret keeps the case it was created with).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::Value;

/// One version of a secret.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) id: String,
    pub(crate) value: String,
    pub(crate) content_type: Option<String>,
    pub(crate) tags: Option<Value>,
    pub(crate) created: i64,
}

/// A secret: its name as created and its versions, the newest last.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub(crate) name: String,
    pub(crate) versions: Vec<Version>,
}

impl Secret {
    pub(crate) fn latest(&self) -> Option<&Version> {
        self.versions.last()
    }
}

/// A soft-deleted secret; until `ready` its deletion is still in progress (purge and
/// recover answer 409, Get Deleted Secret 404), as on the real service.
#[derive(Debug, Clone)]
pub(crate) struct Deleted {
    pub(crate) secret: Secret,
    pub(crate) deleted_date: i64,
    pub(crate) ready: Instant,
}

/// One vault.
#[derive(Debug, Default)]
pub(crate) struct Vault {
    /// By lowercase name.
    pub(crate) live: BTreeMap<String, Secret>,
    /// By lowercase name.
    pub(crate) deleted: BTreeMap<String, Deleted>,
}

/// Every vault of the emulator, created on first use.
#[derive(Debug, Default)]
pub(crate) struct Vaults {
    pub(crate) vaults: HashMap<String, Vault>,
}

impl Vaults {
    pub(crate) fn vault(&mut self, name: &str) -> &mut Vault {
        self.vaults.entry(name.to_ascii_lowercase()).or_default()
    }
}

/// Whether `name` is a valid secret name: `^[0-9a-zA-Z-]{1,127}$`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A new secret version id: 32 lowercase hex digits.
pub(crate) fn new_version() -> String {
    (0..32)
        .map(|_| char::from(b"0123456789abcdef"[fastrand::usize(..16)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_rule_is_letters_digits_and_hyphens_up_to_127() {
        assert!(valid_name("a"));
        assert!(valid_name("Abc-123"));
        assert!(valid_name(&"x".repeat(127)));
        assert!(!valid_name(""));
        assert!(!valid_name(&"x".repeat(128)));
        assert!(!valid_name("a_b"));
        assert!(!valid_name("a.b"));
        assert_eq!(new_version().len(), 32);
    }
}
