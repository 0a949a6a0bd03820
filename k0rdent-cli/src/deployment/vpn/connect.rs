//! `connect_vpn`: the hub interface up, as a session step. Its inputs and outputs are the
//! link only (interface and hub key): bringing it back after a reboot records the same, and a
//! peer that `setup_vpn` added or moved in place reruns neither it nor anything downstream.

use std::path::PathBuf;

use async_trait::async_trait;
use k0rdent_core::{
    Evidence, Observation, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord,
    Teardown, fingerprint::Fingerprint, step::StepInputs,
};
use k0rdent_ssh::wireguard::{Privilege, ResolvedNetwork, VpnInterface};

use super::observer::{DeviceFact, VPN_OBSERVER, VpnFacts};
use super::{
    CONNECT_VPN_ID, SETUP_VPN_ID, hub_elsewhere, hub_here, hub_is_here, link_outputs,
    takeover_message,
};

/// The `connect_vpn` step.
pub struct ConnectVpnStep {
    id: StepId,
    privilege: Privilege,
    keys_dir: PathBuf,
}

impl ConnectVpnStep {
    /// The step; `privilege` is how wg-quick gets root; `keys_dir` holds the hub file.
    pub fn new(privilege: Privilege, keys_dir: impl Into<PathBuf>) -> Self {
        ConnectVpnStep {
            id: CONNECT_VPN_ID,
            privilege,
            keys_dir: keys_dir.into(),
        }
    }

    fn interface(&self, net: &ResolvedNetwork) -> VpnInterface {
        VpnInterface::new(
            net.interface.clone(),
            self.keys_dir.join(format!("{}.conf", net.interface)),
        )
        .with_privilege(self.privilege)
    }
}

fn evidence(net: &ResolvedNetwork, facts: &VpnFacts) -> Evidence {
    let answering = facts
        .report
        .as_ref()
        .map_or(0, |r| r.peers.iter().filter(|p| p.is_alive()).count());
    Evidence::new()
        .with("interface", net.interface.to_string())
        .with(
            "peers_answering",
            format!("{answering}/{}", net.nodes.len()),
        )
}

#[async_trait]
impl Step for ConnectVpnStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        vec![SETUP_VPN_ID]
    }

    /// Only the link from `setup_vpn`'s outputs: its interface and key.
    fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
        let link = inputs.upstream.get(&SETUP_VPN_ID).map(|o| {
            (
                o.get_str("interface").map(str::to_owned),
                o.get_str("hub_public_key").map(str::to_owned),
            )
        });
        Fingerprint::builder().input("link", &link).finish()
    }

    fn observe(&self, snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        let facts = match snapshot.require::<VpnFacts>(VPN_OBSERVER) {
            Ok(f) => f,
            Err(o) => return o,
        };
        let Some(net) = &facts.network else {
            return Observation::absent("no WireGuard network recorded yet");
        };
        let elsewhere = hub_elsewhere(facts.hub.as_ref());
        match &facts.device {
            DeviceFact::Missing => match elsewhere {
                Some(h) => Observation::absent(format!(
                    "the hub interface {} is not up on this machine: {} is the hub (since {}); \
                     bringing it up here takes the hub over",
                    net.interface,
                    h.host,
                    h.since.format("%Y-%m-%d %H:%M UTC")
                )),
                None => Observation::absent(format!(
                    "the hub interface {} is not up (never brought up, `vpn down`, or a reboot)",
                    net.interface
                )),
            },
            DeviceFact::Up(_) if elsewhere.is_some() => Observation::partial(
                format!(
                    "{} is up here, but {} took the hub over (since {}): the nodes answer that \
                     machine; running here takes it back",
                    net.interface,
                    elsewhere.map_or("", |h| h.host.as_str()),
                    elsewhere.map_or_else(String::new, |h| h
                        .since
                        .format("%Y-%m-%d %H:%M UTC")
                        .to_string())
                ),
                evidence(net, facts),
            ),
            DeviceFact::HalfBuilt(why) => Observation::partial(
                format!(
                    "{}: {why}; it is taken down and brought up again",
                    net.interface
                ),
                Evidence::new().with("interface", net.interface.to_string()),
            ),
            DeviceFact::Unreadable(why) => Observation::unknown(format!(
                "the hub interface {} exists but cannot be read: {why}",
                net.interface
            )),
            DeviceFact::Up(_) => Observation::done(evidence(net, facts)),
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let state = ctx.read_state(Clone::clone).await;
        let net = ResolvedNetwork::from_state(&state).map_err(|e| {
            StepError::blocked(format!("no WireGuard network recorded: {e}"))
                .with_remedy("run `k0rdent deploy`, which prepares it first")
        })?;
        if let Some(previous) = hub_elsewhere(state.vpn_hub.as_ref()) {
            ctx.progress(takeover_message(previous, net.interface.as_str()));
        }
        let iface = self.interface(&net);
        let half_built = ctx
            .snapshot()
            .get::<VpnFacts>()
            .is_some_and(|f| matches!(f.device, DeviceFact::HalfBuilt(_)));
        if half_built && iface.is_up() {
            ctx.progress(format!(
                "{}: taking a half-built interface down",
                net.interface
            ));
            iface.down().await.map_err(|e| {
                StepError::blocked(format!("taking the half-built {} down: {e}", net.interface))
                    .with_remedy(format!(
                        "remove it by hand: `sudo ip link delete {}`",
                        net.interface
                    ))
            })?;
        }
        ctx.checkpoint()?;
        let t = iface.up().await.map_err(|e| {
            let remedy = k0rdent_core::Remedy::remedy(&e)
                .map(|r| r.into_owned())
                .unwrap_or_else(|| "run `k0rdent vpn up` to see wg-quick's error".to_owned());
            StepError::blocked(format!("bringing {} up: {e}", net.interface)).with_remedy(remedy)
        })?;
        if !hub_is_here(state.vpn_hub.as_ref()) {
            let here = hub_here();
            ctx.update_state(move |st| st.vpn_hub = Some(here)).await?;
        }
        ctx.progress(match t {
            k0rdent_ssh::wireguard::Transition::Changed => format!("{}: brought up", net.interface),
            k0rdent_ssh::wireguard::Transition::Unchanged => {
                format!("{}: already up", net.interface)
            }
        });
        Ok(StepOutcome::done(
            link_outputs(&net),
            Evidence::new().with("interface", net.interface.to_string()),
        ))
    }

    async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError> {
        let state = ctx.read_state(Clone::clone).await;
        let Ok(net) = ResolvedNetwork::from_state(&state) else {
            return Ok(Teardown::nothing("no WireGuard network was recorded"));
        };
        let iface = self.interface(&net);
        if !iface.is_up() {
            return Ok(Teardown::nothing(format!("{} is not up", net.interface)));
        }
        iface
            .down()
            .await
            .map_err(|e| StepError::transient(format!("taking {} down: {e}", net.interface)))?;
        Ok(Teardown::Done)
    }
}
