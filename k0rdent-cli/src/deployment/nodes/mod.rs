//! The nodes layer's observer (`nodes`): per node over SSH through the tunnel, one session
//! reused for the whole run, three read-only commands — cloud-init's result, `wg0`, and k0s.
//!
//! It never tries SSH while the tunnel is down: with the hub interface missing it fails at
//! once with the tunnel's diagnosis (every step that reads it is then unknown, and blocks),
//! and each connection first passes the per-node "VPN up" probe, so a silent peer costs one
//! probe timeout, not an SSH timeout. Host keys are checked against the pins; a host seen for
//! the first time is trusted for this observation only (observers write nothing) and pinned
//! by the step that first connects.

pub mod k0s_status;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_core::observation::{Facts, ObserveError, Observer};
use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::KeyStore;
use k0rdent_ssh::node_checks::{
    CloudInitStatus, WireguardStatus, cloud_init_status, wireguard_status,
};
use k0rdent_ssh::ssh::{
    ConnectOptions, ExecOptions, NodeTarget, Route, SshConnector, SshCredentials, StatePins,
};
use k0rdent_ssh::wireguard::{ProbeOptions, ResolvedNetwork, TunnelExpectation, TunnelProbe};
use tokio::sync::Mutex;

pub use k0s_status::{K0sStatus, k0s_status_command, parse_k0s_status};

/// The name of the nodes layer's observer.
pub const NODES_OBSERVER: &str = "nodes";

/// One node as seen over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeFact {
    /// Not reached: the reason, with the tunnel's diagnosis when the probe failed.
    Unreachable(String),
    /// Reached; what its three checks said.
    Seen {
        #[allow(missing_docs)]
        cloud_init: CloudInitStatus,
        #[allow(missing_docs)]
        wireguard: WireguardStatus,
        #[allow(missing_docs)]
        k0s: K0sStatus,
    },
}

/// Every node's facts, by node name.
#[derive(Debug, Clone, Default)]
pub struct NodesFacts {
    /// By node name.
    pub nodes: BTreeMap<String, NodeFact>,
}

/// Reads the nodes over SSH. Build one per command run: it keeps its sessions for the run.
pub struct NodesObserver {
    keys: Arc<dyn KeyStore>,
    user: String,
    options: ConnectOptions,
    probe: ProbeOptions,
    connector: Mutex<Option<Arc<SshConnector>>>,
}

impl NodesObserver {
    /// Logs in as `user` with the admin key from `keys`.
    pub fn new(keys: Arc<dyn KeyStore>, user: impl Into<String>, options: ConnectOptions) -> Self {
        NodesObserver {
            keys,
            user: user.into(),
            options,
            probe: ProbeOptions::default(),
            connector: Mutex::new(None),
        }
    }

    async fn connector(
        &self,
        expectation: &TunnelExpectation,
    ) -> Result<Arc<SshConnector>, ObserveError> {
        let mut slot = self.connector.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let creds = SshCredentials::from_store(&*self.keys, self.user.clone())
            .await
            .map_err(|e| ObserveError::new(format!("cannot log in to the nodes: {e}")))?;
        let c = Arc::new(SshConnector::new(
            creds,
            self.options.clone(),
            Route::Tunnel {
                probe: TunnelProbe::new(self.probe),
                expectation: Arc::new(expectation.clone()),
            },
        ));
        *slot = Some(c.clone());
        Ok(c)
    }
}

async fn observe_node(
    connector: &SshConnector,
    pins: &StatePins,
    target: NodeTarget,
    tunnel_ip: std::net::Ipv4Addr,
) -> NodeFact {
    let session = match connector.session(&target, pins).await {
        Ok(s) => s,
        Err(e) => return NodeFact::Unreachable(e.to_string()),
    };
    let k0s = async {
        session
            .exec_with(
                &k0s_status_command(),
                ExecOptions::default().timeout(std::time::Duration::from_secs(20)),
            )
            .await
            .map(|o| parse_k0s_status(&o.stdout_text()))
    };
    let (ci, wg, k0s) = tokio::join!(
        cloud_init_status(&session),
        wireguard_status(&session, tunnel_ip),
        k0s
    );
    match (ci, wg, k0s) {
        (Ok(cloud_init), Ok(wireguard), Ok(k0s)) => NodeFact::Seen {
            cloud_init,
            wireguard,
            k0s,
        },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => NodeFact::Unreachable(e.to_string()),
    }
}

/// Whether `connect_vpn` ever completed: only then is a missing hub interface a failure to
/// report (a reboot, `vpn down`) rather than a tunnel not set up yet.
pub fn tunnel_was_connected(state: &DeploymentState) -> bool {
    state
        .phases
        .get("connect_vpn")
        .is_some_and(|p| p.status == k0rdent_core::state::Status::Completed)
}

#[async_trait]
impl Observer for NodesObserver {
    fn name(&self) -> &str {
        NODES_OBSERVER
    }

    /// Reachable once the tunnel is up, and again once `setup_vpn` corrected a peer in place
    /// (a node at a new public IP answers only after its endpoint is updated); k0s changes
    /// with its install.
    fn affected_by(&self, step: &k0rdent_core::StepId) -> bool {
        matches!(
            step.phase(),
            "create_vms" | "setup_vpn" | "connect_vpn" | "install_k0s"
        )
    }

    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError> {
        let Ok(net) = ResolvedNetwork::from_state(state) else {
            return Ok(Facts::new(NodesFacts::default()));
        };
        // No node has a VM yet: nothing to reach.
        if !state.nodes.values().any(|n| n.public_ip.is_some()) {
            return Ok(Facts::new(NodesFacts::default()));
        }
        if !k0rdent_ssh::os::interface_exists(net.interface.as_str()) {
            // Never connected: nothing to reach yet, and nothing failed.
            if !tunnel_was_connected(state) {
                return Ok(Facts::new(NodesFacts::default()));
            }
            return Err(ObserveError::new(format!(
                "the tunnel is down: the hub interface {} does not exist (a reboot or `vpn \
                 down`), so no node was contacted; `k0rdent deploy` brings it back, or run \
                 `k0rdent vpn up`",
                net.interface
            )));
        }
        // One probe per node first, concurrently: a silent peer is reported with the
        // tunnel's diagnosis within the probe timeout, and its cached session (if any) is
        // dropped instead of hanging on a dead connection.
        let expectation =
            TunnelExpectation::from_state(state).map_err(|e| ObserveError::new(e.to_string()))?;
        let connector = self.connector(&expectation).await?;
        let report = TunnelProbe::new(self.probe).report(&expectation).await;
        let pins = StatePins::new(state.clone());
        let mut facts = NodesFacts::default();
        let mut set = tokio::task::JoinSet::new();
        for node in &net.nodes {
            let Some(target) = NodeTarget::tunnel(state, &node.name) else {
                continue;
            };
            match report.peer(&node.name) {
                Some(h) if h.is_alive() => {}
                health => {
                    connector.forget(&node.name).await;
                    let why = health.map_or_else(|| "not probed".to_owned(), |h| format!("{h}"));
                    facts.nodes.insert(
                        node.name.clone(),
                        NodeFact::Unreachable(format!("no SSH attempt: {why}")),
                    );
                    continue;
                }
            }
            let (c, p, name, ip) = (
                connector.clone(),
                pins.clone(),
                node.name.clone(),
                node.address,
            );
            set.spawn(async move { (name, observe_node(&c, &p, target, ip).await) });
        }
        while let Some(joined) = set.join_next().await {
            if let Ok((name, fact)) = joined {
                facts.nodes.insert(name, fact);
            }
        }
        Ok(Facts::new(facts))
    }
}
