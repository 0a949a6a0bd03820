//! The crate root stays small: an embedder learns these names, and finds everything else in
//! the module named after it. The list below must compile (each name exists at the root) and
//! must match what `src/lib.rs` re-exports; neither may grow past [`LIMIT`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

#[allow(unused_imports)]
use k0rdent_core::{
    Engine, Evidence, FileStore, MemoryStore, Observation, Observer, Outputs, Pipeline, Remedy,
    Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
};

/// The most names the root may export (issue #8: "at most 20").
const LIMIT: usize = 20;

/// Keep in step with the `use` above.
const ROOT: &[&str] = &[
    "Engine",
    "Evidence",
    "FileStore",
    "MemoryStore",
    "Observation",
    "Observer",
    "Outputs",
    "Pipeline",
    "Remedy",
    "Snapshot",
    "Step",
    "StepContext",
    "StepError",
    "StepId",
    "StepOutcome",
    "StepRecord",
    "Teardown",
];

/// The names a `pub use` tree binds (`a::{b::C, D as E}` → `C`, `E`), or `None` for a glob.
fn bound_names(tree: &str, out: &mut Vec<String>) -> Option<()> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let inner = tree[open + 1..].strip_suffix('}')?;
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    bound_names(&inner[start..i], out)?;
                    start = i + 1;
                }
                _ => {}
            }
        }
        if !inner[start..].trim().is_empty() {
            bound_names(&inner[start..], out)?;
        }
        return Some(());
    }
    if tree.is_empty() {
        return Some(());
    }
    if tree.ends_with('*') {
        return None;
    }
    let name = match tree.split_once(" as ") {
        Some((_, alias)) => alias.trim(),
        None => tree.rsplit("::").next()?.trim(),
    };
    if name != "self" {
        out.push(name.to_owned());
    }
    Some(())
}

/// Every name `src/lib.rs` re-exports with `pub use`, plus any public item it defines itself
/// (as its first line, which makes the comparison fail).
fn root_reexports() -> Vec<String> {
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs"))
        .expect("src/lib.rs is readable");
    let code: String = lib
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut names: Vec<String> = code
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            l.starts_with("pub ") && !l.starts_with("pub mod ") && !l.starts_with("pub use ")
        })
        .map(str::to_owned)
        .collect();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("pub use ") {
        let after = &rest[at + "pub use ".len()..];
        let end = after.find(';').expect("a `pub use` ends with `;`");
        bound_names(&after[..end], &mut names)
            .unwrap_or_else(|| panic!("no glob re-exports at the root: {}", &after[..end]));
        rest = &after[end..];
    }
    names
}

#[test]
fn the_root_exports_only_the_embedder_names() {
    let exported = root_reexports();
    let unique: BTreeSet<&str> = exported.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), exported.len(), "a name is re-exported twice");
    let listed: BTreeSet<&str> = ROOT.iter().copied().collect();
    assert_eq!(
        unique, listed,
        "src/lib.rs re-exports differ from this test's list"
    );
    assert!(
        exported.len() <= LIMIT,
        "the root exports {} names (at most {LIMIT}): {exported:?}",
        exported.len()
    );
}

#[test]
fn the_parser_sees_nested_groups_aliases_and_globs() {
    let mut names = Vec::new();
    bound_names("a::{b::{C, D as E}, F, self}", &mut names).unwrap();
    assert_eq!(names, ["C", "E", "F"]);
    assert!(bound_names("a::*", &mut Vec::new()).is_none());
}
