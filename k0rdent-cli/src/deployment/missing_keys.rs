//! A machine that shares a deployment's state (`--state azblob://…`, or a copied state
//! directory) but lacks its private keys: one message naming every missing key and how to
//! bring them, instead of a first missing key deep inside a phase — and never a new key in
//! place of one that live VMs use (DESIGN "State on disk").

use k0rdent_core::FileStore;
use k0rdent_core::state::{DeploymentState, keys};
use k0rdent_core::store::KeyStore;
use k0rdent_ssh::wireguard::{VmPresence, settings};

use super::prepare::{SSH_PUBLIC_KEY, vm_presence};
use crate::error::CliError;

/// The keys the recorded VMs use: the admin SSH key, the hub's WireGuard key and each
/// node's (the nodes' keys are in their VMs' custom data).
fn used_keys(state: &DeploymentState) -> Vec<String> {
    let vms = match vm_presence(state) {
        VmPresence::Known(set) => set,
        VmPresence::Unknown => state.nodes.keys().cloned().collect(),
    };
    if vms.is_empty() {
        return Vec::new();
    }
    let mut used = Vec::new();
    if state.settings.contains_key(SSH_PUBLIC_KEY) {
        used.push(keys::SSH_ADMIN.to_owned());
    }
    if state.settings.contains_key(settings::HUB_PUBLIC_KEY) {
        used.push(keys::WIREGUARD_HUB.to_owned());
    }
    used.extend(
        vms.iter()
            .filter(|n| {
                state
                    .nodes
                    .get(*n)
                    .is_some_and(|r| r.wireguard_public_key.is_some())
            })
            .map(|n| keys::wireguard_node(n)),
    );
    used
}

/// Fails with [`CliError::KeysMissing`] when keys that the recorded VMs use are not in
/// `store`.
///
/// # Errors
/// [`CliError::KeysMissing`] (exit 3), or the store's error.
pub async fn require(
    store: &FileStore,
    state: &DeploymentState,
    keys_url: Option<&str>,
) -> Result<(), CliError> {
    let mut missing = Vec::new();
    for name in used_keys(state) {
        if store.get_secret(&name).await?.is_none() {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let run_host = state
        .run
        .as_ref()
        .map(|r| r.host.clone())
        .filter(|h| !h.is_empty());
    Err(CliError::KeysMissing {
        cluster: state.cluster_id.clone().unwrap_or_default(),
        missing,
        dir: store.keys_dir(),
        run_host,
        keys_url: keys_url.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k0rdent_core::state::{NodeRecord, Status, StepRecord};

    fn deployed() -> DeploymentState {
        let mut s = DeploymentState {
            cluster_id: Some("k0rdent-t".into()),
            ..DeploymentState::default()
        };
        s.settings
            .insert(SSH_PUBLIC_KEY.into(), "ssh-ed25519 AAA".into());
        s.settings
            .insert(settings::HUB_PUBLIC_KEY.into(), "hubkey".into());
        for n in ["ctl-1", "wrk-1"] {
            s.nodes.insert(
                n.into(),
                NodeRecord {
                    wireguard_public_key: Some("k".into()),
                    ..NodeRecord::default()
                },
            );
            let item = StepRecord {
                status: Status::Completed,
                attempts: 1,
                ..StepRecord::default()
            };
            s.record_mut(&k0rdent_core::StepId::parse(&format!("create_vms/{n}")).unwrap())
                .clone_from(&item);
        }
        s
    }

    #[tokio::test]
    async fn every_key_the_vms_use_is_named_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let state = deployed();
        let e = require(&store, &state, None).await.unwrap_err();
        let CliError::KeysMissing { missing, .. } = &e else {
            panic!("{e}");
        };
        assert_eq!(
            missing,
            &[
                "ssh-admin.key",
                "wireguard-hub.key",
                "wireguard-ctl-1.key",
                "wireguard-wrk-1.key"
            ]
        );
        assert_eq!(e.exit_status(), crate::exit::ExitStatus::Blocked);
        store.put_secret_sync("ssh-admin.key", b"k").unwrap();
        let e = require(&store, &state, None).await.unwrap_err();
        assert!(!e.to_string().contains("ssh-admin"), "{e}");
        // No VMs yet: missing keys are simply generated.
        let fresh = DeploymentState {
            settings: state.settings.clone(),
            ..DeploymentState::default()
        };
        require(&store, &fresh, None).await.unwrap();
    }
}
