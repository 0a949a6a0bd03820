//! Every upstream example configuration gives a k0sctl configuration that k0sctl's own rules
//! accept: the document `install_k0s` would apply for a new deployment of that configuration,
//! rendered by the CLI and read by the stand-in's strict reader (written from k0sctl's Go
//! source, not from our generator).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use k0rdent_cli::config::{self, Config};
use k0rdent_cli::k0s::{
    K0sctlHost, K0sctlInput, new_deployment_no_taints, render_k0sctl_yaml, roles_for,
};
use k0rdent_standins::k0sctl::read_cluster;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upstream-config");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 8, "fixtures missing in {}", dir.display());
    v
}

/// A new deployment of `config`: roles from `roles_for`, tunnel addresses from the WireGuard
/// network (`.1` is the hub, nodes from `.11`), VNet addresses from the subnet (Azure keeps
/// `.0` to `.3`, nodes from `.4`).
fn new_deployment(config: &Config, state_dir: &Path) -> K0sctlInput {
    let roles = roles_for(config.controllers.count, config.workers.count);
    let plans = config.nodes();
    assert_eq!(plans.len(), roles.len());
    let mut tunnel = config.network.wireguard.hosts().skip(10);
    let mut vnet = config.network.subnet.hosts().skip(3);
    let hosts = plans
        .iter()
        .zip(&roles)
        .map(|(plan, &role)| K0sctlHost {
            name: plan.name.clone(),
            role,
            ssh_address: IpAddr::V4(tunnel.next().unwrap()),
            private_address: Some(IpAddr::V4(vnet.next().unwrap())),
            user: config.ssh_user.as_str().to_owned(),
            key_path: state_dir.join("keys/admin_ed25519"),
            no_taints: new_deployment_no_taints(role),
            reset: false,
        })
        .collect();
    K0sctlInput {
        cluster_id: "k0rdent-ab12cd34".into(),
        k0s_version: config.software.k0s_version.clone(),
        known_hosts_path: state_dir.join("keys/known_hosts"),
        hosts,
    }
}

#[test]
fn every_upstream_example_renders_a_config_k0sctl_accepts() {
    let state = Path::new("/home/op/.k0rdent/k0rdent-ab12cd34");
    for path in fixtures() {
        let loaded = config::load(&path).unwrap();
        let input = new_deployment(&loaded.config, state);
        let yaml = render_k0sctl_yaml(&input).unwrap();
        let cluster = read_cluster(&yaml)
            .unwrap_or_else(|e| panic!("{}: k0sctl would refuse: {e}\n{yaml}", path.display()));
        let c = &loaded.config;
        assert_eq!(
            cluster.spec.hosts.len(),
            (c.controllers.count + c.workers.count) as usize,
            "{}",
            path.display()
        );
        assert_eq!(cluster.metadata.name, "k0rdent-ab12cd34");
        assert_eq!(
            cluster.spec.k0s.version.map(|v| v.to_string()),
            Some(c.software.k0s_version.clone())
        );
        for h in &cluster.spec.hosts {
            let o = h
                .open_ssh
                .as_ref()
                .expect("hosts are reached through openSSH");
            assert_eq!(
                o.options["StrictHostKeyChecking"],
                serde_yaml::Value::Bool(true)
            );
            assert!(
                c.network
                    .wireguard
                    .contains(&o.address.parse::<std::net::Ipv4Addr>().unwrap())
            );
            assert!(
                c.network
                    .subnet
                    .contains(&h.private_address.parse::<std::net::Ipv4Addr>().unwrap())
            );
        }
    }
}

#[test]
fn one_controller_and_no_workers_is_a_controller_worker_without_taints() {
    let dir = tempfile::tempdir().unwrap();
    let minimal =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/upstream-config/minimal.yaml");
    let text = std::fs::read_to_string(minimal).unwrap();
    let needle = "  workers:\n    count: 1\n";
    assert!(text.contains(needle), "minimal.yaml changed shape");
    let path = dir.path().join("one-node.yaml");
    std::fs::write(
        &path,
        text.replacen(needle, "  workers:\n    count: 0\n", 1),
    )
    .unwrap();
    let loaded = config::load(&path).unwrap();
    assert_eq!(
        (loaded.config.controllers.count, loaded.config.workers.count),
        (1, 0)
    );

    let yaml = render_k0sctl_yaml(&new_deployment(&loaded.config, dir.path())).unwrap();
    let cluster = read_cluster(&yaml).unwrap();
    assert_eq!(cluster.spec.hosts.len(), 1);
    assert_eq!(cluster.spec.hosts[0].role, "controller+worker");
    assert!(cluster.spec.hosts[0].no_taints);
}
