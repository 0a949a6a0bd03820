//! The dependency rules of DESIGN.md, checked against cargo's own view of the workspace:
//! cli → {azure, ssh} → {process, core}. k0rdent-core pulls in no network, SSH, WireGuard or
//! process crate, and uses only tokio's rt, sync, time and macros features; azure and ssh
//! never depend on each other; k0rdent-process depends on nothing of ours and is the only
//! product crate that spawns programs through tokio. Test doubles live outside the product
//! crates, in the unpublished k0rdent-arm-emulator and k0rdent-testkit: no product crate is its
//! own dependency or has a test-double feature, and the emulator takes nothing from the client
//! it stands in for except in its test fixtures.

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

/// The crates that are published (everything but the test doubles and the test suites).
const PRODUCT_CRATES: &[&str] = &[
    "k0rdent-core",
    "k0rdent-process",
    "k0rdent-azure",
    "k0rdent-ssh",
    "k0rdent-cli",
];

/// The unpublished crates that hold test doubles.
const TEST_DOUBLE_CRATES: &[&str] = &["k0rdent-arm-emulator", "k0rdent-testkit"];

/// `publish = false` shows as an empty registry list in cargo metadata.
fn unpublished(package: &serde_json::Value) -> bool {
    package["publish"]
        .as_array()
        .is_some_and(|registries| registries.is_empty())
}

#[test]
fn no_product_crate_depends_on_itself_or_carries_test_doubles() {
    let meta = metadata();
    let published: Vec<&str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !unpublished(p))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in PRODUCT_CRATES {
        assert!(
            published.contains(name),
            "sanity: {name} is a published workspace crate ({published:?})"
        );
    }
    for name in published {
        let package = package(&meta, name);
        for dep in package["dependencies"].as_array().unwrap() {
            assert_ne!(
                dep["name"], name,
                "{name} lists itself among its dependencies (kind {})",
                dep["kind"]
            );
        }
        for feature in package["features"].as_object().unwrap().keys() {
            let f = feature.to_ascii_lowercase();
            for double in ["emulator", "testkit", "fake", "mock"] {
                assert!(
                    !f.contains(double),
                    "{name} has feature {feature}: test doubles belong in their own crate"
                );
            }
        }
        for double in TEST_DOUBLE_CRATES {
            assert!(
                !direct_deps(&meta, name)
                    .iter()
                    .any(|d| d["name"] == *double),
                "{name} depends on {double} outside its dev-dependencies"
            );
        }
    }
}

#[test]
fn the_test_double_crates_are_not_published() {
    let meta = metadata();
    for name in TEST_DOUBLE_CRATES {
        assert!(
            unpublished(package(&meta, name)),
            "{name} must say publish = false"
        );
    }
}

#[test]
fn azure_does_not_depend_on_hyper() {
    let meta = metadata();
    let deps = direct_deps(&meta, "k0rdent-azure");
    for server in ["hyper", "hyper-util", "http-body-util", "bytes"] {
        assert!(
            !deps.iter().any(|d| d["name"] == server),
            "k0rdent-azure depends on {server}: the HTTP server is the emulator's"
        );
    }
}

/// The emulator is written from the ARM documentation: only its `fixtures` module (ready-made
/// clients and specs for tests) may use the client crate, so the emulator cannot mirror the
/// client's api-versions, states or rules.
#[test]
fn the_emulator_names_k0rdent_azure_only_in_its_fixtures() {
    fn visit(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let src = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../arm-emulator/src"));
    let mut files = Vec::new();
    visit(src, &mut files);
    let is_fixtures = |p: &std::path::Path| {
        let rel = p.strip_prefix(src).unwrap();
        rel == std::path::Path::new("fixtures.rs") || rel.starts_with("fixtures")
    };
    let mut fixtures_use_it = false;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let names_client = text.contains("k0rdent_azure");
        if is_fixtures(file) {
            fixtures_use_it |= names_client;
        } else {
            assert!(
                !names_client,
                "{} names k0rdent_azure; only the emulator's fixtures may",
                file.display()
            );
        }
    }
    assert!(
        files.len() > 5 && fixtures_use_it,
        "sanity: read the emulator's sources ({files:?})"
    );
}
