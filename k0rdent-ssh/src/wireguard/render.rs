//! Rendering: each node's cloud-init fragment (its VM's custom data cannot change after
//! creation, so it must be right the first time) and the hub's wg-quick file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use k0rdent_core::secret::Secret;
use k0rdent_core::store::KeyStore;
use serde::Serialize;

use super::interface::DesiredPeer;
use super::key::{KeyOwner, PrivateKey};
use super::network::ResolvedNetwork;
use super::prepare::{KeyError, read_private_key};
use super::spec::{InterfaceName, NODE_INTERFACE};

/// The package that provides `wg` and `wg-quick` on Debian and Ubuntu images.
pub const NODE_PACKAGE: &str = "wireguard-tools";

/// Why a config could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // fields named after what they hold
pub enum RenderError {
    /// The node is not part of the network.
    #[error("node {0} is not part of the WireGuard network")]
    UnknownNode(String),
    /// The private key does not belong to the recorded public key.
    #[error("the private key given for {owner} does not match its recorded public key")]
    WrongKey { owner: KeyOwner },
    /// The hub needs every node's public endpoint.
    #[error("no public IP is known for node {0}, so the hub cannot reach it")]
    MissingEndpoint(String),
    /// A key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Serialization failed (not expected for these types).
    #[error("could not serialize the cloud-init fragment: {0}")]
    Yaml(String),
}

/// A node's cloud-init fragment (`#cloud-config`): installs WireGuard, writes
/// `/etc/wireguard/wg0.conf` with the node's own key and no endpoint (the hub initiates),
/// enables `wg-quick@wg0`. It holds the node's private key, so it never prints.
#[derive(Clone, PartialEq, Eq)]
#[allow(missing_docs)] // fields named after what they hold
pub struct NodeBootstrap {
    pub node: String,
    pub cloud_config: Secret<String>,
}

impl std::fmt::Debug for NodeBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBootstrap")
            .field("node", &self.node)
            .field("cloud_config", &self.cloud_config)
            .finish()
    }
}

impl NodeBootstrap {
    /// The document's bytes, for the VM's custom data.
    pub fn to_bytes(&self) -> Secret<Vec<u8>> {
        Secret::new(self.cloud_config.expose().as_bytes().to_vec())
    }
}

#[derive(Serialize)]
struct CloudConfig<'a> {
    packages: [&'a str; 1],
    write_files: [WriteFile<'a>; 1],
    runcmd: [[&'a str; 4]; 1],
}

#[derive(Serialize)]
struct WriteFile<'a> {
    path: &'a str,
    owner: &'a str,
    permissions: &'a str,
    content: &'a str,
}

/// Renders a node's cloud-init fragment.
///
/// # Errors
/// [`RenderError::UnknownNode`], or [`RenderError::WrongKey`] when `private_key` is not the
/// node's recorded key.
pub fn render_node_bootstrap(
    net: &ResolvedNetwork,
    node: &str,
    private_key: &PrivateKey,
) -> Result<NodeBootstrap, RenderError> {
    let n = net
        .node(node)
        .ok_or_else(|| RenderError::UnknownNode(node.to_owned()))?;
    if private_key.public_key() != n.public_key {
        return Err(RenderError::WrongKey {
            owner: KeyOwner::Node(node.to_owned()),
        });
    }
    let mut conf = String::new();
    // `write!` to a String cannot fail.
    let _ = write!(
        conf,
        "# k0rdent node {node}: WireGuard to the operator's hub. The hub initiates, so there is\n\
         # no Endpoint here; it is learned from the hub's first handshake.\n\
         [Interface]\n\
         PrivateKey = {key}\n\
         Address = {addr}/32\n\
         ListenPort = {port}\n\
         \n\
         [Peer]\n\
         # hub\n\
         PublicKey = {hub}\n\
         AllowedIPs = {hub_addr}/32\n",
        key = private_key.to_base64().expose(),
        addr = n.address,
        port = net.port,
        hub = net.hub_public_key,
        hub_addr = net.hub_address,
    );
    let path = format!("/etc/wireguard/{NODE_INTERFACE}.conf");
    let unit = format!("wg-quick@{NODE_INTERFACE}");
    let doc = CloudConfig {
        packages: [NODE_PACKAGE],
        write_files: [WriteFile {
            path: &path,
            owner: "root:root",
            permissions: "0600",
            content: &conf,
        }],
        runcmd: [["systemctl", "enable", "--now", &unit]],
    };
    let yaml = serde_yaml::to_string(&doc).map_err(|e| RenderError::Yaml(e.to_string()))?;
    Ok(NodeBootstrap {
        node: node.to_owned(),
        cloud_config: Secret::new(format!("#cloud-config\n{yaml}")),
    })
}

/// Reads the node's private key from the store and renders its fragment.
///
/// # Errors
/// [`RenderError`].
pub async fn node_bootstrap_from_store(
    secrets: &(impl KeyStore + ?Sized),
    net: &ResolvedNetwork,
    node: &str,
) -> Result<NodeBootstrap, RenderError> {
    let key = read_private_key(secrets, &KeyOwner::Node(node.to_owned())).await?;
    render_node_bootstrap(net, node, &key)
}

/// The hub's wg-quick file. It holds the hub's private key, so it never prints; it is written
/// to `keys/<interface>.conf` (0600) and brought up with `wg-quick up <that path>`.
#[derive(Clone, PartialEq, Eq)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct HubConfig {
    /// Interface name (the file's stem, as wg-quick requires).
    pub interface: InterfaceName,
    pub text: Secret<String>,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("interface", &self.interface)
            .field("text", &self.text)
            .finish()
    }
}

impl HubConfig {
    /// `<interface>.conf`: the key-store name of the file.
    pub fn file_name(&self) -> String {
        format!("{}.conf", self.interface)
    }

    /// Writes the file to the key store (mode 0600).
    ///
    /// # Errors
    /// [`KeyError::Store`].
    pub async fn write(&self, secrets: &(impl KeyStore + ?Sized)) -> Result<(), KeyError> {
        let file = self.file_name();
        secrets
            .put_secret(&file, self.text.expose().as_bytes())
            .await
            .map_err(|source| KeyError::Store {
                file,
                source: Box::new(source),
            })
    }
}

/// Renders the hub's wg-quick file: one peer per node with its public endpoint and a
/// keepalive, no `DNS=` line (the operator's resolvers stay untouched), no fixed listen port.
///
/// # Errors
/// [`RenderError::MissingEndpoint`] for a node without a public IP, or
/// [`RenderError::WrongKey`] for a private key that is not the hub's.
pub fn render_hub_config(
    net: &ResolvedNetwork,
    hub_private_key: &PrivateKey,
    public_ips: &BTreeMap<String, IpAddr>,
) -> Result<HubConfig, RenderError> {
    if hub_private_key.public_key() != net.hub_public_key {
        return Err(RenderError::WrongKey {
            owner: KeyOwner::Hub,
        });
    }
    let mut text = String::new();
    let _ = write!(
        text,
        "# k0rdent hub {iface}: written by k0rdent; `k0rdent vpn up` brings it up.\n\
         [Interface]\n\
         PrivateKey = {key}\n\
         Address = {addr}/{prefix}\n",
        iface = net.interface,
        key = hub_private_key.to_base64().expose(),
        addr = net.hub_address,
        prefix = net.network.prefix_len(),
    );
    for n in &net.nodes {
        let ip = public_ips
            .get(&n.name)
            .ok_or_else(|| RenderError::MissingEndpoint(n.name.clone()))?;
        let _ = write!(
            text,
            "\n[Peer]\n\
             # {name} ({role})\n\
             PublicKey = {key}\n\
             AllowedIPs = {addr}/32\n\
             Endpoint = {endpoint}\n\
             PersistentKeepalive = {keepalive}\n",
            name = n.name,
            role = n.role,
            key = n.public_key,
            addr = n.address,
            endpoint = SocketAddr::new(*ip, net.port),
            keepalive = net.keepalive_secs,
        );
    }
    Ok(HubConfig {
        interface: net.interface.clone(),
        text: Secret::new(text),
    })
}

/// Reads the hub's private key from the store and renders its file.
///
/// # Errors
/// [`RenderError`].
pub async fn hub_config_from_store(
    secrets: &(impl KeyStore + ?Sized),
    net: &ResolvedNetwork,
    public_ips: &BTreeMap<String, IpAddr>,
) -> Result<HubConfig, RenderError> {
    let key = read_private_key(secrets, &KeyOwner::Hub).await?;
    render_hub_config(net, &key, public_ips)
}

/// The hub's peers, beside the hub file rendered from the same network and public IPs.
impl ResolvedNetwork {
    /// The peers the hub should have, with endpoints from the nodes' public IPs: what
    /// [`VpnInterface::sync_peers`](super::VpnInterface::sync_peers) applies in place when an
    /// IP changed (re-render and write the hub file too, for the next `vpn up`).
    ///
    /// # Errors
    /// [`RenderError::MissingEndpoint`] for a node without a public IP.
    pub fn desired_peers(
        &self,
        public_ips: &BTreeMap<String, IpAddr>,
    ) -> Result<Vec<DesiredPeer>, RenderError> {
        self.nodes
            .iter()
            .map(|n| {
                let ip = public_ips
                    .get(&n.name)
                    .ok_or_else(|| RenderError::MissingEndpoint(n.name.clone()))?;
                Ok(DesiredPeer {
                    public_key: n.public_key.clone(),
                    address: n.address,
                    endpoint: self.endpoint(*ip),
                    keepalive_secs: self.keepalive_secs,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wireguard::network::ResolvedNode;
    use crate::wireguard::spec::NodeRole;

    fn key(seed: u8) -> PrivateKey {
        let mut b = [seed; 32];
        b[0] &= 248;
        b[31] = (b[31] & 127) | 64;
        let text = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b);
        PrivateKey::from_key_file(text.as_bytes()).unwrap()
    }

    fn net() -> ResolvedNetwork {
        ResolvedNetwork {
            interface: "wgk0x1y2z3ab".parse().unwrap(),
            network: "172.24.24.0/24".parse().unwrap(),
            port: 23456,
            keepalive_secs: 25,
            hub_address: "172.24.24.1".parse().unwrap(),
            hub_public_key: key(1).public_key(),
            nodes: vec![
                ResolvedNode {
                    name: "ctl-1".into(),
                    role: NodeRole::Controller,
                    address: "172.24.24.11".parse().unwrap(),
                    public_key: key(2).public_key(),
                },
                ResolvedNode {
                    name: "wrk-1".into(),
                    role: NodeRole::Worker,
                    address: "172.24.24.12".parse().unwrap(),
                    public_key: key(3).public_key(),
                },
            ],
        }
    }

    #[test]
    fn node_fragment_has_own_key_no_endpoint_and_enables_the_service() {
        let b = render_node_bootstrap(&net(), "ctl-1", &key(2)).unwrap();
        insta::assert_snapshot!(b.cloud_config.expose());
        assert_eq!(
            format!("{b:?}"),
            r#"NodeBootstrap { node: "ctl-1", cloud_config: [redacted] }"#
        );
    }

    #[test]
    fn node_fragment_refuses_a_foreign_key_or_node() {
        let e = render_node_bootstrap(&net(), "ctl-1", &key(3)).unwrap_err();
        assert!(matches!(e, RenderError::WrongKey { .. }), "{e}");
        let e = render_node_bootstrap(&net(), "nope", &key(2)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "node nope is not part of the WireGuard network"
        );
    }

    #[test]
    fn hub_config_has_one_peer_per_node_with_endpoint_and_keepalive_and_no_dns() {
        let ips: BTreeMap<String, IpAddr> = [
            ("ctl-1".to_owned(), "203.0.113.10".parse().unwrap()),
            ("wrk-1".to_owned(), "203.0.113.11".parse().unwrap()),
        ]
        .into();
        let h = render_hub_config(&net(), &key(1), &ips).unwrap();
        assert_eq!(h.file_name(), "wgk0x1y2z3ab.conf");
        assert!(!h.text.expose().contains("DNS"));
        insta::assert_snapshot!(h.text.expose());
        assert!(!format!("{h:?}").contains(key(1).to_base64().expose().as_str()));
    }

    #[test]
    fn hub_config_needs_every_endpoint() {
        let ips: BTreeMap<String, IpAddr> =
            [("ctl-1".to_owned(), "203.0.113.10".parse().unwrap())].into();
        let e = render_hub_config(&net(), &key(1), &ips).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no public IP is known for node wrk-1, so the hub cannot reach it"
        );
    }
}
