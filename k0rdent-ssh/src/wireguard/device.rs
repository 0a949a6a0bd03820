//! The hub device as read and as wanted: plain data shared by the device API path
//! ([`super::interface`]) and the `wg` tool path under sudo.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::key::PublicKey;

/// One peer of a device, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    #[allow(missing_docs)]
    pub public_key: PublicKey,
    /// Its endpoint, if known.
    pub endpoint: Option<SocketAddr>,
    /// Its allowed IPs (`a.b.c.d/n`).
    pub allowed_ips: Vec<String>,
    /// Its persistent-keepalive interval (`None`: off).
    pub keepalive_secs: Option<u16>,
    /// The last handshake (`None`: never).
    pub last_handshake: Option<SystemTime>,
    /// Bytes received from it since the device was created.
    pub rx_bytes: u64,
    /// Bytes sent to it since the device was created.
    pub tx_bytes: u64,
}

/// A device as read (no private key).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DeviceSnapshot {
    pub interface: String,
    pub public_key: Option<PublicKey>,
    pub listen_port: Option<u16>,
    pub peers: Vec<PeerSnapshot>,
}

impl DeviceSnapshot {
    /// A peer by key.
    pub fn peer(&self, key: &PublicKey) -> Option<&PeerSnapshot> {
        self.peers.iter().find(|p| p.public_key == *key)
    }
}

/// What a peer should look like on the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredPeer {
    #[allow(missing_docs)]
    pub public_key: PublicKey,
    /// Its tunnel address (allowed as /32).
    pub address: std::net::Ipv4Addr,
    /// Its public IP and WireGuard port.
    pub endpoint: SocketAddr,
    /// The persistent-keepalive interval the hub sends it.
    pub keepalive_secs: u16,
}
