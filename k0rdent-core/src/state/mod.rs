//! The recorded state of one deployment: the typed form of `deployment-state.yaml`.
//!
//! The state records what was done (per step: status, fingerprint, outputs, evidence,
//! journal), who the deployment belongs to (the cloud identity) and per-node facts that must
//! never change once chosen (tunnel addresses, public keys, pinned host keys). It never holds
//! secrets: private keys live in the store's key directory.

mod migrate;
mod pointer;
mod record;
pub mod yaml;

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use migrate::{LegacySecret, Migrated, ParseError, parse_state, render_next, render_state};
pub use pointer::{MovedTo, POINTER_SCHEMA_VERSION, StatePointer};
pub use record::{EvidenceRecord, Journal, JournalEntry, Outputs, Status, StepRecord};

use crate::fingerprint::Digest;
use crate::id::{RunId, StepId};

/// The schema this build writes. Older schemas are migrated on load; newer ones are refused.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole recorded state of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentState {
    /// Schema of this document; see [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Incremented by every save; saves are compare-and-swap on it.
    pub generation: u64,
    /// The deployment's cluster id (chosen once by the first step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// When the state was first written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// When the state was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// The configuration the deployment was last run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigRecord>,
    /// The Azure identity the deployment lives in; a later run against another one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<CloudIdentity>,
    /// The last (or current) run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunRecord>,
    /// Set while a reset is in progress; `deploy` refuses while it is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetMarker>,
    /// The machine whose WireGuard interface is the hub (the nodes answer one at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpn_hub: Option<VpnHub>,
    /// Per-phase records (`phases.<phase>`, sub-steps under `items`).
    #[serde(default)]
    pub phases: BTreeMap<String, StepRecord>,
    /// Per-node facts that are chosen once and kept.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeRecord>,
    /// Deployment-wide choices made once and kept (e.g. `wireguard.port`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl Default for DeploymentState {
    fn default() -> Self {
        DeploymentState {
            schema_version: SCHEMA_VERSION,
            generation: 0,
            cluster_id: None,
            created_at: None,
            updated_at: None,
            config: None,
            azure: None,
            run: None,
            reset: None,
            vpn_hub: None,
            phases: BTreeMap::new(),
            nodes: BTreeMap::new(),
            settings: BTreeMap::new(),
        }
    }
}

impl DeploymentState {
    /// The record of a step or sub-step, if any.
    pub fn record(&self, id: &StepId) -> Option<&StepRecord> {
        let phase = self.phases.get(id.phase())?;
        match id.item() {
            None => Some(phase),
            Some(item) => phase.items.get(item),
        }
    }

    /// The record of a step or sub-step, created (pending) if missing.
    pub fn record_mut(&mut self, id: &StepId) -> &mut StepRecord {
        let phase = self.phases.entry(id.phase().to_owned()).or_default();
        match id.item() {
            None => phase,
            Some(item) => phase.items.entry(item.to_owned()).or_default(),
        }
    }

    /// The status of a step (`pending` when it has no record).
    pub fn status(&self, id: &StepId) -> Status {
        self.record(id).map_or(Status::Pending, |r| r.status)
    }

    /// Recomputes a phase's status from its items, for phases that have items but no step
    /// of their own: all completed → completed, any failed → failed, all skipped → skipped,
    /// all pending → pending, otherwise in progress.
    pub fn summarize_phase(&mut self, phase: &str) {
        let Some(rec) = self.phases.get_mut(phase) else {
            return;
        };
        if rec.items.is_empty() {
            return;
        }
        let all = |s: Status| rec.items.values().all(|r| r.status == s);
        let any = |s: Status| rec.items.values().any(|r| r.status == s);
        let status = if all(Status::Completed) {
            Status::Completed
        } else if any(Status::Failed) {
            Status::Failed
        } else if all(Status::Skipped) {
            Status::Skipped
        } else if all(Status::Pending) {
            Status::Pending
        } else {
            Status::InProgress
        };
        rec.status = status;
    }

    /// A setting chosen earlier in this deployment, deserialized.
    pub fn setting<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.settings
            .get(key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// The configuration a deployment was run with (no secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigRecord {
    /// Path of the configuration file as given.
    pub path: String,
    /// Digest of the file's bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Digest>,
    /// A secret-free snapshot of the resolved configuration, to report what changed.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub snapshot: serde_json::Value,
    /// When it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// The cloud identity a deployment lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // fields named after what they hold
pub struct CloudIdentity {
    pub subscription_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub arm_endpoint: String,
    pub location: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Everything asked for converged.
    Succeeded,
    /// A step failed after its retries.
    Failed,
    /// A gate, an unknown observation or a missing confirmation stopped the run.
    Blocked,
    /// Interrupted (Ctrl-C, SIGTERM, a watched gate failing).
    Interrupted,
    /// The process died without recording an outcome (found by the next run).
    Crashed,
}

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct RunRecord {
    pub id: RunId,
    /// The command (`deploy`, `reset`, `refresh`).
    pub command: String,
    /// Process id of the run.
    pub pid: u32,
    /// Host the run ran on.
    pub host: String,
    pub started_at: DateTime<Utc>,
    /// `None` while running, or if the run died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended; `None` while running (or if it died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunOutcome>,
}

/// The machine that is the VPN hub. Every node has the hub as its one peer and answers the
/// address the hub's packets last came from, so two machines bringing the hub interface up
/// take it from each other; the state names the one that holds it, and another machine takes
/// it over only under the state's lock, saying so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnHub {
    /// The host name of the machine (as `uname -n` says).
    pub host: String,
    /// The user who brought it up there, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Since when it is the hub.
    pub since: DateTime<Utc>,
}

/// Present while a reset is in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResetMarker {
    /// When the reset started.
    pub started_at: DateTime<Utc>,
    /// The run that started it.
    pub run_id: RunId,
}

/// A pinned SSH host key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostKeyRecord {
    /// Key algorithm as OpenSSH names it (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`).
    pub algorithm: String,
    /// Base64 public key blob.
    pub key: String,
}

/// Facts about one node, chosen once and kept.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Role (`controller`, `worker`, ...).
    pub role: String,
    /// WireGuard tunnel address, allocated once per node name and never renumbered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_ip: Option<IpAddr>,
    /// WireGuard public key (the private key is in the key store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard_public_key: Option<String>,
    /// Pinned SSH host keys (all algorithms the host offers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_host_keys: Vec<HostKeyRecord>,
    /// Azure `vmId` of the VM the host keys were pinned for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<String>,
    /// Last observed public IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<String>,
    /// Facts with no field of their own, keyed by the crate that records them (e.g.
    /// `vm_recreated`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Names of private keys in the key store, shared by every crate that reads or writes them.
pub mod keys {
    /// The operator machine's (hub) WireGuard private key.
    pub const WIREGUARD_HUB: &str = "wireguard-hub.key";
    /// The SSH private key used to log in to the nodes.
    pub const SSH_ADMIN: &str = "ssh-admin.key";

    /// A node's WireGuard private key.
    pub fn wireguard_node(node: &str) -> String {
        format!("wireguard-{node}.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_items_live_under_their_phase() {
        let mut s = DeploymentState::default();
        let id = StepId::parse("create_vms/vm-1").unwrap();
        s.record_mut(&id).status = Status::Completed;
        assert_eq!(s.status(&id), Status::Completed);
        assert_eq!(
            s.phases["create_vms"].items["vm-1"].status,
            Status::Completed
        );
        s.summarize_phase("create_vms");
        assert_eq!(s.phases["create_vms"].status, Status::Completed);
        s.record_mut(&StepId::parse("create_vms/vm-2").unwrap());
        s.summarize_phase("create_vms");
        assert_eq!(s.phases["create_vms"].status, Status::InProgress);
    }

    #[test]
    fn a_pointer_reads_back_as_moved_and_is_newer_than_every_schema() {
        let p = StatePointer::new(
            MovedTo::Remote {
                url: "azblob://acct/states/prod".into(),
            },
            Some("k0rdent-abc".into()),
            42,
        );
        let text = p.render().unwrap();
        assert!(text.starts_with("# This deployment's state moved to azblob://acct/states/prod"));
        match parse_state(text.as_bytes()) {
            Err(ParseError::Moved(back)) => assert_eq!(*back, p),
            other => panic!("expected a pointer, got {other:?}"),
        }
        // What a build that does not know pointers checks: the schema alone.
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let found = v["schema_version"].as_u64().unwrap();
        assert!(found > u64::from(SCHEMA_VERSION));
    }

    #[test]
    fn a_directory_pointer_names_the_host_and_the_path() {
        let p = StatePointer::new(
            MovedTo::Directory {
                host: "laptop".into(),
                path: "/home/me/state".into(),
            },
            None,
            3,
        );
        let text = p.render().unwrap();
        assert!(text.contains("the local directory /home/me/state on host laptop"));
        assert!(matches!(parse_state(text.as_bytes()), Err(ParseError::Moved(b)) if *b == p));
    }
}
