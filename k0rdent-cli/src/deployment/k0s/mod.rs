//! `install_k0s`: k0s on every node through k0sctl, from a configuration generated from the
//! recorded state on every run (so it never goes stale as the Bash tool's did), guarded by
//! gates — the tunnel answering on every node, cloud-init finished, `wg0` up — and watched:
//! a tunnel that drops while k0sctl runs stops it within a few seconds and blocks the run.
//!
//! Outputs are the API URL, the cluster CA's fingerprint and the k0s version — not the node
//! list, so adding a worker reruns this phase but not `install_k0rdent`.

mod apply;
pub mod hosts;
pub mod observe;
mod teardown;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::gate::{Deadline, Gate, WaitBudget};
use k0rdent_core::state::DeploymentState;
use k0rdent_core::step::{StepInputs, StepPolicy};
use k0rdent_core::{
    Observation, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
    fingerprint::Fingerprint,
};
use k0rdent_ssh::node_checks::{NodeCheck, NodeCheckGate};
use k0rdent_ssh::ssh::{NodeTarget, Route, SshConnector, SshCredentials};
use k0rdent_ssh::wireguard::{TunnelExpectation, TunnelProbe};

pub use apply::{K0SCTL_FILE, K0sSettings};

use super::vpn::{CONNECT_VPN_ID, WatchedVpnGate};
use crate::k0s::K0sctlInput;

/// The name of [`RecordedStateObserver`].
pub const RECORDED_OBSERVER: &str = "recorded";

/// The recorded state as of an observation: what the later phases' observations interpret
/// the other layers' facts against (the nodes' recorded roles and addresses).
#[derive(Debug, Clone)]
pub struct RecordedState(pub DeploymentState);

/// Puts the recorded state into the snapshot (no I/O).
pub struct RecordedStateObserver;

#[async_trait]
impl k0rdent_core::Observer for RecordedStateObserver {
    fn name(&self) -> &str {
        RECORDED_OBSERVER
    }

    async fn observe(
        &self,
        state: &DeploymentState,
    ) -> Result<k0rdent_core::observation::Facts, k0rdent_core::observation::ObserveError> {
        Ok(k0rdent_core::observation::Facts::new(RecordedState(
            state.clone(),
        )))
    }
}

/// The `install_k0s` phase.
pub const INSTALL_K0S_ID: StepId = StepId::from_static("install_k0s");

/// The `install_k0s` step.
pub struct InstallK0sStep {
    id: StepId,
    settings: K0sSettings,
    gates: Vec<Arc<dyn Gate>>,
    /// How long a VM `create_vms` just started may take to answer (`timeouts.cloud_init`).
    cloud_init: Duration,
}

impl InstallK0sStep {
    /// The step over `state` (the nodes to gate on) with `settings`; `cloud_init` is the
    /// budget for first boot to finish (`timeouts.cloud_init`).
    pub async fn new(settings: K0sSettings, state: &DeploymentState, cloud_init: Duration) -> Self {
        let mut gates: Vec<Arc<dyn Gate>> = vec![Arc::new(WatchedVpnGate::new())];
        let creds = SshCredentials::from_store(&*settings.store, settings.user.clone()).await;
        if let (Ok(creds), Ok(exp)) = (creds, TunnelExpectation::from_state(state)) {
            let connector = Arc::new(SshConnector::new(
                creds,
                settings.connect.clone(),
                Route::Tunnel {
                    probe: TunnelProbe::default(),
                    expectation: Arc::new(exp.clone()),
                },
            ));
            for peer in &exp.peers {
                let Some(target) = NodeTarget::tunnel(state, &peer.name) else {
                    continue;
                };
                gates.push(Arc::new(
                    NodeCheckGate::new(NodeCheck::CloudInit, target.clone(), connector.clone())
                        .with_wait(Some(WaitBudget {
                            deadline: Deadline::After(cloud_init),
                            interval: Duration::from_secs(10),
                        })),
                ));
                gates.push(Arc::new(NodeCheckGate::new(
                    NodeCheck::Wireguard {
                        address: peer.tunnel_ip,
                    },
                    target,
                    connector.clone(),
                )));
            }
        }
        InstallK0sStep {
            id: INSTALL_K0S_ID,
            settings,
            gates,
            cloud_init,
        }
    }
}

#[async_trait]
impl Step for InstallK0sStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        vec![CONNECT_VPN_ID]
    }

    /// The tunnel's outputs, the k0s block, and per staying node its role, addresses and VM:
    /// a new worker, a node that leaves or a replaced VM reruns it, a new public IP does not.
    fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
        let hosts = hosts::k0sctl_input(
            inputs.state,
            &self.settings.k0s_version,
            &self.settings.user,
            self.settings.store.dir(),
            &self.settings.leaving,
        )
        .ok()
        .map(|i| {
            i.staying()
                .hosts
                .iter()
                .map(|h| {
                    let vm = inputs
                        .state
                        .nodes
                        .get(&h.name)
                        .and_then(|n| n.vm_id.clone());
                    (
                        h.name.clone(),
                        h.role.as_str(),
                        h.ssh_address,
                        h.private_address,
                        vm,
                    )
                })
                .collect::<Vec<_>>()
        });
        // A new k0s version or configuration restarts every controller: disruptive, so it is
        // planned as a rerun that needs confirmation, like a replace.
        Fingerprint::builder()
            .input("upstream", &inputs.upstream_fingerprint().inputs)
            .disruptive("k0s", &hosts::k0s_block_digest(&self.settings.k0s_version))
            .input("hosts", &hosts)
            .finish()
    }

    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        self.gates.clone()
    }

    fn policy(&self) -> StepPolicy {
        // k0sctl is safe to run again after a timeout.
        StepPolicy::default().retry_on_timeout(true)
    }

    fn observe(&self, snapshot: &Snapshot, record: Option<&StepRecord>) -> Observation {
        let state = match snapshot.require::<RecordedState>(RECORDED_OBSERVER) {
            Ok(s) => &s.0,
            Err(o) => return o,
        };
        let input = hosts::k0sctl_input(
            state,
            &self.settings.k0s_version,
            &self.settings.user,
            self.settings.store.dir(),
            &self.settings.leaving,
        );
        let seen = observe::observe(
            snapshot,
            record,
            &input
                .as_ref()
                .map(K0sctlInput::staying)
                .map_err(Clone::clone),
            &hosts::k0s_block_digest(&self.settings.k0s_version),
            &hosts::vm_changes(
                state,
                record.and_then(|r| r.finished_at),
                self.cloud_init,
                chrono::Utc::now(),
            ),
        );
        observe::with_leaving(seen, input.as_ref().ok())
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        apply::apply(ctx, &self.settings).await
    }

    async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError> {
        teardown::teardown(ctx, &self.settings).await
    }
}
