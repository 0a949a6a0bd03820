//! A whole tunnel built the way the CLI will: the WireGuard network planned into a state
//! directory (and recorded there, so `k0rdent vpn up` can read it), every node bootstrapped
//! from its generated cloud-init fragment, the hub's generated wg-quick file brought up
//! through `VpnInterface`.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_core::{FileStore, secret::Secret, state::DeploymentState, store::StateStore};
use k0rdent_ssh::os;
use k0rdent_ssh::ssh::{ConnectOptions, Route, SshConnector, SshCredentials};
use k0rdent_ssh::wireguard::{
    KeyOwner, NodeNetworkSpec, NodeRole, NodeSpec, PrivateKey, ResolvedNetwork, Transition,
    TunnelExpectation, TunnelProbe, TunnelReport, VmPresence, VpnInterface,
    node_bootstrap_from_store, prepare_network, read_device, read_private_key, render_hub_config,
    render_node_bootstrap,
};

use super::wireguard::Lab;

/// A lab with the WireGuard network planned, nodes bootstrapped and the hub up.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct Tunnel {
    pub lab: Lab,
    /// The deployment's state directory.
    pub store: FileStore,
    /// The recorded state (network, node records with public IPs).
    pub state: DeploymentState,
    pub net: ResolvedNetwork,
    pub vpn: VpnInterface,
    /// What the gate expects.
    pub exp: TunnelExpectation,
}

impl Tunnel {
    /// `wrong_key`: this node's fragment is rendered with a key the hub does not know.
    pub async fn up(names: &[&str], wrong_key: Option<&str>) -> Tunnel {
        let t = Tunnel::prepared(names, wrong_key).await;
        assert_eq!(t.vpn.up().await.unwrap(), Transition::Changed);
        t.hub_is_up();
        t
    }

    /// Everything but bringing the hub up: the network planned and recorded (the state is
    /// saved in the lab's state directory), the nodes bootstrapped, the hub's wg-quick file
    /// written.
    pub async fn prepared(names: &[&str], wrong_key: Option<&str>) -> Tunnel {
        let lab = Lab::start(names);
        let store = FileStore::new(lab.state_dir());
        let mut state = DeploymentState {
            cluster_id: Some(lab.slot.cluster_id()),
            ..DeploymentState::default()
        };
        let nodes = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                NodeSpec::new(
                    *n,
                    if i == 0 {
                        NodeRole::Controller
                    } else {
                        NodeRole::Worker
                    },
                )
            })
            .collect();
        let spec = NodeNetworkSpec::new(lab.slot.tunnel_net(), nodes);
        let routes = os::local_routes().await.unwrap();
        let prepared = prepare_network(&store, &spec, &state, &routes, &VmPresence::Unknown)
            .await
            .unwrap();
        let net = prepared.network;
        net.record(&mut state);
        for (name, ip) in lab.public_ips() {
            state.nodes.get_mut(&name).unwrap().public_ip = Some(ip.to_string());
        }
        assert_eq!(net.interface.as_str(), lab.slot.hub_interface());

        for node in &lab.nodes {
            let bootstrap = if wrong_key == Some(node.name.as_str()) {
                let other = PrivateKey::generate();
                let mut forged = net.clone();
                forged
                    .nodes
                    .iter_mut()
                    .find(|n| n.name == node.name)
                    .unwrap()
                    .public_key = other.public_key();
                render_node_bootstrap(&forged, &node.name, &other).unwrap()
            } else {
                node_bootstrap_from_store(&store, &net, &node.name)
                    .await
                    .unwrap()
            };
            node.apply_cloud_config(bootstrap.to_bytes().expose())
                .unwrap_or_else(|e| panic!("{}: {e}", node.name));
            assert_eq!(
                node.wireguard_pids().len(),
                1,
                "{}: wireguard-go runs",
                node.name
            );
        }

        let hub_key = read_private_key(&store, &KeyOwner::Hub).await.unwrap();
        let hub = render_hub_config(&net, &hub_key, &lab.public_ips()).unwrap();
        hub.write(&store).await.unwrap();
        let vpn = VpnInterface::new(
            net.interface.clone(),
            store.keys_dir().join(hub.file_name()),
        );
        store.save(&mut state).await.unwrap();
        let exp = TunnelExpectation::from_network(&net, &lab.public_ips());
        Tunnel {
            lab,
            store,
            state,
            net,
            vpn,
            exp,
        }
    }

    /// Records the hub's wireguard-go for the sweep and checks the routes to every node.
    pub fn hub_is_up(&self) {
        let tunnel_ips: Vec<Ipv4Addr> = self.net.nodes.iter().map(|n| n.address).collect();
        self.lab.hub_is_up(&tunnel_ips);
    }

    /// Checks every peer once.
    pub async fn report(&self) -> TunnelReport {
        TunnelProbe::default().report(&self.exp).await
    }

    /// Polls the gate until every peer answers, returning how long it took.
    pub async fn wait_all_alive(&self, limit: Duration) -> Result<Duration, TunnelReport> {
        let start = Instant::now();
        loop {
            let r = self.report().await;
            if r.all_alive() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                return Err(r);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// A node's tunnel address.
    pub fn node_ip(&self, name: &str) -> Ipv4Addr {
        self.net.node(name).unwrap().address
    }

    /// A connector logging in as root with the lab's admin key.
    pub fn connector(&self, route: Route) -> SshConnector {
        SshConnector::new(
            SshCredentials::new("root", Secret::new(self.lab.admin_key_text())),
            ConnectOptions::default(),
            route,
        )
    }

    /// The route through this tunnel (VPN check before each connection).
    pub fn tunnel_route(&self) -> Route {
        Route::Tunnel {
            probe: TunnelProbe::default(),
            expectation: Arc::new(self.exp.clone()),
        }
    }

    /// The last handshake with `node` as the hub sees it.
    pub async fn last_handshake(&self, node: &str) -> Option<std::time::SystemTime> {
        let dev = read_device(self.net.interface.as_str(), Duration::from_secs(1))
            .await
            .unwrap();
        dev.peer(&self.net.node(node).unwrap().public_key)
            .and_then(|p| p.last_handshake)
    }

    /// Takes the hub down and tears the lab down, asserting nothing is left.
    pub async fn finish(self) {
        let _ = self.vpn.down().await;
        if self.vpn.is_up() {
            // Its wg-quick file is gone (a reset removes keys/): remove the link directly.
            let _ = super::cmd::try_run("ip", &["link", "del", self.vpn.name().as_str()]);
        }
        assert!(!self.vpn.is_up());
        self.lab.teardown();
    }
}
