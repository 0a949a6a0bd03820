//! `k0rdent-lab` as a user meets it: arguments parsed like the CLI's (help creates nothing), a
//! non-empty directory it did not make refused and left intact, a directory it made reused
//! with only its own entries replaced, and the configuration recorded by absolute path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn lab(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_k0rdent-lab"))
        .current_dir(cwd)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every entry under `dir` (directories too) with a file's bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn help_prints_usage_and_creates_nothing() {
    let cwd = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["-h"], &["--version"]] {
        let (code, out, err) = lab(cwd.path(), args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains("k0rdent-lab"), "{args:?}: {out}");
        assert!(tree(cwd.path()).is_empty(), "{args:?} created something");
    }
    let (_, out, _) = lab(cwd.path(), &["--help"]);
    assert!(out.contains("Usage: k0rdent-lab [DIR]"), "{out}");
    // A usage error exits 1 (not clap's 2) and creates nothing either.
    let (code, _, err) = lab(cwd.path(), &["--bogus"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--bogus"), "{err}");
    let (code, _, _) = lab(cwd.path(), &["a", "b"]);
    assert_eq!(code, 1);
    assert!(tree(cwd.path()).is_empty());
}

#[test]
fn a_non_empty_directory_the_lab_did_not_make_is_refused_and_left_intact() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("mine");
    std::fs::create_dir_all(dir.join("state/keys")).unwrap();
    std::fs::write(dir.join("precious.txt"), "do not delete").unwrap();
    std::fs::write(dir.join("state/keys/ssh-admin.key"), "a real key").unwrap();
    std::fs::write(dir.join("k0rdent-lab.yaml"), "my own file").unwrap();
    let before = tree(&dir);
    let (code, _, err) = lab(cwd.path(), &["mine"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: {} is not empty and was not made by k0rdent-lab",
            dir.display()
        )),
        "{err}"
    );
    assert!(err.contains("\nhint: "), "{err}");
    assert_eq!(tree(&dir), before, "the directory was changed");
}

fn recorded_config(state: &Path) -> (String, String) {
    let text = std::fs::read_to_string(state.join("deployment-state.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    (
        v["config"]["path"].as_str().unwrap().to_owned(),
        v["cluster_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_directory_the_lab_made_is_reused_and_only_its_own_entries_are_replaced() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("lab");
    let (code, _, err) = lab(cwd.path(), &["lab"]);
    assert_eq!(code, 0, "{err}");
    // Recorded absolute although given relative, so `--state-dir` works from anywhere.
    let (path, first_id) = recorded_config(&dir.join("state"));
    assert_eq!(path, dir.join("k0rdent-lab.yaml").display().to_string());
    assert!(
        err.contains(&format!("--state-dir {}", dir.join("state").display())),
        "the closing hint names the absolute state directory: {err}"
    );

    std::fs::write(dir.join("notes.txt"), "the user's").unwrap();
    let (code, _, err) = lab(cwd.path(), &["lab"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Reusing"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "the user's"
    );
    // A new deployment (the old one's emulator is gone), not the old state reused.
    let (_, second_id) = recorded_config(&dir.join("state"));
    assert_ne!(first_id, second_id);
}
