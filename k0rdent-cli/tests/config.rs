//! The configuration loader: every upstream example loads as is; malformed files give
//! one-line errors naming the file, the line (when the key is in the file) and the key;
//! unknown keys are errors with a "did you mean".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use k0rdent_cli::config::{self, Priority};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/upstream-config")
}

#[test]
fn every_upstream_example_config_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let loaded = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.config.controllers.count >= 1, "{}", path.display());
        assert!(!loaded.config.nodes().is_empty());
        n += 1;
    }
    assert_eq!(n, 8, "all eight upstream examples were checked");
}

#[test]
fn upstream_values_are_read_faithfully() {
    let spot = config::load(&fixtures().join("production-arm64-southeastasia-spot.yaml")).unwrap();
    let c = &spot.config;
    assert_eq!(
        c.azure.priority,
        Priority::Spot,
        "`spot` is accepted case-insensitively"
    );
    assert!(
        spot.warnings
            .iter()
            .any(|w| w.contains("azure.vm_priority") && w.contains("etcd")),
        "Spot controllers are warned about: {:?}",
        spot.warnings
    );
    assert_eq!(c.azure.location, "southeastasia");
    assert!(config::is_arm64(&c.azure.image));
    assert_eq!(c.network.wireguard.to_string(), "172.24.24.0/24");
    let nodes = c.nodes();
    let names: Vec<_> = nodes.iter().map(|n| (n.name.as_str(), n.zone)).collect();
    assert_eq!(
        names,
        [
            ("k0s-controller-1", Some(2)),
            ("k0s-controller-2", Some(3)),
            ("k0s-controller-3", Some(2)),
            ("k0s-worker-1", Some(3)),
            ("k0s-worker-2", Some(2)),
            ("k0s-worker-3", Some(3)),
        ]
    );
    let prod = config::load(&fixtures().join("production.yaml")).unwrap();
    assert!(prod.config.kof.enabled);
    // 172.32.32.0/24 is not a private range: accepted (the examples must load) but warned.
    assert!(
        prod.warnings
            .iter()
            .any(|w| w.contains("not a private range")),
        "{:?}",
        prod.warnings
    );
}

const BASE: &str = "azure:\n  location: westeurope\n";

/// (name, document, expected key or line marker, expected text)
const MALFORMED: &[(&str, &str, &str, &str)] = &[
    ("not_yaml", "azure: [location: x\n", ":2", "not valid YAML"),
    (
        "not_a_mapping",
        "- a\n- b\n",
        ":1",
        "must be a YAML mapping",
    ),
    (
        "wrong_type_count",
        "azure:\n  location: westeurope\ncluster:\n  controllers:\n    count: three\n",
        "cluster.controllers.count",
        "invalid type",
    ),
    (
        "missing_location",
        "network:\n  vnet_prefix: 10.0.0.0/16\n",
        "azure.location",
        "is required",
    ),
    (
        "bad_location",
        "azure:\n  location: West Europe\n",
        "azure.location",
        "not an Azure location",
    ),
    (
        "zero_controllers",
        "azure:\n  location: westeurope\ncluster:\n  controllers:\n    count: 0\n",
        "cluster.controllers.count",
        "at least 1",
    ),
    (
        "negative_workers",
        "azure:\n  location: westeurope\ncluster:\n  workers:\n    count: -1\n",
        "cluster.workers.count",
        "at least 0",
    ),
    (
        "zone_out_of_range",
        "azure:\n  location: westeurope\ncluster:\n  workers:\n    zones: [1, 4]\n",
        "cluster.workers.zones",
        "zone 4",
    ),
    (
        "bad_cidr",
        "azure:\n  location: westeurope\nnetwork:\n  vnet_prefix: 10.0.0.0/33\n",
        "network.vnet_prefix",
        "not an IPv4 CIDR",
    ),
    (
        "host_bits",
        "azure:\n  location: westeurope\nnetwork:\n  subnet_prefix: 10.0.1.5/24\n",
        "network.subnet_prefix",
        "did you mean 10.0.1.0/24",
    ),
    (
        "subnet_outside_vnet",
        "azure:\n  location: westeurope\nnetwork:\n  subnet_prefix: 10.1.0.0/24\n",
        "network.subnet_prefix",
        "not inside",
    ),
    (
        "wireguard_overlaps_vnet",
        "azure:\n  location: westeurope\nnetwork:\n  wireguard_network: 10.0.5.0/24\n",
        "network.wireguard_network",
        "overlaps network.vnet_prefix",
    ),
    (
        "wireguard_overlaps_pods",
        "azure:\n  location: westeurope\nnetwork:\n  wireguard_network: 10.244.7.0/24\n",
        "network.wireguard_network",
        "pod network",
    ),
    (
        "wireguard_too_small",
        "azure:\n  location: westeurope\nnetwork:\n  wireguard_network: 192.168.100.0/30\ncluster:\n  controllers:\n    count: 3\n",
        "network.wireguard_network",
        "need 5",
    ),
    (
        "bad_image",
        "azure:\n  location: westeurope\n  vm_image: debian-12\n",
        "azure.vm_image",
        "publisher:offer:sku:version",
    ),
    (
        "bad_priority",
        "azure:\n  location: westeurope\n  vm_priority: cheap\n",
        "azure.vm_priority",
        "Regular or Spot",
    ),
    (
        "bad_eviction",
        "azure:\n  location: westeurope\n  vm_priority: Spot\n  eviction_policy: Hibernate\n",
        "azure.eviction_policy",
        "Deallocate or Delete",
    ),
    (
        "arm_image_x86_size",
        "azure:\n  location: westeurope\n  vm_image: Debian:debian-12:12-arm64:latest\n",
        "vm_sizing.controller.size",
        "arm64",
    ),
    (
        "reserved_user",
        "azure:\n  location: westeurope\nssh:\n  username: admin\n",
        "ssh.username",
        "reserved by Azure",
    ),
    (
        "bad_k0s_version",
        "azure:\n  location: westeurope\nsoftware:\n  k0s:\n    version: 1.33\n",
        "software.k0s.version",
        "k0s version",
    ),
    (
        "negative_timeout",
        "azure:\n  location: westeurope\ntimeouts:\n  ssh_connect: -5\n",
        "timeouts.ssh_connect",
        "positive",
    ),
    (
        "kof_without_domain",
        "azure:\n  location: westeurope\nkof:\n  enabled: true\n",
        "kof.regional.domain",
        "required when kof.enabled",
    ),
    (
        "wrong_type_section",
        "azure: westeurope\n",
        "azure",
        "invalid type",
    ),
    (
        "misspelt_key",
        "azure:\n  location: westeurope\ncluster:\n  contollers:\n    count: 3\n",
        "cluster.contollers",
        "did you mean cluster.controllers?",
    ),
    (
        "key_in_the_wrong_section",
        "azure:\n  location: westeurope\n  vm_size: Standard_B2s\n",
        "azure.vm_size",
        "unknown key",
    ),
    (
        "empty_size",
        "azure:\n  location: westeurope\nvm_sizing:\n  worker:\n    size: \"\"\n",
        "vm_sizing.worker.size",
        "must not be empty",
    ),
];

#[test]
fn malformed_configs_give_one_line_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    assert!(MALFORMED.len() >= 15);
    let mut report = String::new();
    for (name, doc, key, text) in MALFORMED {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, doc).unwrap();
        let err = match config::load(&path) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => e,
        };
        let msg = err.to_string();
        let first = msg.lines().next().unwrap();
        assert!(
            first.starts_with(&path.display().to_string()),
            "{name}: {msg}"
        );
        assert!(first.contains(key), "{name}: {msg} should name {key}");
        assert!(first.contains(text), "{name}: {msg} should say {text:?}");
        report.push_str(&format!(
            "{name}: {}\n",
            msg.replace(&dir.path().display().to_string(), "[DIR]")
        ));
    }
    insta::assert_snapshot!("malformed_config_messages", report);
}

#[test]
fn the_binary_exits_1_with_the_same_one_line_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for (name, doc, key, _) in MALFORMED {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, doc).unwrap();
        for cmd in ["plan", "deploy"] {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_k0rdent"))
                .env("K0RDENT_CONFIG", &path)
                .env("K0RDENT_STATE_DIR", &state)
                .arg(cmd)
                .env_remove("RUST_LOG")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name} {cmd}: {err}");
            let first = err.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("error: ") && first.contains(key),
                "{name} {cmd}: {err}"
            );
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
    }
    assert!(
        !state.exists(),
        "a bad configuration writes nothing, not even the lock"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, "azure:\n  location: westeurope\n  vm_priority: cheap\ncluster:\n  controllers:\n    count: 0\n").unwrap();
    let err = config::load(&path).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
}

#[test]
fn a_misspelt_key_is_an_error_with_its_line_and_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        format!("{BASE}  colour: blue\ncluster:\n  contollers:\n    count: 3\nextras:\n  a: 1\ntools:\n  helm: /opt/helm\n"),
    )
    .unwrap();
    let err = config::load(&path).unwrap_err();
    let p = path.display();
    assert_eq!(
        err.to_string(),
        format!(
            "{p}:3: azure.colour: unknown key; the keys here are location, vm_image, vm_priority, \
             eviction_policy, subscription_id, resource_group, arm_endpoint, os_disk_size_gb, \
             write_concurrency\n\
             {p}:5: cluster.contollers: unknown key; did you mean cluster.controllers?\n\
             {p}:7: extras: unknown key; the keys here are metadata, azure, network, vm_sizing, \
             cluster, ssh, software, timeouts, kof, azure_children, azure_csi, tools"
        )
    );
    // Without the typos the same file loads, `tools.helm` included.
    std::fs::write(&path, format!("{BASE}tools:\n  helm: /opt/helm\n")).unwrap();
    let loaded = config::load(&path).unwrap();
    assert_eq!(loaded.config.tools["helm"], PathBuf::from("/opt/helm"));
}

#[test]
fn wrong_values_name_the_line_of_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "# a comment\nazure:\n  location: westeurope\n  vm_priority: cheap\ncluster:\n  controllers:\n    count: 0\n",
    )
    .unwrap();
    let err = config::load(&path).unwrap_err();
    let lines: Vec<_> = err
        .problems
        .iter()
        .map(|p| (p.key.as_deref(), p.line))
        .collect();
    assert_eq!(
        lines,
        [
            (Some("azure.vm_priority"), Some(4)),
            (Some("cluster.controllers.count"), Some(7))
        ]
    );
    // A required key that is missing has no line.
    std::fs::write(&path, "network: {}\n").unwrap();
    let err = config::load(&path).unwrap_err();
    assert_eq!(err.problems[0].key.as_deref(), Some("azure.location"));
    assert_eq!(err.problems[0].line, None);
}

#[test]
fn the_binary_refuses_a_misspelt_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k0rdent.yaml");
    // The upstream production example with one letter missing: it would deploy 1 controller
    // instead of 3 if the key were ignored.
    let good = std::fs::read_to_string(fixtures().join("production.yaml")).unwrap();
    let bad = good.replacen("  controllers:", "  contollers:", 1);
    assert_ne!(good, bad);
    std::fs::write(&path, &bad).unwrap();
    let line = bad.lines().position(|l| l == "  contollers:").unwrap() + 1;
    let state = dir.path().join("state");
    for cmd in ["plan", "deploy"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_k0rdent"))
            .env("K0RDENT_CONFIG", &path)
            .env("K0RDENT_STATE_DIR", &state)
            .arg(cmd)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert_eq!(
            err.lines().next().unwrap(),
            format!(
                "error: {}:{line}: cluster.contollers: unknown key; did you mean cluster.controllers?",
                path.display()
            ),
            "{cmd}"
        );
        assert!(err.contains("hint: "), "{err}");
    }
    assert!(
        !state.exists(),
        "a bad configuration writes nothing, not even the lock"
    );
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = config::load(Path::new("/nonexistent/k0rdent.yaml")).unwrap_err();
    assert!(
        err.to_string().contains("cannot read the configuration"),
        "{err}"
    );
}
