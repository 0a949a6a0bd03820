//! The WireGuard plan: a pure function from the spec, the recorded state, the keys on disk and
//! the local routes to addresses, keys, port and interface — plus the typed changes it makes.
//!
//! Everything chosen here is chosen once and kept: the network, the port and the interface
//! name go to `settings`, node addresses and public keys to the node records. A later run
//! re-derives the same plan; adding a node allocates only that node's address.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use k0rdent_core::state::DeploymentState;

use super::key::{KeyOwner, PublicKey};
pub use super::plan_error::PlanError;
use super::settings;
use super::spec::{InterfaceName, NodeNetworkSpec, NodeRole};
use crate::os::LocalRoute;

/// The public keys of the private keys found in `keys/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInventory(pub BTreeMap<KeyOwner, PublicKey>);

/// Which nodes have VMs (and so use their keys), as the caller observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmPresence {
    /// Not known: every recorded key counts as in use.
    Unknown,
    /// These nodes have VMs.
    Known(BTreeSet<String>),
}

impl VmPresence {
    fn in_use(&self, owner: &KeyOwner) -> bool {
        match (self, owner) {
            (VmPresence::Unknown, _) => true,
            (VmPresence::Known(set), KeyOwner::Hub) => !set.is_empty(),
            (VmPresence::Known(set), KeyOwner::Node(n)) => set.contains(n),
        }
    }
}

/// Random values the planner may need, drawn by the caller so that planning stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshChoices {
    /// A port to use if none was chosen before.
    pub port: u16,
}

impl FreshChoices {
    /// A random port in 20000–32767: below Linux's ephemeral range, above well-known services.
    pub fn random() -> Self {
        FreshChoices {
            port: fastrand::u16(20000..=32767),
        }
    }
}

/// Everything [`plan_network`] looks at.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct PlanInputs<'a> {
    pub spec: &'a NodeNetworkSpec,
    pub state: &'a DeploymentState,
    pub keys: &'a KeyInventory,
    /// The local routing table (routes on the deployment's own interface are ignored).
    pub routes: &'a [LocalRoute],
    /// Which nodes have VMs.
    pub vms: &'a VmPresence,
    /// Random choices, used only where nothing is recorded yet (the port).
    pub fresh: FreshChoices,
}

/// What to do about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlan {
    /// The private key in `keys/` stays; this is its public key.
    Keep(PublicKey),
    /// Generate a key pair (nothing uses the old one, if any).
    Generate,
}

/// A node in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // fields named after what they hold
pub struct NodePlan {
    pub name: String,
    pub role: NodeRole,
    pub address: Ipv4Addr,
    pub key: KeyPlan,
}

/// A change the plan makes to the recorded state or the key store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // variants are documented; fields are named after what they hold
pub enum NetworkChange {
    /// Records the tunnel network.
    RecordNetwork(Ipv4Net),
    /// Chooses the UDP port.
    ChoosePort(u16),
    /// Chooses the hub interface name.
    ChooseInterface(InterfaceName),
    /// Gives a node its tunnel address.
    AllocateAddress { node: String, address: Ipv4Addr },
    /// Generates a key pair.
    GenerateKey {
        owner: KeyOwner,
        /// The recorded public key it replaces (its private key is gone and nothing uses it).
        replaces: Option<PublicKey>,
    },
    /// Records the public key of a private key already in `keys/`.
    RecordPublicKey { owner: KeyOwner, key: PublicKey },
    /// Records a node's role.
    SetRole { node: String, role: NodeRole },
}

impl fmt::Display for NetworkChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkChange::RecordNetwork(n) => write!(f, "record tunnel network {n}"),
            NetworkChange::ChoosePort(p) => write!(f, "choose UDP port {p}"),
            NetworkChange::ChooseInterface(i) => write!(f, "choose interface name {i}"),
            NetworkChange::AllocateAddress { node, address } => {
                write!(f, "allocate {address} to node {node}")
            }
            NetworkChange::GenerateKey {
                owner,
                replaces: None,
            } => write!(f, "generate a key pair for {owner}"),
            NetworkChange::GenerateKey {
                owner,
                replaces: Some(old),
            } => write!(
                f,
                "generate a key pair for {owner} (replacing unused key {}…)",
                old.short()
            ),
            NetworkChange::RecordPublicKey { owner, key } => {
                write!(f, "record public key {}… of {owner}", key.short())
            }
            NetworkChange::SetRole { node, role } => write!(f, "record node {node} as {role}"),
        }
    }
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct NetworkPlan {
    pub interface: InterfaceName,
    pub network: Ipv4Net,
    /// UDP port of the nodes.
    pub port: u16,
    pub keepalive_secs: u16,
    /// The hub's tunnel address: the network's first host (`.1`).
    pub hub_address: Ipv4Addr,
    pub hub_key: KeyPlan,
    /// Nodes in spec order.
    pub nodes: Vec<NodePlan>,
    /// Changes to the recorded state and the key store; empty when there is nothing to do.
    pub changes: Vec<NetworkChange>,
}

impl NetworkPlan {
    /// One line per change, or "nothing to do".
    pub fn describe_changes(&self) -> String {
        if self.changes.is_empty() {
            return "WireGuard plan: nothing to do".to_owned();
        }
        self.changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Makes the plan. Pure: the same inputs give the same plan.
///
/// # Errors
/// [`PlanError`]: invalid spec, a changed network/port/interface, an overlap, a key that is
/// missing while in use or that differs from the recorded one.
pub fn plan_network(inputs: PlanInputs<'_>) -> Result<NetworkPlan, PlanError> {
    let PlanInputs {
        spec,
        state,
        keys,
        routes,
        vms,
        fresh,
    } = inputs;
    spec.validate()?;
    let mut changes = Vec::new();
    let network = spec.network.trunc();

    match setting_str(state, settings::NETWORK)? {
        Some(rec) => {
            let recorded: Ipv4Net = rec.parse().map_err(|_| {
                PlanError::Inconsistent(format!("settings.{} = {rec:?}", settings::NETWORK))
            })?;
            if recorded.trunc() != network {
                return Err(PlanError::NetworkChanged {
                    recorded,
                    requested: network,
                });
            }
        }
        None => changes.push(NetworkChange::RecordNetwork(network)),
    }

    let port = match state.settings.get(settings::PORT) {
        Some(v) => {
            let recorded = v
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0)
                .ok_or_else(|| {
                    PlanError::Inconsistent(format!("settings.{} = {v}", settings::PORT))
                })?;
            if let Some(requested) = spec.port.filter(|p| *p != recorded) {
                return Err(PlanError::PortChanged {
                    recorded,
                    requested,
                });
            }
            recorded
        }
        None => {
            let p = spec.port.unwrap_or(fresh.port);
            changes.push(NetworkChange::ChoosePort(p));
            p
        }
    };

    let interface = match setting_str(state, settings::INTERFACE)? {
        Some(rec) => {
            let recorded: InterfaceName = rec.parse().map_err(|_| {
                PlanError::Inconsistent(format!("settings.{} = {rec:?}", settings::INTERFACE))
            })?;
            if let Some(req) = spec.interface.as_ref().filter(|i| **i != recorded) {
                return Err(PlanError::InterfaceChanged {
                    recorded: recorded.to_string(),
                    requested: req.to_string(),
                });
            }
            recorded
        }
        None => {
            let name = match &spec.interface {
                Some(i) => i.clone(),
                None => InterfaceName::for_cluster(
                    state.cluster_id.as_deref().ok_or(PlanError::NoClusterId)?,
                )?,
            };
            changes.push(NetworkChange::ChooseInterface(name.clone()));
            name
        }
    };

    check_overlaps(network, &interface, spec, routes)?;

    let hub_address = first_host(network).ok_or(PlanError::NetworkTooSmall {
        network,
        room: 0,
        needed: spec.nodes.len(),
    })?;
    let nodes = allocate(network, hub_address, spec, state, &mut changes)?;

    let hub_key = plan_key(
        &KeyOwner::Hub,
        recorded_hub_key(state)?,
        keys,
        vms,
        &mut changes,
    )?;
    let mut planned = Vec::with_capacity(nodes.len());
    for (node, address) in nodes {
        let owner = KeyOwner::Node(node.name.clone());
        let recorded = recorded_node_key(state, &node.name)?;
        let key = plan_key(&owner, recorded, keys, vms, &mut changes)?;
        if state.nodes.get(&node.name).map(|r| r.role.as_str()) != Some(node.role.as_str()) {
            changes.push(NetworkChange::SetRole {
                node: node.name.clone(),
                role: node.role,
            });
        }
        planned.push(NodePlan {
            name: node.name.clone(),
            role: node.role,
            address,
            key,
        });
    }

    Ok(NetworkPlan {
        interface,
        network,
        port,
        keepalive_secs: spec.keepalive_secs,
        hub_address,
        hub_key,
        nodes: planned,
        changes,
    })
}

fn setting_str<'a>(state: &'a DeploymentState, key: &str) -> Result<Option<&'a str>, PlanError> {
    match state.settings.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(PlanError::Inconsistent(format!("settings.{key} = {v}"))),
    }
}

fn recorded_hub_key(state: &DeploymentState) -> Result<Option<PublicKey>, PlanError> {
    setting_str(state, settings::HUB_PUBLIC_KEY)?
        .map(|s| {
            s.parse().map_err(|_| {
                PlanError::Inconsistent(format!(
                    "settings.{} is not a key",
                    settings::HUB_PUBLIC_KEY
                ))
            })
        })
        .transpose()
}

fn recorded_node_key(state: &DeploymentState, node: &str) -> Result<Option<PublicKey>, PlanError> {
    state
        .nodes
        .get(node)
        .and_then(|r| r.wireguard_public_key.as_deref())
        .map(|s| {
            s.parse().map_err(|_| {
                PlanError::Inconsistent(format!("nodes.{node}.wireguard_public_key is not a key"))
            })
        })
        .transpose()
}

fn plan_key(
    owner: &KeyOwner,
    recorded: Option<PublicKey>,
    keys: &KeyInventory,
    vms: &VmPresence,
    changes: &mut Vec<NetworkChange>,
) -> Result<KeyPlan, PlanError> {
    let on_disk = keys.0.get(owner);
    match (recorded, on_disk) {
        (Some(r), Some(d)) if r == *d => Ok(KeyPlan::Keep(r)),
        (Some(recorded), Some(d)) => Err(PlanError::KeyMismatch {
            owner: owner.clone(),
            file: owner.key_name(),
            recorded,
            on_disk: d.clone(),
        }),
        (None, Some(d)) => {
            changes.push(NetworkChange::RecordPublicKey {
                owner: owner.clone(),
                key: d.clone(),
            });
            Ok(KeyPlan::Keep(d.clone()))
        }
        (None, None) => {
            changes.push(NetworkChange::GenerateKey {
                owner: owner.clone(),
                replaces: None,
            });
            Ok(KeyPlan::Generate)
        }
        (Some(public), None) => {
            if vms.in_use(owner) {
                let users = match (owner, vms) {
                    (_, VmPresence::Unknown) => "VMs that may exist".to_owned(),
                    (KeyOwner::Hub, VmPresence::Known(set)) => format!(
                        "the VMs {}",
                        set.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    (KeyOwner::Node(n), _) => format!("the VM of node {n}"),
                };
                return Err(PlanError::KeyMissing {
                    owner: owner.clone(),
                    file: owner.key_name(),
                    users,
                    public,
                });
            }
            changes.push(NetworkChange::GenerateKey {
                owner: owner.clone(),
                replaces: Some(public),
            });
            Ok(KeyPlan::Generate)
        }
    }
}

fn first_host(network: Ipv4Net) -> Option<Ipv4Addr> {
    if network.prefix_len() > 30 {
        return None;
    }
    Some(Ipv4Addr::from(u32::from(network.network()) + 1))
}

fn check_overlaps(
    network: Ipv4Net,
    interface: &InterfaceName,
    spec: &NodeNetworkSpec,
    routes: &[LocalRoute],
) -> Result<(), PlanError> {
    let overlaps = |a: Ipv4Net, b: Ipv4Net| a.contains(&b.network()) || b.contains(&a.network());
    for v in &spec.vnet {
        if overlaps(network, *v) {
            return Err(PlanError::Overlap {
                network,
                what: "the VNet",
                other: v.to_string(),
            });
        }
    }
    for r in &spec.reserved {
        if overlaps(network, *r) {
            return Err(PlanError::Overlap {
                network,
                what: "the reserved range",
                other: format!("{r} (k0s pod/service network)"),
            });
        }
    }
    for r in routes {
        if r.destination.prefix_len() == 0 || r.device.as_deref() == Some(interface.as_str()) {
            continue;
        }
        if overlaps(network, r.destination) {
            return Err(PlanError::Overlap {
                network,
                what: "the local route",
                other: r.to_string(),
            });
        }
    }
    Ok(())
}

/// Keeps recorded addresses; gives new nodes the lowest free address from `.11` up (the Bash
/// tool's numbering), then `.2`–`.10`. Addresses of nodes no longer in the spec stay reserved.
fn allocate<'s>(
    network: Ipv4Net,
    hub: Ipv4Addr,
    spec: &'s NodeNetworkSpec,
    state: &DeploymentState,
    changes: &mut Vec<NetworkChange>,
) -> Result<Vec<(&'s super::spec::NodeSpec, Ipv4Addr)>, PlanError> {
    let mut used: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    for (name, rec) in &state.nodes {
        let Some(ip) = rec.tunnel_ip else { continue };
        let std::net::IpAddr::V4(ip) = ip else {
            return Err(PlanError::Inconsistent(format!(
                "nodes.{name}.tunnel_ip {ip} is not IPv4"
            )));
        };
        if !network.contains(&ip)
            || ip == hub
            || ip == network.broadcast()
            || ip == network.network()
        {
            return Err(PlanError::Inconsistent(format!(
                "nodes.{name}.tunnel_ip {ip} is not a node address of {network}"
            )));
        }
        if let Some(other) = used.insert(ip, name) {
            return Err(PlanError::Inconsistent(format!(
                "nodes {other} and {name} share tunnel address {ip}"
            )));
        }
    }
    let base = u32::from(network.network());
    let last = u32::from(network.broadcast()).saturating_sub(1);
    let candidates = (base + 11..=last).chain(base + 2..=(base + 10).min(last));
    let mut free = candidates
        .map(Ipv4Addr::from)
        .filter(|ip| !used.contains_key(ip) && *ip != hub);
    let needed = spec
        .nodes
        .iter()
        .filter(|n| recorded_ip(state, &n.name).is_none())
        .count();
    let mut out = Vec::with_capacity(spec.nodes.len());
    let mut allocated = 0usize;
    for node in &spec.nodes {
        let address = match recorded_ip(state, &node.name) {
            Some(ip) => ip,
            None => {
                let ip = free.next().ok_or(PlanError::NetworkTooSmall {
                    network,
                    room: allocated,
                    needed,
                })?;
                allocated += 1;
                changes.push(NetworkChange::AllocateAddress {
                    node: node.name.clone(),
                    address: ip,
                });
                ip
            }
        };
        out.push((node, address));
    }
    Ok(out)
}

fn recorded_ip(state: &DeploymentState, node: &str) -> Option<Ipv4Addr> {
    match state.nodes.get(node)?.tunnel_ip? {
        std::net::IpAddr::V4(ip) => Some(ip),
        std::net::IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
