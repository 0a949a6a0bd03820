//! `docs/configuration.md` against the configuration's serde types: every key the types read
//! (below its section) has a table row, every row is a key, and the unknown-key check ([`super::schema::KNOWN_KEYS`])
//! knows exactly the keys the types read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use super::raw::Raw;
use super::schema::KNOWN_KEYS;
use crate::doc_coverage::{doc, key_paths, table_keys};

/// The keys the raw types read, and those of them that take any key below them.
fn raw_keys() -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = serde_json::to_value(schemars::schema_for!(Raw)).unwrap();
    key_paths(&schema, &schema)
}

/// Keys named only by the unknown-key check: the known children of a free-form map
/// (`tools.k0sctl`); `*` entries are patterns, not keys.
fn named_children(maps: &BTreeSet<String>) -> BTreeSet<String> {
    KNOWN_KEYS
        .iter()
        .filter(|k| !k.contains('*'))
        .filter(|k| maps.iter().any(|m| k.starts_with(&format!("{m}."))))
        .map(|k| (*k).to_owned())
        .collect()
}

#[test]
fn every_configuration_key_has_a_row_in_configuration_md() {
    let (keys, maps) = raw_keys();
    assert!(
        keys.contains("vm_sizing.controller.size"),
        "sanity: {keys:?}"
    );
    assert!(maps.contains("tools"), "sanity: {maps:?}");
    let doc = doc("configuration.md");
    let rows: BTreeSet<&str> = table_keys(&doc).into_iter().collect();
    // Sections (`azure`, `vm_sizing.controller`) are headings; every key under them a row.
    let leaves: BTreeSet<String> = keys
        .iter()
        .filter(|k| !keys.iter().any(|other| other.starts_with(&format!("{k}."))))
        .cloned()
        .collect();
    let expected: BTreeSet<String> = leaves.union(&named_children(&maps)).cloned().collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|k| !rows.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md has no table row (| `key` | ...) for {missing:?}"
    );
    let unknown: Vec<&&str> = rows
        .iter()
        .filter(|r| !expected.contains(**r) && !keys.contains(**r))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md documents keys the configuration does not have: {unknown:?}"
    );
}

#[test]
fn the_unknown_key_check_knows_exactly_the_keys_the_types_read() {
    let (keys, maps) = raw_keys();
    let known: BTreeSet<String> = KNOWN_KEYS
        .iter()
        .filter(|k| !k.contains('*'))
        .map(|k| (*k).to_owned())
        .collect();
    let children = named_children(&maps);
    let not_known: Vec<&String> = keys.difference(&known).collect();
    assert!(
        not_known.is_empty(),
        "read by the raw types but refused as unknown keys: {not_known:?}"
    );
    let not_read: Vec<&String> = known
        .difference(&keys)
        .filter(|k| !children.contains(*k))
        .collect();
    assert!(
        not_read.is_empty(),
        "accepted by the unknown-key check but not read: {not_read:?}"
    );
}
