//! The WireGuard side of node access: plan (keys, addresses, port, interface), configs (node
//! cloud-init fragment, hub wg-quick file), the hub interface, and the "VPN up" gate.
//!
//! Topology (hub and spoke, as the Bash tool): the operator's machine is the hub `.1`; nodes
//! have no endpoint for the hub, only the hub initiates and keeps the tunnel alive, so
//! liveness is proven by a reply through the tunnel, never by handshake age.

pub mod device;
pub mod diagnosis;
pub mod gate;
pub mod interface;
pub mod key;
pub mod network;
pub mod plan;
pub mod plan_error;
pub mod prepare;
pub mod render;
pub mod settings;
pub mod spec;
mod wg_tool;

pub use diagnosis::{PeerHealth, PeerState, ProbeOutcome};
pub use gate::{
    DeviceStatus, ExpectedPeer, ProbeOptions, TunnelExpectation, TunnelProbe, TunnelReport, VpnGate,
};
pub use interface::{
    DesiredPeer, DeviceSnapshot, PeerChange, PeerSnapshot, Privilege, ReadError, Transition,
    VpnError, VpnInterface, read_device, read_device_as,
};
pub use key::{InvalidKey, KeyOwner, PrivateKey, PublicKey};
pub use network::{ResolvedNetwork, ResolvedNode};
pub use plan::{
    FreshChoices, KeyInventory, KeyPlan, NetworkChange, NetworkPlan, NodePlan, PlanError,
    PlanInputs, VmPresence, plan_network,
};
pub use prepare::{
    KeyError, PrepareError, PreparedNetwork, load_inventory, prepare_network, read_private_key,
    resolve,
};
pub use render::{
    HubConfig, NodeBootstrap, RenderError, hub_config_from_store, node_bootstrap_from_store,
    render_hub_config, render_node_bootstrap,
};
pub use spec::{InterfaceName, NodeNetworkSpec, NodeRole, NodeSpec, SpecError};
