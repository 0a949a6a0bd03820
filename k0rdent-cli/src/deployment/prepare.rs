//! `prepare_deployment`: the local facts every later phase is built from, chosen once and
//! kept — the cluster id, the admin SSH key pair, the WireGuard plan (keys in `keys/`,
//! addresses and public keys in the node records) and the configuration record.
//!
//! It runs under the run's lock *before* the pipeline is built (the VMs' custom data and
//! names derive from it), and is recorded as the `prepare_deployment` step. It never
//! regenerates a key that live VMs may use: a missing key while VMs exist blocks with a
//! remedy.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::Utc;
use k0rdent_core::state::{ConfigRecord, EvidenceRecord, Status, keys};
use k0rdent_core::{
    Evidence, FileStore, Observation, Outputs, Snapshot, Step, StepContext, StepError, StepId,
    StepOutcome, StepRecord, Teardown,
    fingerprint::Fingerprint,
    state::DeploymentState,
    store::{KeyStore, StateStore},
};
use k0rdent_ssh::wireguard::{
    NodeNetworkSpec, NodeSpec, ResolvedNetwork, VmPresence, prepare_network,
};

use crate::config::Loaded;
use crate::error::CliError;

/// The id of the step that chooses the cluster id, SSH key pair and WireGuard plan once,
/// before the pipeline is built.
pub const PREPARE: &str = "prepare_deployment";
/// [`PREPARE`] as a step id.
pub const PREPARE_ID: StepId = StepId::from_static(PREPARE);

/// Settings key of the admin SSH public key.
pub const SSH_PUBLIC_KEY: &str = "ssh.public_key";

/// A new cluster id: `k0rdent-` and eight random lowercase letters and digits.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = (0..8)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!("k0rdent-{suffix}")
}

/// The WireGuard network spec of a configuration.
pub fn network_spec(loaded: &Loaded) -> NodeNetworkSpec {
    let c = &loaded.config;
    let nodes = c
        .nodes()
        .into_iter()
        .map(|n| NodeSpec::new(n.name, n.role))
        .collect();
    let mut spec = NodeNetworkSpec::new(c.network.wireguard, nodes);
    spec.vnet = vec![c.network.vnet];
    spec.port = c.network.wireguard_port;
    spec
}

/// Which nodes have VMs as far as the record knows (their `create_vms` item ever started).
pub(crate) fn vm_presence(state: &DeploymentState) -> VmPresence {
    let Some(phase) = state.phases.get("create_vms") else {
        return VmPresence::Known(BTreeSet::new());
    };
    VmPresence::Known(
        phase
            .items
            .iter()
            .filter(|(_, r)| r.status != Status::Pending || r.attempts > 0)
            .map(|(name, _)| name.clone())
            .collect(),
    )
}

/// What `prepare_deployment` produced, as its outputs (downstream fingerprints consume them).
fn outputs(state: &DeploymentState, net: &ResolvedNetwork) -> Outputs {
    let nodes: serde_json::Map<String, serde_json::Value> = net
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                serde_json::json!({"tunnel_ip": n.address.to_string(), "public_key": n.public_key.to_base64()}),
            )
        })
        .collect();
    Outputs::new()
        .with("cluster_id", state.cluster_id.clone().unwrap_or_default())
        .with(
            "ssh_public_key",
            state
                .settings
                .get(SSH_PUBLIC_KEY)
                .cloned()
                .unwrap_or_default(),
        )
        .with("hub_public_key", net.hub_public_key.to_base64())
        .with("wireguard_port", net.port)
        .with("nodes", serde_json::Value::Object(nodes))
}

fn fingerprint(loaded: &Loaded) -> Fingerprint {
    Fingerprint::builder()
        .input("network", &network_spec(loaded))
        .finish()
}

/// The admin SSH key pair: generated once into `keys/ssh-admin.key`; the public half in the
/// state. A lost private key while VMs exist blocks.
async fn ensure_ssh_key(store: &FileStore, state: &mut DeploymentState) -> Result<(), CliError> {
    let recorded = state
        .settings
        .get(SSH_PUBLIC_KEY)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let existing = store.get_secret(keys::SSH_ADMIN).await?;
    match (existing, recorded) {
        (Some(private), recorded) => {
            let public = k0rdent_ssh::ssh::keygen::public_of(private.expose()).map_err(|e| {
                CliError::usage(
                    format!(
                        "keys/{} is not an OpenSSH private key: {e}",
                        keys::SSH_ADMIN
                    ),
                    "restore it from a backup; it is the key the VMs accept",
                )
            })?;
            if let Some(r) = recorded
                && r.trim() != public.trim()
            {
                return Err(CliError::usage(
                    format!(
                        "keys/{} does not match the recorded SSH public key",
                        keys::SSH_ADMIN
                    ),
                    "restore the original key file; the VMs only accept the recorded key",
                ));
            }
            state.settings.insert(SSH_PUBLIC_KEY.into(), public.into());
        }
        (None, Some(_)) if matches!(vm_presence(state), VmPresence::Known(s) if !s.is_empty()) => {
            return Err(CliError::usage(
                format!(
                    "keys/{} is missing while VMs that accept it exist",
                    keys::SSH_ADMIN
                ),
                format!(
                    "restore keys/{} from a backup (it is never regenerated silently); or `k0rdent reset` and deploy again",
                    keys::SSH_ADMIN
                ),
            ));
        }
        (None, _) => {
            let pair = k0rdent_ssh::ssh::keygen::generate(
                state.cluster_id.as_deref().unwrap_or("k0rdent"),
            )
            .map_err(|e| {
                CliError::usage(
                    format!("could not generate the SSH key: {e}"),
                    "report this as a bug",
                )
            })?;
            store
                .put_secret(keys::SSH_ADMIN, pair.private.expose())
                .await?;
            state
                .settings
                .insert(SSH_PUBLIC_KEY.into(), pair.public.into());
        }
    }
    Ok(())
}

/// Prepares (or verifies) everything local and saves it. Called under the run's lock.
///
/// # Errors
/// A blocking error with a remedy: a lost key while VMs exist, an unusable tunnel network,
/// a state file that cannot be written.
pub async fn ensure(
    store: &FileStore,
    loaded: &Loaded,
    routes: &[k0rdent_ssh::os::LocalRoute],
) -> Result<DeploymentState, CliError> {
    let mut state = store.load().await?.unwrap_or_default();
    if state.reset.is_some() {
        // The engine refuses with the right message; prepare nothing meanwhile.
        return Ok(state);
    }
    if state.cluster_id.is_none() {
        state.cluster_id = Some(new_cluster_id());
        // Recorded before any key is stored: a remote key store names its secrets by it.
        if store.has_key_mirror() {
            store.save(&mut state).await?;
        }
    }
    state.config = Some(ConfigRecord {
        path: loaded.path.display().to_string(),
        fingerprint: Some(loaded.fingerprint.clone()),
        snapshot: serde_json::to_value(&loaded.config).unwrap_or_default(),
        recorded_at: Some(Utc::now()),
    });
    ensure_ssh_key(store, &mut state).await?;
    let spec = network_spec(loaded);
    let prepared = prepare_network(store, &spec, &state, routes, &vm_presence(&state))
        .await
        .map_err(|e| CliError::usage_from(&e))?;
    prepared.network.record(&mut state);
    let out = outputs(&state, &prepared.network);
    let id = PREPARE_ID;
    let fp = fingerprint(loaded);
    let rec = state.record_mut(&id);
    if rec.status != Status::Completed
        || rec.outputs != out
        || rec.fingerprint.as_ref() != Some(&fp)
    {
        *rec = StepRecord {
            status: Status::Completed,
            started_at: rec.started_at.or(Some(Utc::now())),
            finished_at: Some(Utc::now()),
            attempts: rec.attempts.max(1),
            fingerprint: Some(fp),
            outputs: out,
            evidence: Some(EvidenceRecord {
                observed_at: Utc::now(),
                facts: Evidence::new().with("keys", "present"),
            }),
            ..StepRecord::default()
        };
    }
    store.save(&mut state).await?;
    Ok(state)
}

/// The `prepare_deployment` step as the engine sees it: done when the recorded network and
/// keys are consistent. Its work happens in [`ensure`] before the pipeline exists.
pub struct PrepareStep {
    id: StepId,
    fingerprint: Fingerprint,
    prepared: bool,
}

impl PrepareStep {
    /// The step for `loaded`; `state` is what was recorded (possibly just now).
    pub fn new(loaded: &Loaded, state: &DeploymentState) -> Self {
        let prepared = state.cluster_id.is_some()
            && state.settings.contains_key(SSH_PUBLIC_KEY)
            && ResolvedNetwork::from_state(state).is_ok();
        PrepareStep {
            id: PREPARE_ID,
            fingerprint: fingerprint(loaded),
            prepared,
        }
    }
}

#[async_trait]
impl Step for PrepareStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn fingerprint(&self, _inputs: &k0rdent_core::step::StepInputs<'_>) -> Fingerprint {
        self.fingerprint.clone()
    }

    fn observe(&self, _snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        if self.prepared {
            Observation::done(Evidence::new().with("keys", "present"))
        } else {
            Observation::absent("no cluster id, keys or WireGuard plan recorded yet")
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        // `deploy` prepares before the pipeline is built; reaching here means it could not.
        let state = ctx.read_state(Clone::clone).await;
        let net = ResolvedNetwork::from_state(&state).map_err(|e| {
            StepError::blocked(format!("the deployment was not prepared: {e}"))
                .with_remedy("run `k0rdent deploy`, which prepares it first")
        })?;
        Ok(StepOutcome::done(
            outputs(&state, &net),
            Evidence::new().with("keys", "present"),
        ))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing(
            "its cluster id, keys and WireGuard plan live in the state directory, which reset archives",
        ))
    }
}
