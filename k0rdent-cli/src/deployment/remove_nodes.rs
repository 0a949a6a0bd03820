//! `remove_nodes`: the nodes the configuration no longer lists leave for good, after
//! `install_k0s` had k0sctl drain and reset them. Per node, in an order that a kill at any
//! point resumes: its record is dropped (so the tunnel and the nodes' observers stop
//! expecting it), its peer leaves the live interface and the hub file, its VM, NIC, public IP
//! and OS disk are deleted in Azure (journaled, only what this deployment owns), and last its
//! `create_vms` record goes — the record that made it a leaving node.
//!
//! The step is in the pipeline only while some node leaves, and its work deletes: it is
//! planned as a disruptive change, confirmed like a replace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_azure::AzureDeployment;
use k0rdent_azure::steps::CREATE_VMS;
use k0rdent_azure::steps::converge::Progress;
use k0rdent_core::state::{DeploymentState, Journal};
use k0rdent_core::step::{JournalError, StepInputs};
use k0rdent_core::{
    Evidence, FileStore, Observation, Outputs, Snapshot, Step, StepContext, StepError, StepId,
    StepOutcome, StepRecord, Teardown, fingerprint::Fingerprint,
};
use k0rdent_ssh::wireguard::{
    PrivateKey, Privilege, PublicKey, ResolvedNetwork, VpnInterface, render_hub_config,
};
use serde::{Deserialize, Serialize};

use super::k0s::INSTALL_K0S_ID;
use super::vpn::{VPN_OBSERVER, VpnFacts, live_public_ips};

/// The `remove_nodes` phase.
pub const REMOVE_NODES_ID: StepId = StepId::from_static("remove_nodes");

/// What a node's record said that its removal still needs once the record is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Leaving {
    /// Its WireGuard public key (the peer to remove), if it had one.
    public_key: Option<String>,
}

fn journal_key(node: &str) -> String {
    format!("leaving/{node}")
}

/// Journal key marking that the node's peer and hub-file entry are gone, so the calls that
/// follow while Azure deletes its VM do not redo it.
fn unpeered_key(node: &str) -> String {
    format!("leaving/{node}/unpeered")
}

/// The `remove_nodes` step.
pub struct RemoveNodesStep {
    id: StepId,
    leaving: BTreeSet<String>,
    azure: AzureDeployment,
    privilege: Privilege,
    store: Arc<FileStore>,
}

impl RemoveNodesStep {
    /// The step removing `leaving` (recorded nodes with VMs, no longer configured).
    pub fn new(
        leaving: BTreeSet<String>,
        azure: AzureDeployment,
        privilege: Privilege,
        store: Arc<FileStore>,
    ) -> Self {
        RemoveNodesStep {
            id: REMOVE_NODES_ID,
            leaving,
            azure,
            privilege,
            store,
        }
    }

    fn names(&self) -> String {
        self.leaving.iter().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Drops the node's record, keeping in the journal what the rest of its removal needs.
    async fn forget(&self, ctx: &StepContext, node: &str) -> Result<Option<Leaving>, StepError> {
        let key = journal_key(node);
        if let Some(l) = ctx.journal().latest_as::<Leaving>(&key) {
            return Ok(Some(l));
        }
        let Some(rec) = ctx.read_state(|s| s.nodes.get(node).cloned()).await else {
            return Ok(None);
        };
        let leaving = Leaving {
            public_key: rec.wireguard_public_key.clone(),
        };
        ctx.write_journal(&key, &leaving).await?;
        let name = node.to_owned();
        ctx.update_state(move |st| {
            st.nodes.remove(&name);
        })
        .await?;
        Ok(Some(leaving))
    }

    /// Takes the node's peer off the live interface (if up) and rewrites the hub file for the
    /// nodes that stay.
    async fn unpeer(&self, ctx: &StepContext, node: &str, l: &Leaving) -> Result<(), StepError> {
        let state = ctx.read_state(Clone::clone).await;
        let net = ResolvedNetwork::from_state(&state)
            .map_err(|e| StepError::permanent(format!("the recorded WireGuard network: {e}")))?;
        let facts = ctx
            .snapshot()
            .require::<VpnFacts>(VPN_OBSERVER)
            .map_err(|o| StepError::blocked(format!("the tunnel was not observed: {o}")))?;
        let key: &PrivateKey = facts.hub_key.as_ref().ok_or_else(|| {
            StepError::blocked(format!(
                "the hub's WireGuard key cannot be read: {}",
                facts.key_error.as_deref().unwrap_or("missing")
            ))
            .with_remedy("restore keys/ from a backup")
        })?;
        let ips: BTreeMap<String, IpAddr> = live_public_ips(ctx.snapshot(), &net)
            .map_err(|o| StepError::transient(format!("the nodes' public IPs: {o}")))?;
        let hub = render_hub_config(&net, key, &ips)
            .map_err(|e| StepError::permanent(format!("the hub's wg-quick file: {e}")))?;
        hub.write(ctx.keys())
            .await
            .map_err(|e| StepError::permanent(format!("writing keys/{}: {e}", hub.file_name())))?;
        let Some(public) = l.public_key.as_deref() else {
            return Ok(());
        };
        let public: PublicKey = public.parse().map_err(|_| {
            StepError::permanent(format!(
                "{node}'s recorded WireGuard public key is unreadable"
            ))
        })?;
        let iface = VpnInterface::new(
            net.interface.clone(),
            self.store.keys_dir().join(hub.file_name()),
        )
        .with_privilege(self.privilege);
        if iface.is_up() {
            let removed = iface.remove_peer(&public).await.map_err(|e| {
                StepError::transient(format!(
                    "removing {node}'s peer from {}: {e}",
                    net.interface
                ))
                .with_remedy("run the command as root, or `k0rdent vpn down` then `k0rdent vpn up`")
            })?;
            if removed {
                ctx.progress(format!("{}: removed {node}'s peer", net.interface));
            }
        }
        Ok(())
    }
}

/// Drops `node`'s `create_vms` record: it no longer has a VM.
fn drop_vm_record(st: &mut DeploymentState, node: &str) {
    if let Some(phase) = st.phases.get_mut(CREATE_VMS) {
        phase.items.remove(node);
    }
    st.summarize_phase(CREATE_VMS);
}

#[async_trait]
impl Step for RemoveNodesStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    /// After k0sctl reset the nodes: a VM is deleted only once it left the cluster.
    fn dependencies(&self) -> Vec<StepId> {
        vec![INSTALL_K0S_ID]
    }

    fn fingerprint(&self, _inputs: &StepInputs<'_>) -> Fingerprint {
        Fingerprint::builder()
            .input("leaving", &self.leaving)
            .finish()
    }

    fn check_journal(&self, journal: &Journal) -> Result<(), JournalError> {
        k0rdent_azure::steps::converge::check_journal(journal)
    }

    /// Present only while nodes leave, so always a deletion still to do.
    fn observe(&self, _snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        Observation::disruptive(
            format!(
                "{} no longer in the configuration: VM, NIC, public IP and OS disk deleted, \
                 WireGuard peer and records removed",
                self.names()
            ),
            Evidence::new().with("leaving", self.names()),
        )
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        for node in &self.leaving {
            ctx.checkpoint()?;
            if let Some(l) = self.forget(ctx, node).await?
                && ctx
                    .journal()
                    .latest_as::<bool>(&unpeered_key(node))
                    .is_none()
            {
                self.unpeer(ctx, node, &l).await?;
                ctx.write_journal(&unpeered_key(node), &true).await?;
            }
            ctx.checkpoint()?;
            match self.azure.remove_vm(ctx, node).await? {
                Progress::Wait(after, why) => return Ok(StepOutcome::pending(after, why)),
                Progress::Ready(()) => {}
            }
            let name = node.clone();
            ctx.update_state(move |st| drop_vm_record(st, &name))
                .await?;
            ctx.progress(format!("{node} removed"));
        }
        let state = ctx.read_state(Clone::clone).await;
        k0rdent_ssh::ssh::write_known_hosts(&self.store, &state)
            .map_err(|e| StepError::permanent(format!("writing known_hosts: {e}")))?;
        Ok(StepOutcome::done(
            Outputs::new().with("removed", self.names()),
            Evidence::new().with("removed", self.names()),
        ))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing(
            "what it removes is gone; the resource group deletion takes the rest",
        ))
    }
}
