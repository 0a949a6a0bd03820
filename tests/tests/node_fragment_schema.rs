//! Every node fragment the plan can produce passes `cloud-init schema --config-file`
//! (Debian's cloud-init package): a VM's custom data cannot change after creation, so it
//! must be valid the first time.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use k0rdent_core::{MemoryStore, state::DeploymentState};
use k0rdent_ssh::wireguard::{
    NodeNetworkSpec, NodeRole, NodeSpec, VmPresence, node_bootstrap_from_store, prepare_network,
};
use k0rdent_tests::lab::cmd;

fn schema(path: &std::path::Path) -> Result<String, String> {
    let out = cmd::output(
        "cloud-init",
        &["schema", "--config-file", path.to_str().unwrap()],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[tokio::test]
async fn every_generated_node_fragment_passes_cloud_init_schema() {
    k0rdent_tests::lab::require_tools();
    let dir = tempfile::tempdir().unwrap();
    type Case<'a> = (&'a str, &'a [(&'a str, NodeRole)], Option<u16>);
    let cases: [Case; 3] = [
        (
            "172.24.24.0/24",
            &[
                ("k0s-controller-1", NodeRole::Controller),
                ("k0s-controller-2", NodeRole::Controller),
                ("k0s-controller-3", NodeRole::Controller),
                ("k0s-worker-1", NodeRole::Worker),
                ("k0s-worker-2", NodeRole::Worker),
            ],
            None,
        ),
        (
            "192.168.100.0/24",
            &[("single", NodeRole::ControllerWorker)],
            Some(51820),
        ),
        (
            "10.10.0.0/16",
            &[("ctl", NodeRole::Controller), ("w", NodeRole::Worker)],
            Some(65535),
        ),
    ];
    let mut checked = 0;
    for (net, nodes, port) in cases {
        let store = MemoryStore::new();
        let mut spec = NodeNetworkSpec::new(
            net.parse().unwrap(),
            nodes.iter().map(|(n, r)| NodeSpec::new(*n, *r)).collect(),
        );
        spec.port = port;
        let state = DeploymentState {
            cluster_id: Some("k0rdent-schema01".into()),
            ..DeploymentState::default()
        };
        let prepared = prepare_network(&store, &spec, &state, &[], &VmPresence::Unknown)
            .await
            .unwrap();
        for (name, _) in nodes {
            let b = node_bootstrap_from_store(&store, &prepared.network, name)
                .await
                .unwrap();
            let path = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&path, b.to_bytes().expose()).unwrap();
            let out = schema(&path).unwrap_or_else(|e| panic!("{name} ({net}): {e}"));
            assert!(out.contains("Valid cloud-config"), "{out}");
            checked += 1;
        }
    }
    assert_eq!(checked, 8);

    // The validator does reject what is wrong (so the check above can fail).
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "#cloud-config\nwrite_files:\n  - path: /etc/x\n    permissions: 0600\n",
    )
    .unwrap();
    let e = schema(&bad).unwrap_err();
    assert!(e.contains("is not of type 'string'"), "{e}");
}
