//! `install_k0rdent`: k0rdent's management components (the `kcm` chart) through helm from
//! this machine, explicit `--kubeconfig` and `--kube-context` (the user's `KUBECONFIG` and
//! `HELM_*` are stripped by the process runner), only while no release is deployed — after
//! that kcm's Flux owns the release and its revision moves on its own. Ready when the
//! `Management` object `kcm` is Ready with the configured Release.
//!
//! Outputs: the release name and `Management.status.release`, never the helm revision.

mod apply;
pub mod observe;
mod teardown;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::gate::{Deadline, Gate, GateContext, GateVerdict, WaitBudget};
use k0rdent_core::role::NodeRole;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::step::StepInputs;
use k0rdent_core::{
    Observation, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
    fingerprint::Fingerprint,
};

pub use apply::K0rdentSettings;

use super::k0s::{INSTALL_K0S_ID, hosts::K0S_ROLE};
use crate::cluster::observer::ClusterObserver;

/// The `install_k0rdent` phase.
pub const INSTALL_K0RDENT_ID: StepId = StepId::from_static("install_k0rdent");

/// The `install_k0rdent` step.
pub struct InstallK0rdentStep {
    id: StepId,
    settings: K0rdentSettings,
}

impl InstallK0rdentStep {
    #[allow(missing_docs)]
    pub fn new(settings: K0rdentSettings) -> Self {
        InstallK0rdentStep {
            id: INSTALL_K0RDENT_ID,
            settings,
        }
    }
}

/// The nodes that run a kubelet, by their recorded k0s role (not those k0sctl reset).
fn kubelet_nodes(state: &DeploymentState) -> Vec<String> {
    state
        .nodes
        .iter()
        .filter(|(name, _)| !crate::deployment::k0s::hosts::was_reset(state, name))
        .filter(|(_, n)| {
            n.attributes
                .get(K0S_ROLE)
                .and_then(|r| r.as_str())
                .and_then(|r| r.parse::<NodeRole>().ok())
                .is_some_and(|r| r != NodeRole::Controller)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// "The API answers and every node that runs a kubelet is Ready", polled for a while (nodes
/// turn Ready some time after k0sctl finished).
struct ClusterReady(ClusterObserver);

#[async_trait]
impl Gate for ClusterReady {
    fn name(&self) -> &str {
        "cluster_ready"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(40)
    }
    fn wait(&self, _state: &DeploymentState) -> Option<WaitBudget> {
        Some(WaitBudget {
            deadline: Deadline::After(Duration::from_secs(5 * 60)),
            interval: Duration::from_secs(5),
        })
    }
    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        let facts = match self.0.read(&ctx.state).await {
            Ok(f) => f,
            Err(e) => return GateVerdict::fail_with(e.to_string(), "run `k0rdent vpn status`"),
        };
        let Some(server) = &facts.answered_by else {
            return GateVerdict::fail_with(
                format!(
                    "the cluster API does not answer: {}",
                    facts
                        .api_error
                        .as_deref()
                        .unwrap_or("no controller answered")
                ),
                "check k0s on the controllers: `k0rdent ssh k0s-controller-1 -- sudo k0s status`",
            );
        };
        let not_ready: Vec<String> = kubelet_nodes(&ctx.state)
            .into_iter()
            .filter(|n| !facts.nodes.iter().any(|k| &k.name == n && k.ready))
            .collect();
        if not_ready.is_empty() {
            GateVerdict::pass(format!(
                "the API answers at {server}; {} nodes Ready",
                facts.nodes.len()
            ))
        } else {
            GateVerdict::fail_with(
                format!("not Ready (or not registered): {}", not_ready.join(", ")),
                "`kubectl get nodes` with `k0rdent kubeconfig --export`; a node's kubelet log: `k0rdent ssh NODE -- sudo journalctl -u k0sworker`",
            )
        }
    }
}

#[async_trait]
impl Step for InstallK0rdentStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        vec![INSTALL_K0S_ID]
    }

    fn fingerprint(&self, inputs: &StepInputs<'_>) -> Fingerprint {
        Fingerprint::builder()
            .input("upstream", &inputs.upstream_fingerprint().inputs)
            // An upgrade restarts k0rdent's controllers: confirmed like a replace.
            .disruptive("version", &self.settings.version)
            .input("chart", &self.settings.chart)
            .input("namespace", &self.settings.namespace)
            .finish()
    }

    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        vec![
            Arc::new(super::vpn::WatchedVpnGate::new()),
            Arc::new(ClusterReady(self.settings.cluster.clone())),
        ]
    }

    fn observe(&self, snapshot: &Snapshot, record: Option<&StepRecord>) -> Observation {
        observe::observe(snapshot, record, &self.settings.version)
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        apply::apply(ctx, &self.settings).await
    }

    async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError> {
        teardown::teardown(ctx, &self.settings).await
    }
}
