//! `spec.k0s.config.spec.network` of the k0sctl configuration: the Bash tool's network
//! settings, unchanged.
//!
//! A k0s configuration that differs in any way makes k0sctl rewrite `/etc/k0s/k0s.yaml` and
//! restart every controller, so a cluster the Bash tool installed must get exactly the tree
//! its `bin/install-k0s.sh` wrote (upstream §2.6): node-local load balancing through Envoy,
//! Calico told to pick the interface that reaches 8.8.8.8 (the Azure NIC, not wg0), and
//! Felix's loose reverse-path check ignored, as Azure's NIC needs.

use std::collections::BTreeMap;

use serde::Serialize;

/// `spec.k0s.config` as k0sctl passes it to k0s: only `spec.network` is set; k0sctl adds
/// `apiVersion` and `kind` itself, as it did for the Bash tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct K0sConfig {
    /// The k0s `ClusterConfig` spec.
    pub spec: K0sConfigSpec,
}

/// The k0s `ClusterConfig` spec: only the network section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct K0sConfigSpec {
    /// CNI and load-balancing settings.
    pub network: Network,
}

/// k0s `spec.network`, in the key order the Bash tool wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Every worker reaches the API servers through a local Envoy, so a controller going away
    /// does not cut the kubelets off.
    pub node_local_load_balancing: NodeLocalLoadBalancing,
    /// `calico`.
    pub provider: String,
    /// Calico's settings.
    pub calico: Calico,
}

/// k0s `spec.network.nodeLocalLoadBalancing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeLocalLoadBalancing {
    /// `true`.
    pub enabled: bool,
    /// `EnvoyProxy`, the only type k0s offers.
    #[serde(rename = "type")]
    pub kind: String,
}

/// k0s `spec.network.calico`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Calico {
    /// `can-reach=8.8.8.8`: the interface with the default route, the VNet NIC; without it
    /// Calico may pick wg0, whose addresses the other nodes' pods cannot route to.
    pub ip_autodetection_method: String,
    /// Extra environment of calico-node; values are strings (`"true"`, not a YAML boolean).
    pub env_vars: BTreeMap<String, String>,
}

/// The Bash tool's network block.
pub fn bash_tool_network() -> Network {
    Network {
        node_local_load_balancing: NodeLocalLoadBalancing {
            enabled: true,
            kind: "EnvoyProxy".into(),
        },
        provider: "calico".into(),
        calico: Calico {
            ip_autodetection_method: "can-reach=8.8.8.8".into(),
            env_vars: BTreeMap::from([("FELIX_IGNORELOOSERPF".to_owned(), "true".to_owned())]),
        },
    }
}
