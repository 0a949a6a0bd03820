//! The thin I/O around the pure plan: reading the keys in `keys/`, generating the missing
//! ones (private key written first, 0600), and resolving the plan into a [`ResolvedNetwork`].

use std::borrow::Cow;

use k0rdent_core::Remedy;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::{KeyStore, StoreError};

use super::key::{KeyOwner, PrivateKey};
use super::network::{ResolvedNetwork, ResolvedNode};
use super::plan::{
    FreshChoices, KeyInventory, KeyPlan, NetworkPlan, PlanError, PlanInputs, VmPresence,
    plan_network,
};
use super::spec::NodeNetworkSpec;
use crate::os::LocalRoute;

/// A key-store failure. `file` is the key's name in `keys/` (`wireguard-hub.key`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum KeyError {
    /// The store failed.
    #[error("keys/{file}: {source}")]
    Store {
        file: String,
        /// What failed (boxed: a store error is large, a key error is returned often).
        #[source]
        source: Box<StoreError>,
    },
    /// A key file does not hold a WireGuard key.
    #[error("keys/{file} is not a WireGuard private key")]
    Unreadable { file: String },
    /// A key file that must exist does not.
    #[error("keys/{file} is missing")]
    Missing { file: String },
}

/// The store's own remedy where it has one (an engine without a key store); else what to
/// check or restore in `keys/`.
impl Remedy for KeyError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            KeyError::Store { source, .. } => source
                .remedy()
                .unwrap_or_else(|| "check the permissions of the state directory".into()),
            KeyError::Unreadable { file } | KeyError::Missing { file } => format!(
                "restore keys/{file} from a backup (it holds one base64 line, as `wg genkey` writes)"
            )
            .into(),
        })
    }
}

/// Reads a private key from the store.
///
/// # Errors
/// [`KeyError::Missing`], [`KeyError::Unreadable`] or [`KeyError::Store`].
pub async fn read_private_key(
    secrets: &(impl KeyStore + ?Sized),
    owner: &KeyOwner,
) -> Result<PrivateKey, KeyError> {
    let file = owner.key_name();
    match secrets.get_secret(&file).await {
        Ok(Some(bytes)) => {
            PrivateKey::from_key_file(bytes.expose()).map_err(|_| KeyError::Unreadable { file })
        }
        Ok(None) => Err(KeyError::Missing { file }),
        Err(source) => Err(KeyError::Store {
            file,
            source: Box::new(source),
        }),
    }
}

/// Reads the public keys of the hub's and the given nodes' private keys in `keys/`.
///
/// # Errors
/// [`KeyError`] if a key file exists but cannot be read as a key.
pub async fn load_inventory(
    secrets: &(impl KeyStore + ?Sized),
    nodes: impl IntoIterator<Item = &str>,
) -> Result<KeyInventory, KeyError> {
    let mut inv = KeyInventory::default();
    let owners = std::iter::once(KeyOwner::Hub)
        .chain(nodes.into_iter().map(|n| KeyOwner::Node(n.to_owned())));
    for owner in owners {
        match read_private_key(secrets, &owner).await {
            Ok(k) => {
                inv.0.insert(owner, k.public_key());
            }
            Err(KeyError::Missing { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(inv)
}

/// Generates the keys the plan asks for — each private key is written to `keys/` before its
/// public key is used anywhere — and returns the network with every key known.
///
/// # Errors
/// [`KeyError`] if a key cannot be written.
pub async fn resolve(
    secrets: &(impl KeyStore + ?Sized),
    plan: &NetworkPlan,
) -> Result<ResolvedNetwork, KeyError> {
    let hub_public_key = ensure_key(secrets, &KeyOwner::Hub, &plan.hub_key).await?;
    let mut nodes = Vec::with_capacity(plan.nodes.len());
    for n in &plan.nodes {
        let public_key = ensure_key(secrets, &KeyOwner::Node(n.name.clone()), &n.key).await?;
        nodes.push(ResolvedNode {
            name: n.name.clone(),
            role: n.role,
            address: n.address,
            public_key,
        });
    }
    Ok(ResolvedNetwork {
        interface: plan.interface.clone(),
        network: plan.network,
        port: plan.port,
        keepalive_secs: plan.keepalive_secs,
        hub_address: plan.hub_address,
        hub_public_key,
        nodes,
    })
}

async fn ensure_key(
    secrets: &(impl KeyStore + ?Sized),
    owner: &KeyOwner,
    plan: &KeyPlan,
) -> Result<super::key::PublicKey, KeyError> {
    match plan {
        KeyPlan::Keep(k) => Ok(k.clone()),
        KeyPlan::Generate => {
            // A key written by an interrupted earlier attempt is reused, never overwritten.
            match read_private_key(secrets, owner).await {
                Ok(existing) => return Ok(existing.public_key()),
                Err(KeyError::Missing { .. }) => {}
                Err(e) => return Err(e),
            }
            let key = PrivateKey::generate();
            let file = owner.key_name();
            secrets
                .put_secret(&file, key.to_key_file().expose())
                .await
                .map_err(|source| KeyError::Store {
                    file: file.clone(),
                    source: Box::new(source),
                })?;
            tracing::info!(%owner, public_key = %key.public_key(), "generated WireGuard key pair");
            Ok(key.public_key())
        }
    }
}

/// Why preparing the network failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// Planning refused.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Keys could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl Remedy for PrepareError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            PrepareError::Plan(e) => e.remedy(),
            PrepareError::Key(e) => e.remedy(),
        }
    }
}

/// The outcome of [`prepare_network`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedNetwork {
    /// The plan (its `changes` say what this run chose or generated).
    pub plan: NetworkPlan,
    /// The network with every key known; record it with [`ResolvedNetwork::record`].
    pub network: ResolvedNetwork,
}

/// Plans the network and generates missing keys: reads `keys/`, plans (pure), writes new
/// private keys. The caller records the result in the state
/// ([`ResolvedNetwork::record`]) — through `StepContext::update_state` in a step.
///
/// # Errors
/// [`PrepareError`] with a remedy.
pub async fn prepare_network(
    secrets: &(impl KeyStore + ?Sized),
    spec: &NodeNetworkSpec,
    state: &DeploymentState,
    routes: &[LocalRoute],
    vms: &VmPresence,
) -> Result<PreparedNetwork, PrepareError> {
    // Owned names: a borrowing closure held across the await would make this future
    // unusable from `Send` contexts such as `async_trait` methods.
    let names: Vec<String> = spec.nodes.iter().map(|n| n.name.clone()).collect();
    let inventory = load_inventory(secrets, names.iter().map(String::as_str)).await?;
    let plan = plan_network(PlanInputs {
        spec,
        state,
        keys: &inventory,
        routes,
        vms,
        fresh: FreshChoices::random(),
    })?;
    let network = resolve(secrets, &plan).await?;
    Ok(PreparedNetwork { plan, network })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::spec::{NodeRole, NodeSpec};
    use k0rdent_core::FileStore;

    fn spec() -> NodeNetworkSpec {
        NodeNetworkSpec::new(
            "172.24.24.0/24".parse().unwrap(),
            vec![
                NodeSpec::new("ctl-1", NodeRole::Controller),
                NodeSpec::new("wrk-1", NodeRole::Worker),
            ],
        )
    }

    fn state() -> DeploymentState {
        DeploymentState {
            cluster_id: Some("k0rdent-abc12345".into()),
            ..DeploymentState::default()
        }
    }

    #[tokio::test]
    async fn keys_are_generated_once_into_the_key_store_and_never_into_the_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let mut st = state();
        let first = prepare_network(&store, &spec(), &st, &[], &VmPresence::Unknown)
            .await
            .unwrap();
        first.network.record(&mut st);
        for name in [
            "wireguard-hub.key",
            "wireguard-ctl-1.key",
            "wireguard-wrk-1.key",
        ] {
            let p = store.keys_dir().join(name);
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&p).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let text = serde_yaml::to_string(&st).unwrap();
        let hub = read_private_key(&store, &KeyOwner::Hub).await.unwrap();
        assert!(!text.contains(hub.to_base64().expose().as_str()));
        assert!(text.contains(&hub.public_key().to_base64()));
        // Second run: same keys, nothing to do.
        let second = prepare_network(&store, &spec(), &st, &[], &VmPresence::Unknown)
            .await
            .unwrap();
        assert_eq!(second.network, first.network);
        assert!(
            second.plan.changes.is_empty(),
            "{}",
            second.plan.describe_changes()
        );
    }

    #[tokio::test]
    async fn a_lost_node_key_blocks_while_its_vm_may_exist() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let mut st = state();
        let first = prepare_network(&store, &spec(), &st, &[], &VmPresence::Unknown)
            .await
            .unwrap();
        first.network.record(&mut st);
        std::fs::remove_file(store.keys_dir().join("wireguard-wrk-1.key")).unwrap();
        let e = prepare_network(&store, &spec(), &st, &[], &VmPresence::Unknown)
            .await
            .unwrap_err();
        assert!(
            matches!(e, PrepareError::Plan(PlanError::KeyMissing { .. })),
            "{e}"
        );
        assert!(
            e.remedy()
                .is_some_and(|r| r.contains("restore keys/wireguard-wrk-1.key")),
            "{:?}",
            e.remedy()
        );
        // Still missing: no silent regeneration happened.
        assert!(!store.keys_dir().join("wireguard-wrk-1.key").exists());
    }

    #[tokio::test]
    async fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store
            .put_secret_sync("wireguard-hub.key", b"garbage")
            .unwrap();
        let e = prepare_network(&store, &spec(), &state(), &[], &VmPresence::Unknown)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "keys/wireguard-hub.key is not a WireGuard private key"
        );
        assert_eq!(
            store
                .get_secret_sync("wireguard-hub.key")
                .unwrap()
                .unwrap()
                .expose(),
            b"garbage"
        );
    }
}
