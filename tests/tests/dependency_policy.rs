//! The dependency rules of DESIGN.md, checked against cargo's own view of the workspace:
//! k0rdent-core pulls in no network, SSH or WireGuard crate, and uses only tokio's rt, sync,
//! time and macros features; azure and ssh never depend on each other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

fn tree(args: &[&str]) -> String {
    let out = cargo().arg("tree").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn crates(tree: &str) -> Vec<String> {
    tree.lines()
        .filter_map(|l| {
            let name = l.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            name.split_whitespace().next().map(str::to_owned)
        })
        .collect()
}

#[test]
fn core_depends_on_no_network_ssh_or_wireguard_crate() {
    let t = tree(&["-p", "k0rdent-core", "-e", "normal", "--prefix", "none"]);
    let names = crates(&t);
    assert!(names.iter().any(|n| n == "tokio"), "sanity: {t}");
    for banned in [
        "reqwest",
        "ssh2",
        "wireguard-control",
        "hyper",
        "russh",
        "axum",
        "libc-process",
    ] {
        assert!(
            !names.iter().any(|n| n == banned),
            "k0rdent-core depends on {banned}:\n{t}"
        );
    }
}

#[test]
fn core_uses_only_the_allowed_tokio_features() {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let core = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "k0rdent-core")
        .unwrap();
    let tokio = core["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "tokio" && d["kind"].is_null())
        .expect("core depends on tokio");
    assert_eq!(tokio["uses_default_features"], false);
    for f in tokio["features"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        assert!(
            ["rt", "sync", "time", "macros"].contains(&f),
            "k0rdent-core enables tokio feature {f}"
        );
    }
    // And what cargo resolves for core alone.
    let t = tree(&[
        "-p",
        "k0rdent-core",
        "-e",
        "normal,features",
        "-i",
        "tokio",
        "--prefix",
        "none",
    ]);
    for line in t.lines().filter(|l| l.starts_with("tokio feature")) {
        let f = line
            .trim_start_matches("tokio feature \"")
            .split('"')
            .next()
            .unwrap();
        assert!(
            ["rt", "sync", "time", "macros", "tokio-macros"].contains(&f) || f.is_empty(),
            "resolved tokio feature {f}:\n{t}"
        );
    }
}

#[test]
fn azure_and_ssh_never_depend_on_each_other() {
    let azure = crates(&tree(&[
        "-p",
        "k0rdent-azure",
        "-e",
        "normal",
        "--prefix",
        "none",
    ]));
    assert!(!azure.iter().any(|n| n == "k0rdent-ssh"));
    let ssh = crates(&tree(&[
        "-p",
        "k0rdent-ssh",
        "-e",
        "normal",
        "--prefix",
        "none",
    ]));
    assert!(!ssh.iter().any(|n| n == "k0rdent-azure"));
}
