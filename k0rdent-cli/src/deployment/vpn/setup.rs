//! `setup_vpn`: the hub's wg-quick file and the live interface's peers, converged in place.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use k0rdent_azure::steps::CREATE_VMS_ID;
use k0rdent_core::{
    Evidence, Observation, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord,
    Teardown, fingerprint::Fingerprint, step::StepInputs,
};
use k0rdent_ssh::wireguard::{
    DesiredPeer, HubConfig, PrivateKey, Privilege, ResolvedNetwork, VpnInterface, render_hub_config,
};

use super::observer::{DeviceFact, VPN_OBSERVER, VpnFacts};
use super::{SETUP_VPN_ID, live_public_ips, outputs, recorded_network};

/// The `setup_vpn` step.
pub struct SetupVpnStep {
    id: StepId,
    privilege: Privilege,
    keys_dir: PathBuf,
    leaving: BTreeSet<String>,
}

impl SetupVpnStep {
    /// The step; `privilege` is how a live interface is corrected (root or sudo);
    /// `keys_dir` is where the key store keeps the hub file (wg-quick needs its path).
    pub fn new(privilege: Privilege, keys_dir: impl Into<PathBuf>) -> Self {
        SetupVpnStep {
            id: SETUP_VPN_ID,
            privilege,
            keys_dir: keys_dir.into(),
            leaving: BTreeSet::new(),
        }
    }

    /// Nodes that leave the cluster: still peers until `remove_nodes` deletes their VMs (k0sctl
    /// reaches them through the tunnel to reset them), but no longer in the outputs, so what
    /// is recorded now is what stays once they are gone.
    #[must_use]
    pub fn leaving(mut self, nodes: BTreeSet<String>) -> Self {
        self.leaving = nodes;
        self
    }

    fn outputs(&self, net: &ResolvedNetwork) -> k0rdent_core::Outputs {
        let mut staying = net.clone();
        staying.nodes.retain(|n| !self.leaving.contains(&n.name));
        outputs(&staying)
    }
}

/// Everything the step decides from: the network, the hub key and the live addresses.
struct Inputs<'a> {
    facts: &'a VpnFacts,
    net: ResolvedNetwork,
    hub: HubConfig,
    desired: Vec<DesiredPeer>,
    /// The nodes' public IPs as Azure shows them now (the peers' endpoints).
    ips: BTreeMap<String, IpAddr>,
}

fn inputs(snapshot: &Snapshot) -> Result<Inputs<'_>, Observation> {
    let facts = snapshot.require::<VpnFacts>(VPN_OBSERVER)?;
    let net = match &facts.network {
        Some(n) => n.clone(),
        None => return Err(Observation::absent("no WireGuard network recorded yet")),
    };
    let key: &PrivateKey = facts.hub_key.as_ref().ok_or_else(|| {
        Observation::unknown(format!(
            "the hub's WireGuard key cannot be read: {}",
            facts.key_error.as_deref().unwrap_or("missing")
        ))
    })?;
    let ips: BTreeMap<String, IpAddr> = live_public_ips(snapshot, &net)?;
    let hub =
        render_hub_config(&net, key, &ips).map_err(|e| Observation::unknown(e.to_string()))?;
    let desired = net
        .desired_peers(&ips)
        .map_err(|e| Observation::unknown(e.to_string()))?;
    Ok(Inputs {
        facts,
        net,
        hub,
        desired,
        ips,
    })
}

/// What differs between the live device and the desired peers, one phrase per peer.
fn peer_drift(net: &ResolvedNetwork, device: &DeviceFact, desired: &[DesiredPeer]) -> Vec<String> {
    let DeviceFact::Up(dev) = device else {
        return Vec::new();
    };
    let name = |d: &DesiredPeer| {
        net.nodes
            .iter()
            .find(|n| n.public_key == d.public_key)
            .map_or_else(|| d.public_key.short(), |n| n.name.clone())
    };
    desired
        .iter()
        .filter_map(|d| match dev.peer(&d.public_key) {
            None => Some(format!("{} is not a peer of the live interface", name(d))),
            Some(p) if p.endpoint != Some(d.endpoint) => Some(format!(
                "{}'s endpoint is {} on the live interface, Azure says {}",
                name(d),
                p.endpoint
                    .map_or_else(|| "unset".to_owned(), |e| e.to_string()),
                d.endpoint
            )),
            Some(_) => None,
        })
        .collect()
}

fn evidence(inp: &Inputs<'_>) -> Evidence {
    Evidence::new()
        .with("interface", inp.net.interface.to_string())
        .with("hub_file", format!("keys/{}", inp.hub.file_name()))
        .with("peers", inp.desired.len())
}

#[async_trait]
impl Step for SetupVpnStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        vec![CREATE_VMS_ID]
    }

    /// The recorded network alone: a VM's new public IP is drift corrected in place, not a
    /// changed input.
    fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
        let net = recorded_network(inputs.state).ok();
        Fingerprint::builder()
            .input("network", &net.as_ref().map(|n| self.outputs(n)))
            .finish()
    }

    fn observe(&self, snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        let inp = match inputs(snapshot) {
            Ok(i) => i,
            Err(o) => return o,
        };
        let file = format!("keys/{}", inp.hub.file_name());
        let Some(written) = &inp.facts.hub_file else {
            return Observation::absent(format!("the hub's wg-quick file {file} is not written"));
        };
        let mut drift = Vec::new();
        if written.expose() != inp.hub.text.expose() {
            drift.push(format!(
                "{file} differs from the nodes' current keys and addresses"
            ));
        }
        drift.extend(peer_drift(&inp.net, &inp.facts.device, &inp.desired));
        if drift.is_empty() {
            Observation::done(evidence(&inp))
        } else {
            Observation::partial(drift.join("; "), evidence(&inp))
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let inp = inputs(ctx.snapshot()).map_err(|o| {
            StepError::blocked(format!("cannot set up the VPN: {o}"))
                .with_remedy("run `k0rdent status` to see what is missing")
        })?;
        inp.hub.write(ctx.keys()).await.map_err(|e| {
            StepError::permanent(format!("writing keys/{}: {e}", inp.hub.file_name()))
        })?;
        let path = self.keys_dir.join(inp.hub.file_name());
        let iface =
            VpnInterface::new(inp.net.interface.clone(), path).with_privilege(self.privilege);
        if iface.is_up() && matches!(inp.facts.device, DeviceFact::Up(_)) {
            let changes = iface.sync_peers(&inp.desired).await.map_err(|e| {
                StepError::transient(format!("updating the live interface's peers: {e}"))
                    .with_remedy(
                        "run the command as root, or `k0rdent vpn down` then `k0rdent vpn up`",
                    )
            })?;
            for c in changes {
                ctx.progress(format!("{}: {c}", inp.net.interface));
            }
        }
        // The state records the addresses the peers now point at (a VM that came back with
        // another public IP is followed here, before `create_vms` ever reruns).
        let ips = inp.ips.clone();
        ctx.update_state(move |st| {
            for (name, ip) in ips {
                if let Some(node) = st.nodes.get_mut(&name) {
                    node.public_ip = Some(ip.to_string());
                }
            }
        })
        .await?;
        Ok(StepOutcome::done(self.outputs(&inp.net), evidence(&inp)))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing(
            "the hub file lives in keys/, which reset removes with the state directory",
        ))
    }
}
