//! A state directory whose tunnel is planned, for the `vpn` commands' tests: the network,
//! one node on loopback (nothing is ever contacted) and its keys.

use std::path::{Path, PathBuf};

use k0rdent_core::{FileStore, state::DeploymentState, store::StateStore};
use k0rdent_ssh::wireguard::{NodeNetworkSpec, NodeRole, NodeSpec, VmPresence, prepare_network};

/// A state directory in `dir/state` with a planned network and one node, everything in
/// `dir` owned by `nobody`.
pub async fn state_for_nobody(dir: &Path) -> PathBuf {
    let state_dir = planned(dir, &["ctl-1"]).await;
    let out = std::process::Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    state_dir
}

/// A state directory in `dir/state` with a planned network and these controllers, each with
/// the public IP 127.0.0.1; its interface is never brought up.
pub async fn planned(dir: &Path, nodes: &[&str]) -> PathBuf {
    planned_for(dir, nodes, "k0rdent-sudo0001").await
}

/// [`planned`] for the cluster `cluster_id` (its interface is `wgk0` and the id's last 8
/// letters or digits, so tests that bring it up pick ids no other test uses).
pub async fn planned_for(dir: &Path, nodes: &[&str], cluster_id: &str) -> PathBuf {
    let state_dir = dir.join("state");
    let store = FileStore::new(&state_dir);
    let mut state = DeploymentState {
        cluster_id: Some(cluster_id.into()),
        ..DeploymentState::default()
    };
    let spec = NodeNetworkSpec::new(
        "172.31.250.0/24".parse().unwrap(),
        nodes
            .iter()
            .map(|n| NodeSpec::new(*n, NodeRole::Controller))
            .collect(),
    );
    let prepared = prepare_network(&store, &spec, &state, &[], &VmPresence::Unknown)
        .await
        .unwrap();
    prepared.network.record(&mut state);
    for node in state.nodes.values_mut() {
        node.public_ip = Some("127.0.0.1".into());
    }
    store.save(&mut state).await.unwrap();
    state_dir
}
