//! The typed input of the WireGuard plan: [`NodeNetworkSpec`].

use std::fmt;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// k0s's default pod network (kube-router and Calico): the tunnel must not overlap it.
pub const K0S_POD_CIDR: &str = "10.244.0.0/16";
/// k0s's default service network: the tunnel must not overlap it.
pub const K0S_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The interface name inside every node (fixed: the node's cloud-init enables `wg-quick@wg0`).
pub const NODE_INTERFACE: &str = "wg0";
/// The hub's keepalive towards each node; it keeps NAT state open and lets nodes without an
/// endpoint answer.
pub const DEFAULT_KEEPALIVE_SECS: u16 = 25;

/// What a node does in the cluster: one type shared with the Azure provider and the CLI.
pub use k0rdent_core::role::NodeRole;

/// Invalid spec input. Each message names the value and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A bad interface name.
    #[error(
        "invalid WireGuard interface name {0:?}: use 1 to 15 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
    )]
    Interface(String),
    /// A bad node name.
    #[error(
        "invalid node name {0:?}: use 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit"
    )]
    NodeName(String),
    /// A node appears twice.
    #[error("node {0:?} is listed twice")]
    DuplicateNode(String),
    #[allow(missing_docs)]
    #[error("the WireGuard network has no nodes")]
    NoNodes,
}

/// A WireGuard interface name valid on Linux (≤ 15 characters) and usable as a wg-quick
/// config file name and a key-store file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InterfaceName(String);

impl InterfaceName {
    #[allow(missing_docs)]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The per-deployment name derived from a cluster id: `wgk0` and the last 8 letters or
    /// digits of the id (the Bash tool's scheme, so its users keep their interface names).
    ///
    /// # Errors
    /// [`SpecError::Interface`] if the id has no letters or digits.
    pub fn for_cluster(cluster_id: &str) -> Result<Self, SpecError> {
        let id = cluster_id.strip_prefix("k0rdent-").unwrap_or(cluster_id);
        let alnum: Vec<char> = id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if alnum.is_empty() {
            return Err(SpecError::Interface(format!("wgk0 + {cluster_id:?}")));
        }
        let tail: String = alnum[alnum.len().saturating_sub(8)..].iter().collect();
        format!("wgk0{tail}").parse()
    }
}

impl FromStr for InterfaceName {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 15
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
            });
        if ok {
            Ok(InterfaceName(s.to_owned()))
        } else {
            Err(SpecError::Interface(s.to_owned()))
        }
    }
}

impl TryFrom<String> for InterfaceName {
    type Error = SpecError;
    fn try_from(s: String) -> Result<Self, SpecError> {
        s.parse()
    }
}

impl From<InterfaceName> for String {
    fn from(n: InterfaceName) -> String {
        n.0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a node name (`[a-z0-9-]`, as Azure resource names and step items).
///
/// # Errors
/// [`SpecError::NodeName`].
pub fn check_node_name(name: &str) -> Result<(), SpecError> {
    let b = name.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(SpecError::NodeName(name.to_owned()))
    }
}

/// One node of the tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct NodeSpec {
    /// The VM's name; [`NodeNetworkSpec::validate`] checks it with [`check_node_name`].
    pub name: String,
    pub role: NodeRole,
}

impl NodeSpec {
    #[allow(missing_docs)]
    pub fn new(name: impl Into<String>, role: NodeRole) -> Self {
        NodeSpec {
            name: name.into(),
            role,
        }
    }
}

/// The WireGuard network of one deployment, as the CLI maps it from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeNetworkSpec {
    /// The tunnel network (e.g. `172.24.24.0/24`); the hub is its `.1`.
    pub network: Ipv4Net,
    /// The nodes, in host order (controllers first); new nodes get addresses in this order.
    pub nodes: Vec<NodeSpec>,
    /// The VNet's address spaces; the tunnel must not overlap them.
    pub vnet: Vec<Ipv4Net>,
    /// Further ranges the tunnel must avoid (default: k0s's pod and service networks).
    pub reserved: Vec<Ipv4Net>,
    /// The UDP port every node listens on; `None` chooses one at random, once.
    pub port: Option<u16>,
    /// The hub interface name; `None` derives it from the cluster id, once.
    pub interface: Option<InterfaceName>,
    /// The hub's keepalive towards the nodes, in seconds.
    pub keepalive_secs: u16,
}

impl NodeNetworkSpec {
    /// A spec with the defaults: k0s ranges reserved, no VNet, port and interface chosen once.
    pub fn new(network: Ipv4Net, nodes: Vec<NodeSpec>) -> Self {
        NodeNetworkSpec {
            network: network.trunc(),
            nodes,
            vnet: Vec::new(),
            reserved: default_reserved(),
            port: None,
            interface: None,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
        }
    }

    /// Checks that there are nodes, that their names are valid and that none is listed twice.
    ///
    /// # Errors
    /// The first [`SpecError`] found.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.nodes.is_empty() {
            return Err(SpecError::NoNodes);
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in &self.nodes {
            check_node_name(&n.name)?;
            if !seen.insert(n.name.as_str()) {
                return Err(SpecError::DuplicateNode(n.name.clone()));
            }
        }
        Ok(())
    }
}

/// k0s's pod and service networks.
pub fn default_reserved() -> Vec<Ipv4Net> {
    [K0S_POD_CIDR, K0S_SERVICE_CIDR]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        assert!("wgk0abcdef12".parse::<InterfaceName>().is_ok());
        for bad in ["", "this-name-is-too-long", "wg k0", "-wg", "WG0", "wg/0"] {
            let e = bad.parse::<InterfaceName>().unwrap_err();
            assert!(e.to_string().contains("15 characters"), "{e}");
        }
    }

    #[test]
    fn interface_name_derives_from_cluster_id_like_the_bash_tool() {
        let n = InterfaceName::for_cluster("k0rdent-x1y2z3ab").unwrap();
        assert_eq!(n.as_str(), "wgk0x1y2z3ab");
        let n = InterfaceName::for_cluster("k0rdent-Lab-03").unwrap();
        assert_eq!(n.as_str(), "wgk0lab03");
        assert!(InterfaceName::for_cluster("---").is_err());
    }

    #[test]
    fn node_names_and_duplicates_are_checked() {
        let net = "172.24.24.0/24".parse().unwrap();
        let mut spec = NodeNetworkSpec::new(net, vec![NodeSpec::new("Bad_Name", NodeRole::Worker)]);
        assert!(matches!(spec.validate(), Err(SpecError::NodeName(_))));
        spec.nodes = vec![
            NodeSpec::new("w-1", NodeRole::Worker),
            NodeSpec::new("w-1", NodeRole::Worker),
        ];
        assert!(matches!(spec.validate(), Err(SpecError::DuplicateNode(_))));
        spec.nodes.clear();
        assert_eq!(spec.validate(), Err(SpecError::NoNodes));
    }

    #[test]
    fn roles_parse_case_insensitively() {
        assert_eq!(
            "Controller".parse::<NodeRole>().unwrap(),
            NodeRole::Controller
        );
        assert!("master".parse::<NodeRole>().is_err());
    }
}
