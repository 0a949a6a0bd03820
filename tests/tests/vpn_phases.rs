//! `setup_vpn` and `connect_vpn` as the engine runs them, with real wireguard-go: the nodes
//! are lab namespaces bootstrapped from their generated cloud-init fragments, the hub is
//! brought up by the step from the file the step wrote, and the public IPs come from Azure
//! facts in the snapshot (here a stand-in observer, since the VMs are the lab's).
//!
//! What it proves: a fresh run brings the tunnel up; a rerun starts nothing; a removed hub
//! interface comes back with only `connect_vpn` rerun; a half-built interface (wireguard-go
//! without configuration, as a killed `wg-quick up` leaves it) is rebuilt; a node whose
//! public IP changed gets its endpoint updated in place — the hub's wireguard-go is the same
//! process — and nothing downstream reruns in any of these.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_azure::names::VmNames;
use k0rdent_azure::observe::{AzureFacts, GroupFact, OBSERVER};
use k0rdent_cli::deployment::vpn::{ConnectVpnStep, SetupVpnStep, VpnObserver};
use k0rdent_core::observation::{Facts, ObserveError, Observer};
use k0rdent_core::state::DeploymentState;
use k0rdent_core::state::RunOutcome;
use k0rdent_core::store::StateStore;
use k0rdent_core::{Engine, FileStore, Pipeline, store::KeyStore};
use k0rdent_ssh::wireguard::{Privilege, ProbeOptions, read_device};
use k0rdent_testkit::{FakeObserver, FakeStep, FakeWorld, applies};
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::tunnel::Tunnel;
use k0rdent_tests::lab::wireguard::find_wireguard_go;

/// Azure as far as these steps read it: the nodes' public IPs.
struct PublicIps(Arc<Mutex<BTreeMap<String, IpAddr>>>);

#[async_trait]
impl Observer for PublicIps {
    fn name(&self) -> &str {
        OBSERVER
    }

    async fn observe(&self, _state: &DeploymentState) -> Result<Facts, ObserveError> {
        let ips = self.0.lock().unwrap().clone();
        Ok(Facts::new(AzureFacts {
            group: GroupFact::Present {
                tags: BTreeMap::new(),
                provisioning_state: Some("Succeeded".into()),
            },
            resources: BTreeMap::new(),
            vms: BTreeMap::new(),
            public_ips: ips
                .into_iter()
                .map(|(vm, ip)| {
                    (
                        VmNames::new(&vm).public_ip.to_ascii_lowercase(),
                        Some(ip.to_string()),
                    )
                })
                .collect(),
            nsg: None,
            vnet: None,
            adopted_public_ips: BTreeMap::new(),
            requests: 0,
        }))
    }
}

fn pipeline(
    t: &Tunnel,
    world: &Arc<FakeWorld>,
    ips: &Arc<Mutex<BTreeMap<String, IpAddr>>>,
) -> Pipeline {
    let keys: Arc<dyn KeyStore> = Arc::new(t.store.clone());
    let dir = t.store.keys_dir();
    let mut b = Pipeline::builder();
    for n in &t.lab.nodes {
        b = b.step(FakeStep::new(&format!("create_vms/{}", n.name), world));
    }
    b.step(SetupVpnStep::new(Privilege::Root, &dir))
        .step(ConnectVpnStep::new(Privilege::Root, &dir))
        .step(FakeStep::new("install_k0s", world).after(&["connect_vpn"]))
        .observer(VpnObserver::new(keys, ProbeOptions::default()))
        .observer(PublicIps(ips.clone()))
        .observer(FakeObserver(world.clone()))
        .build()
        .unwrap()
}

/// Runs the pipeline; returns the steps that ran.
async fn deploy(p: Pipeline, store: &FileStore) -> Vec<String> {
    let report = Engine::builder(p, Arc::new(store.clone()))
        .build()
        .unwrap()
        .deploy()
        .await
        .unwrap();
    assert_eq!(
        report.outcome,
        RunOutcome::Succeeded,
        "{:#?}",
        report.final_plan
    );
    report.steps.iter().map(|s| s.step.to_string()).collect()
}

fn hub_pid(iface: &str) -> Option<i32> {
    find_wireguard_go(iface)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpn_phases_bring_the_tunnel_up_restore_it_and_follow_a_new_public_ip_in_place() {
    let t = Tunnel::prepared(&["ctl-v", "wrk-v"], None).await;
    let iface = t.net.interface.to_string();
    let world = FakeWorld::new();
    let ips = Arc::new(Mutex::new(t.lab.public_ips()));
    let p = || pipeline(&t, &world, &ips);

    // Fresh: everything runs and the tunnel answers.
    let ran = deploy(p(), &t.store).await;
    assert_eq!(
        ran.iter().filter(|s| s.contains("vpn")).collect::<Vec<_>>(),
        ["setup_vpn", "connect_vpn"]
    );
    t.hub_is_up();
    t.wait_all_alive(Duration::from_secs(10))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(
        applies(&world)
            .iter()
            .filter(|s| *s == "install_k0s")
            .count(),
        1
    );
    let pid = hub_pid(&iface).expect("the hub's wireguard-go");

    // A rerun starts nothing.
    assert_eq!(deploy(p(), &t.store).await, Vec::<String>::new());
    assert_eq!(hub_pid(&iface).as_ref(), Some(&pid));

    // The state names this machine as the hub. Another machine taking the hub over (as the
    // state would say after its `vpn up`) makes connect_vpn take it back, and nothing else.
    let here = k0rdent_core::store::hostname();
    let mut st = t.store.load().await.unwrap().unwrap();
    assert_eq!(
        st.vpn_hub.as_ref().map(|h| h.host.as_str()),
        Some(here.as_str())
    );
    st.vpn_hub.as_mut().unwrap().host = format!("{here}-elsewhere");
    t.store.save(&mut st).await.unwrap();
    assert_eq!(deploy(p(), &t.store).await, ["connect_vpn"]);
    let st = t.store.load().await.unwrap().unwrap();
    assert_eq!(
        st.vpn_hub.as_ref().map(|h| h.host.as_str()),
        Some(here.as_str())
    );
    assert_eq!(
        hub_pid(&iface).as_ref(),
        Some(&pid),
        "the live link was kept"
    );

    // The interface is gone (a reboot, `vpn down`): only connect_vpn reruns.
    t.vpn.down().await.unwrap();
    assert_eq!(deploy(p(), &t.store).await, ["connect_vpn"]);
    t.hub_is_up();
    t.wait_all_alive(Duration::from_secs(10))
        .await
        .unwrap_or_else(|r| panic!("{r}"));

    // A half-built interface: wireguard-go running without any configuration, as a
    // `wg-quick up` killed before `wg setconf` leaves it. It is taken down and rebuilt.
    t.vpn.down().await.unwrap();
    cmd::run("wireguard-go", &[&iface]);
    let dev = read_device(&iface, Duration::from_secs(2)).await.unwrap();
    assert_eq!(dev.public_key, None, "half-built: no key");
    assert_eq!(deploy(p(), &t.store).await, ["connect_vpn"]);
    let dev = read_device(&iface, Duration::from_secs(2)).await.unwrap();
    assert_eq!(dev.public_key.as_ref(), Some(&t.net.hub_public_key));
    assert_eq!(dev.peers.len(), 2);
    t.hub_is_up();
    t.wait_all_alive(Duration::from_secs(10))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    let pid = hub_pid(&iface).expect("the hub's wireguard-go");

    // wrk-v comes back with another public IP (its old one is gone): the endpoint is updated
    // in place on the live interface, the hub file is rewritten, nothing else runs.
    let node = t.lab.node("wrk-v");
    let base = t.lab.slot.host_ip(node.index).octets()[3] - 1;
    let (host, new) = (
        Ipv4Addr::new(203, 0, 113, base + 1),
        Ipv4Addr::new(203, 0, 113, base + 2),
    );
    let veth = t.lab.slot.veth(node.index);
    cmd::run("ip", &["addr", "add", &format!("{host}/30"), "dev", &veth]);
    cmd::run(
        "ip",
        &[
            "-n",
            &node.netns,
            "addr",
            "add",
            &format!("{new}/30"),
            "dev",
            "eth0",
        ],
    );
    cmd::run(
        "ip",
        &[
            "-n",
            &node.netns,
            "addr",
            "del",
            &format!("{}/30", node.public_ip),
            "dev",
            "eth0",
        ],
    );
    ips.lock().unwrap().insert("wrk-v".into(), IpAddr::V4(new));
    assert_eq!(deploy(p(), &t.store).await, ["setup_vpn"]);
    assert_eq!(
        hub_pid(&iface).as_ref(),
        Some(&pid),
        "the interface was not recreated"
    );
    let dev = read_device(&iface, Duration::from_secs(2)).await.unwrap();
    let wrk = t.net.node("wrk-v").unwrap();
    assert_eq!(
        dev.peer(&wrk.public_key).unwrap().endpoint,
        Some(SocketAddr::new(IpAddr::V4(new), t.net.port))
    );
    let file = std::fs::read_to_string(t.store.keys_dir().join(format!("{iface}.conf"))).unwrap();
    assert!(
        file.contains(&format!("Endpoint = {new}:{}", t.net.port)),
        "{file}"
    );
    let probe = k0rdent_ssh::wireguard::TunnelProbe::default();
    let mut alive = false;
    for _ in 0..20 {
        if probe
            .check_peer(&t.exp, "wrk-v")
            .await
            .is_some_and(|h| h.is_alive())
        {
            alive = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(alive, "wrk-v answers through the tunnel at its new address");
    assert_eq!(
        applies(&world)
            .iter()
            .filter(|s| *s == "install_k0s")
            .count(),
        1,
        "nothing downstream reran: {:?}",
        applies(&world)
    );
    cmd::run("ip", &["addr", "del", &format!("{host}/30"), "dev", &veth]);
    t.finish().await;
}
