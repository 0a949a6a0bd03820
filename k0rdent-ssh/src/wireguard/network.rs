//! [`ResolvedNetwork`]: the WireGuard network with every key known — what configs are
//! rendered from, what the gate expects, and what is recorded in the state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::Ipv4Net;
use k0rdent_core::role::NodeRole;
use k0rdent_core::state::DeploymentState;
use serde::{Deserialize, Serialize};

use super::key::PublicKey;
use super::plan_error::PlanError;
use super::settings;
use super::spec::{DEFAULT_KEEPALIVE_SECS, InterfaceName};

/// A node of the resolved network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // fields named after what they hold
pub struct ResolvedNode {
    pub name: String,
    pub role: NodeRole,
    pub address: Ipv4Addr,
    pub public_key: PublicKey,
}

/// The WireGuard network of a deployment with all keys known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct ResolvedNetwork {
    pub interface: InterfaceName,
    pub network: Ipv4Net,
    /// UDP port the nodes listen on.
    pub port: u16,
    /// Hub keepalive towards the nodes.
    pub keepalive_secs: u16,
    /// The hub's tunnel address: the network's first host (`.1`).
    pub hub_address: Ipv4Addr,
    pub hub_public_key: PublicKey,
    pub nodes: Vec<ResolvedNode>,
}

impl ResolvedNetwork {
    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&ResolvedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node's public endpoint: its public IP and the deployment's port.
    pub fn endpoint(&self, public_ip: IpAddr) -> SocketAddr {
        SocketAddr::new(public_ip, self.port)
    }

    /// Reads the network back from the recorded state (every node that has a tunnel address
    /// and a public key), e.g. for `vpn status` or the gate in a later run.
    ///
    /// # Errors
    /// [`PlanError::Inconsistent`] when the WireGuard settings are missing or unreadable.
    pub fn from_state(state: &DeploymentState) -> Result<Self, PlanError> {
        let missing = |k: &str| {
            PlanError::Inconsistent(format!(
                "settings.{k} is missing: the WireGuard network was not set up yet (run `k0rdent deploy --until setup_vpn`)"
            ))
        };
        let get = |k: &str| {
            state
                .settings
                .get(k)
                .and_then(|v| v.as_str())
                .ok_or_else(|| missing(k))
        };
        let bad = |k: &str| PlanError::Inconsistent(format!("settings.{k} is unreadable"));
        let interface: InterfaceName = get(settings::INTERFACE)?
            .parse()
            .map_err(|_| bad(settings::INTERFACE))?;
        let network: Ipv4Net = get(settings::NETWORK)?
            .parse()
            .map_err(|_| bad(settings::NETWORK))?;
        let hub_public_key: PublicKey = get(settings::HUB_PUBLIC_KEY)?
            .parse()
            .map_err(|_| bad(settings::HUB_PUBLIC_KEY))?;
        let port = state
            .setting::<u16>(settings::PORT)
            .ok_or_else(|| missing(settings::PORT))?;
        let mut nodes = Vec::new();
        for (name, rec) in &state.nodes {
            let (Some(IpAddr::V4(address)), Some(key)) =
                (rec.tunnel_ip, rec.wireguard_public_key.as_deref())
            else {
                continue;
            };
            let public_key = key.parse().map_err(|_| {
                PlanError::Inconsistent(format!("nodes.{name}.wireguard_public_key is not a key"))
            })?;
            let role = rec.role.parse().unwrap_or(NodeRole::Worker);
            nodes.push(ResolvedNode {
                name: name.clone(),
                role,
                address,
                public_key,
            });
        }
        let network = network.trunc();
        Ok(ResolvedNetwork {
            interface,
            hub_address: Ipv4Addr::from(u32::from(network.network()) + 1),
            network,
            port,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
            hub_public_key,
            nodes,
        })
    }

    /// Records the network in the state: settings (network, port, interface, hub key) and
    /// each node's role, tunnel address and public key. Never touches pinned host keys, VM
    /// ids or other node facts.
    pub fn record(&self, state: &mut DeploymentState) {
        state.settings.insert(
            settings::NETWORK.to_owned(),
            self.network.to_string().into(),
        );
        state
            .settings
            .insert(settings::PORT.to_owned(), self.port.into());
        state.settings.insert(
            settings::INTERFACE.to_owned(),
            self.interface.to_string().into(),
        );
        state.settings.insert(
            settings::HUB_PUBLIC_KEY.to_owned(),
            self.hub_public_key.to_base64().into(),
        );
        for n in &self.nodes {
            let rec = state.nodes.entry(n.name.clone()).or_default();
            rec.role = n.role.as_str().to_owned();
            rec.tunnel_ip = Some(IpAddr::V4(n.address));
            rec.wireguard_public_key = Some(n.public_key.to_base64());
        }
    }
}
