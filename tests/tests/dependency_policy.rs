//! The dependency rules of DESIGN.md, checked against cargo's own view of the workspace:
//! cli → {azure, ssh} → {process, core}. k0rdent-core pulls in no network, SSH, WireGuard or
//! process crate, and uses only tokio's rt, sync, time and macros features; azure and ssh
//! never depend on each other; k0rdent-process depends on nothing of ours and is the only
//! product crate that spawns programs through tokio.

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
        "k0rdent-process",
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

fn metadata() -> serde_json::Value {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn package<'a>(meta: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

/// The package's own normal (non-dev, non-build) dependencies.
fn direct_deps<'a>(meta: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    package(meta, name)["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["kind"].is_null())
        .collect()
}

#[test]
fn core_uses_only_the_allowed_tokio_features() {
    let meta = metadata();
    let core = package(&meta, "k0rdent-core");
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

#[test]
fn the_process_runner_depends_on_nothing_of_ours() {
    let t = tree(&["-p", "k0rdent-process", "-e", "normal", "--prefix", "none"]);
    let ours: Vec<String> = crates(&t)
        .into_iter()
        .filter(|n| n.starts_with("k0rdent-") && n != "k0rdent-process")
        .collect();
    assert!(ours.is_empty(), "k0rdent-process depends on {ours:?}:\n{t}");
}

#[test]
fn providers_and_the_cli_run_programs_through_the_runner() {
    let meta = metadata();
    for user in ["k0rdent-azure", "k0rdent-ssh", "k0rdent-cli"] {
        assert!(
            direct_deps(&meta, user)
                .iter()
                .any(|d| d["name"] == "k0rdent-process"),
            "{user} does not depend on k0rdent-process"
        );
    }
    // cli → {azure, ssh} → {process, core}: nothing below the CLI depends on it.
    for lower in [
        "k0rdent-core",
        "k0rdent-process",
        "k0rdent-azure",
        "k0rdent-ssh",
    ] {
        assert!(
            !direct_deps(&meta, lower)
                .iter()
                .any(|d| d["name"] == "k0rdent-cli"),
            "{lower} depends on the CLI"
        );
    }
}

#[test]
fn only_the_runner_spawns_programs_with_tokio() {
    let meta = metadata();
    for name in [
        "k0rdent-core",
        "k0rdent-azure",
        "k0rdent-ssh",
        "k0rdent-cli",
    ] {
        let tokio = direct_deps(&meta, name)
            .into_iter()
            .find(|d| d["name"] == "tokio")
            .unwrap_or_else(|| panic!("{name} depends on tokio"));
        let features: Vec<&str> = tokio["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(
            !features.contains(&"process"),
            "{name} enables tokio's process feature: run programs through k0rdent-process"
        );
    }
    let runner = direct_deps(&meta, "k0rdent-process");
    let tokio = runner.iter().find(|d| d["name"] == "tokio").unwrap();
    assert!(
        tokio["features"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "process"),
        "sanity: the runner itself uses tokio's process feature"
    );
}
