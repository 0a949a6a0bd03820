//! The keys of `DeploymentState::settings` owned by the WireGuard plan: it chooses these values
//! once, and [`ResolvedNetwork`](super::ResolvedNetwork) records them and reads them back.

/// The UDP port every node listens on (the NSG opens it).
pub const PORT: &str = "wireguard.port";
/// The tunnel network in CIDR notation.
pub const NETWORK: &str = "wireguard.network";
/// The hub interface name.
pub const INTERFACE: &str = "wireguard.interface";
/// The hub's public key.
pub const HUB_PUBLIC_KEY: &str = "wireguard.hub_public_key";
