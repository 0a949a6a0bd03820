//! The cluster layer's observer (`cluster`): through the kubeconfig `install_k0s` wrote and
//! the real `kubectl` and `helm`, one `get nodes`, one `get management kcm` and one `helm
//! list -a` per observation. The API is asked at the first controller's tunnel address (the
//! recorded API URL); when that does not answer, the other controllers' are tried with
//! `--server`, without changing the recorded URL. Nothing is read while the hub interface is
//! gone: the observer fails at once with the tunnel's state, and what reads it is unknown.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::observation::{Facts, ObserveError, Observer};
use k0rdent_core::role::NodeRole;
use k0rdent_core::state::DeploymentState;
use k0rdent_process::Command;
use k0rdent_ssh::wireguard::ResolvedNetwork;

use super::facts::{
    HelmRelease, K8sNode, Management, parse_helm_list, parse_management, parse_nodes,
};

/// The name of the cluster layer's observer.
pub const CLUSTER_OBSERVER: &str = "cluster";

/// What the cluster observer saw.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// The kubeconfig exists (else nothing else was read: k0s was never installed by us).
    pub kubeconfig: bool,
    /// The API server that answered (`None`: none did, see `api_error`).
    pub answered_by: Option<String>,
    /// Why no API server answered.
    pub api_error: Option<String>,
    /// The nodes (when the API answered).
    pub nodes: Vec<K8sNode>,
    /// `None` when absent (or its CRD is not installed yet).
    pub management: Option<Management>,
    /// Releases in the k0rdent namespace, pending ones included (`None`: helm could not be
    /// asked; see `helm_error`).
    pub releases: Option<Vec<HelmRelease>>,
    /// Why helm could not list.
    pub helm_error: Option<String>,
}

/// Reads the cluster with kubectl and helm.
#[derive(Debug, Clone)]
pub struct ClusterObserver {
    /// `<state-dir>/kubeconfig`.
    pub kubeconfig: PathBuf,
    /// kubectl, when found.
    pub kubectl: Option<PathBuf>,
    /// helm, when found.
    pub helm: Option<PathBuf>,
    /// The k0rdent namespace (`software.k0rdent.namespace`).
    pub namespace: String,
    /// The kube context (the cluster id).
    pub context: String,
}

/// The controllers' tunnel addresses, first controller first: where the API is asked.
pub fn api_servers(state: &DeploymentState) -> Vec<IpAddr> {
    let mut controllers: Vec<(&String, IpAddr)> = state
        .nodes
        .iter()
        .filter(|(_, n)| {
            n.role
                .parse::<NodeRole>()
                .is_ok_and(NodeRole::is_controller)
        })
        .filter_map(|(name, n)| Some((name, n.tunnel_ip?)))
        .collect();
    controllers.sort_by_key(|c| natural(c.0));
    controllers.into_iter().map(|(_, ip)| ip).collect()
}

/// `k0s-controller-10` after `k0s-controller-9`.
fn natural(name: &str) -> (String, u64) {
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let digits = &name[prefix.len()..];
    (prefix.to_owned(), digits.parse().unwrap_or(0))
}

impl ClusterObserver {
    /// The cluster's facts now, outside an observation (a step or gate that must see the
    /// cluster as it is at that moment).
    ///
    /// # Errors
    /// [`ObserveError`] as [`Observer::observe`] returns it.
    pub async fn read(&self, state: &DeploymentState) -> Result<ClusterFacts, ObserveError> {
        self.gather(state).await
    }

    async fn kubectl(
        &self,
        kubectl: &PathBuf,
        server: IpAddr,
        args: &[&str],
    ) -> Result<String, String> {
        let out = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--context")
            .arg(&self.context)
            .arg(format!(
                "--server=https://{}",
                std::net::SocketAddr::new(server, 6443)
            ))
            .arg("--request-timeout=5s")
            .args(args.iter().copied())
            .timeout(Duration::from_secs(15))
            .run()
            .await
            .map_err(|e| e.to_string())?;
        Ok(out.stdout)
    }

    async fn management(
        &self,
        kubectl: &PathBuf,
        server: IpAddr,
    ) -> Result<Option<Management>, String> {
        match self
            .kubectl(
                kubectl,
                server,
                &[
                    "get",
                    "managements.k0rdent.mirantis.com",
                    "kcm",
                    "-o",
                    "json",
                ],
            )
            .await
        {
            Ok(json) => parse_management(&json).map(Some).map_err(|e| e.to_string()),
            // Not created yet, or its CRD not installed yet.
            Err(e)
                if e.contains("NotFound")
                    || e.contains("not found")
                    || e.contains("doesn't have a resource type") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn helm_list(&self, server: IpAddr) -> Result<Vec<HelmRelease>, String> {
        let helm = self.helm.as_ref().ok_or("helm was not found on PATH")?;
        let out = Command::new(helm)
            .args(["list", "-n", &self.namespace, "-a", "-o", "json"])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--kube-context")
            .arg(&self.context)
            .arg(format!(
                "--kube-apiserver=https://{}",
                std::net::SocketAddr::new(server, 6443)
            ))
            .timeout(Duration::from_secs(20))
            .run()
            .await
            .map_err(|e| e.to_string())?;
        parse_helm_list(&out.stdout).map_err(|e| e.to_string())
    }
}

#[async_trait]
impl Observer for ClusterObserver {
    fn name(&self) -> &str {
        CLUSTER_OBSERVER
    }

    /// The tunnel makes the API reachable (`setup_vpn` corrects a controller's endpoint in
    /// place); the installs change what it holds.
    fn affected_by(&self, step: &k0rdent_core::StepId) -> bool {
        matches!(
            step.phase(),
            "setup_vpn" | "connect_vpn" | "install_k0s" | "install_k0rdent"
        )
    }

    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError> {
        self.gather(state).await.map(Facts::new)
    }
}

impl ClusterObserver {
    async fn gather(&self, state: &DeploymentState) -> Result<ClusterFacts, ObserveError> {
        if !self.kubeconfig.is_file() {
            return Ok(ClusterFacts::default());
        }
        if let Ok(net) = ResolvedNetwork::from_state(state)
            && !k0rdent_ssh::os::interface_exists(net.interface.as_str())
        {
            return Err(ObserveError::new(format!(
                "the tunnel is down: the hub interface {} does not exist, so the cluster API \
                 cannot be reached; `k0rdent deploy` brings it back, or run `k0rdent vpn up`",
                net.interface
            )));
        }
        let kubectl = self
            .kubectl
            .as_ref()
            .ok_or_else(|| ObserveError::new("kubectl was not found on PATH (or tools.kubectl)"))?;
        let mut facts = ClusterFacts {
            kubeconfig: true,
            ..ClusterFacts::default()
        };
        let mut errors = Vec::new();
        for server in api_servers(state) {
            match self
                .kubectl(kubectl, server, &["get", "nodes", "-o", "json"])
                .await
            {
                Ok(json) => {
                    facts.nodes =
                        parse_nodes(&json).map_err(|e| ObserveError::new(e.to_string()))?;
                    facts.answered_by = Some(server.to_string());
                    facts.management = self
                        .management(kubectl, server)
                        .await
                        .map_err(ObserveError::new)?;
                    match self.helm_list(server).await {
                        Ok(r) => facts.releases = Some(r),
                        Err(e) => facts.helm_error = Some(e),
                    }
                    break;
                }
                Err(e) => errors.push(format!("{server}: {e}")),
            }
        }
        if facts.answered_by.is_none() {
            facts.api_error = Some(if errors.is_empty() {
                "no controller has a tunnel address".to_owned()
            } else {
                errors.join("; ")
            });
        }
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k0rdent_core::state::NodeRecord;

    #[test]
    fn the_api_is_asked_at_the_controllers_first_controller_first() {
        let mut state = DeploymentState::default();
        for (name, role, ip) in [
            ("k0s-controller-10", "controller", "172.24.24.20"),
            ("k0s-worker-1", "worker", "172.24.24.30"),
            ("k0s-controller-2", "controller+worker", "172.24.24.12"),
            ("k0s-controller-1", "controller", "172.24.24.11"),
        ] {
            state.nodes.insert(
                name.into(),
                NodeRecord {
                    role: role.into(),
                    tunnel_ip: ip.parse().ok(),
                    ..NodeRecord::default()
                },
            );
        }
        let servers: Vec<String> = api_servers(&state)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(servers, ["172.24.24.11", "172.24.24.12", "172.24.24.20"]);
    }
}
