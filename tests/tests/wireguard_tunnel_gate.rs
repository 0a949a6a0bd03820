//! The "VPN up" gate and SSH over the tunnel with real wireguard-go, configured only from the
//! generated hub config (`wg-quick up` in the root namespace, through `VpnInterface`) and the
//! generated node fragments (nodes without endpoints, as in production), each node in its own
//! network namespace with a private `/run/wireguard`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_core::{
    Remedy, StepId,
    gate::{Gate, GateContext, GateVerdict},
    state::DeploymentState,
};
use k0rdent_ssh::node_checks::{NodeCheck, NodeCheckGate};
use k0rdent_ssh::ssh::{NodeTarget, Route, SshFailure, StatePins, write_known_hosts};
use k0rdent_ssh::wireguard::{
    PeerState, Privilege, ProbeOptions, Transition, TunnelProbe, VpnGate, read_device,
};
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::slot::Slot;
use k0rdent_tests::lab::tunnel::Tunnel;

fn ctx(state: &DeploymentState) -> GateContext {
    GateContext {
        step: StepId::parse("install_k0s").unwrap(),
        state: Arc::new(state.clone()),
        watching: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_passes_with_both_nodes_up_ssh_works_over_the_tunnel_and_no_attempt_when_down() {
    let t = Tunnel::up(&["ctl-a", "wrk-a"], None).await;
    let r = t
        .wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    println!("first pass after bring-up: {r:?}");
    let r = t.report().await;
    println!("{r}");
    assert!(r.all_alive(), "{r}");
    assert!(r.elapsed_ms < 3000, "{r}");

    // As the engine runs it: the gate reads the expectation from the recorded state.
    let gate = VpnGate::new(ProbeOptions::default());
    let v = gate.check(&ctx(&t.state)).await;
    assert!(
        matches!(&v, GateVerdict::Pass { evidence } if evidence.starts_with("all 2 peers answered through wgk0lab")),
        "{v:?}"
    );
    // Without the privileges to read the device, the probes alone decide.
    let probes_only = TunnelProbe::new(ProbeOptions {
        read_device: false,
        ..ProbeOptions::default()
    });
    let r = probes_only.report(&t.exp).await;
    assert!(r.all_alive(), "{r}");
    assert!(r.peers.iter().all(|p| p.last_handshake_secs.is_none()));

    // SSH through the tunnel, pinned, exported for OpenSSH, node checks through the same path.
    let pins = Arc::new(StatePins::new(t.state.clone()));
    let c = Arc::new(t.connector(t.tunnel_route()));
    let target = NodeTarget::tunnel(&t.state, "ctl-a").unwrap();
    assert_eq!(
        target.addr,
        SocketAddr::new(IpAddr::V4(t.node_ip("ctl-a")), 22)
    );
    let s = c.session(&target, pins.as_ref()).await.unwrap();
    assert_eq!(
        s.exec("hostname").await.unwrap().stdout_text().trim(),
        "ctl-a"
    );
    assert_eq!(c.attempts(), 1);
    let wg = NodeCheckGate::new(
        NodeCheck::Wireguard {
            address: t.node_ip("ctl-a"),
        },
        target.clone(),
        Arc::clone(&c),
    );
    let v = wg.verdict(pins.as_ref()).await;
    assert_eq!(
        v,
        GateVerdict::pass(format!("ctl-a: wg0 is up with {}", t.node_ip("ctl-a")))
    );
    assert_eq!(c.attempts(), 1, "the node check reused the session");
    let known = write_known_hosts(&t.store, &pins.snapshot().await).unwrap();
    let out = cmd::output(
        "ssh",
        &[
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={}", known.display()),
            "-o",
            "HostKeyAlgorithms=ecdsa-sha2-nistp256",
            "-i",
            &t.lab.admin_key.display().to_string(),
            &format!("root@{}", t.node_ip("ctl-a")),
            "hostname",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ctl-a");
    drop(s);
    drop(wg);

    // Tunnel down: the gate says why, and the connector makes no connection attempt.
    assert_eq!(t.vpn.down().await.unwrap(), Transition::Changed);
    assert_eq!(t.vpn.down().await.unwrap(), Transition::Unchanged);
    let r = t.report().await;
    assert!(
        r.peers
            .iter()
            .all(|p| p.state == PeerState::InterfaceMissing),
        "{r}"
    );
    let v = gate.check(&ctx(&t.state)).await;
    let GateVerdict::Fail { reason, remedy } = v else {
        panic!("gate passed with the VPN down")
    };
    assert!(
        reason.contains("peer ctl-a: the hub interface does not exist"),
        "{reason}"
    );
    assert_eq!(remedy.as_deref(), Some("run `k0rdent vpn up`"));
    let fresh = t.connector(t.tunnel_route());
    for node in ["ctl-a", "wrk-a"] {
        let target = NodeTarget::tunnel(&t.state, node).unwrap();
        let e = fresh.connect(&target, pins.as_ref()).await.unwrap_err();
        assert_eq!(e.kind(), SshFailure::VpnDown, "{e}");
    }
    assert_eq!(
        fresh.attempts(),
        0,
        "no TCP connection was attempted with the tunnel down"
    );
    c.forget("ctl-a").await;
    let e = c.session(&target, pins.as_ref()).await.unwrap_err();
    assert_eq!(e.kind(), SshFailure::VpnDown);
    assert_eq!(c.attempts(), 1, "still only the first attempt");

    // Back up: same config, same peers, the gate passes again.
    assert_eq!(t.vpn.up().await.unwrap(), Transition::Changed);
    assert_eq!(t.vpn.up().await.unwrap(), Transition::Unchanged);
    t.wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_nodes_wireguard_fails_the_gate_for_that_node_only_and_it_recovers() {
    let t = Tunnel::up(&["ctl-b", "wrk-b"], None).await;
    t.wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    let direct = t.connector(Route::Direct);
    let pins = StatePins::new(t.state.clone());
    let public = |n: &str| NodeTarget::new(n, SocketAddr::new(t.lab.public_ips()[n], 22));
    let wg_up = NodeCheck::Wireguard {
        address: t.node_ip("wrk-b"),
    };

    for round in ["without forcing a handshake", "with a forced handshake"] {
        // Kill the node's wireguard-go 2 s after a fresh handshake: its handshake age then
        // says "healthy" for minutes, which is why the gate must not trust it.
        // Re-adding the peer drops its old handshake, so the next one seen is fresh.
        t.vpn
            .reinitiate(&t.net.node("wrk-b").unwrap().public_key)
            .await
            .unwrap();
        let mut hs = None;
        // Normally at once; if the first initiation is lost, the hub retries after 5 s.
        for _ in 0..240 {
            hs = t.last_handshake("wrk-b").await;
            if hs.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let hs = hs.expect("a fresh handshake within 12 s");
        let age = hs.elapsed().unwrap_or_default();
        // Handshake times have a resolution of one second.
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(age)).await;
        t.lab.node("wrk-b").kill_wireguard();
        let killed_at = Instant::now();

        let start = Instant::now();
        let r = t.report().await;
        let took = start.elapsed();
        println!("{round}: after the kill, decided in {took:?}\n{r}");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert!(r.peer("ctl-b").unwrap().is_alive(), "{r}");
        let down = r.peer("wrk-b").unwrap();
        assert!(
            matches!(down.state, PeerState::PeerDown { last_handshake_secs } if last_handshake_secs < 10),
            "{r}"
        );
        assert!(
            down.to_string()
                .starts_with("peer wrk-b: no reply to the probe within 2 s, last handshake")
        );
        let GateVerdict::Fail { reason, .. } = r.verdict() else {
            panic!()
        };
        assert!(
            reason.contains("wrk-b") && !reason.contains("ctl-b"),
            "{reason}"
        );
        let r = TunnelProbe::new(ProbeOptions {
            read_device: false,
            ..ProbeOptions::default()
        })
        .report(&t.exp)
        .await;
        assert_eq!(r.peer("wrk-b").unwrap().state, PeerState::NoReply, "{r}");
        assert!(r.peer("ctl-b").unwrap().is_alive());

        // On the node itself (over its public address): wg0 is gone.
        let s = direct.session(&public("wrk-b"), &pins).await.unwrap();
        let v = wg_up.run(&s).await;
        assert!(
            matches!(&v, GateVerdict::Fail { reason, .. } if reason == "wrk-b: wg0 does not exist"),
            "{v:?}"
        );

        // Restart it as systemd would (`wg-quick up wg0` from the same config).
        t.lab.node("wrk-b").wg_quick("up", "wg0").unwrap();
        println!(
            "{round}: restarted {:?} after the kill",
            killed_at.elapsed()
        );
        assert!(wg_up.run(&s).await.passed());
        let start = Instant::now();
        let limit = if round.starts_with("with") {
            // What `k0rdent vpn up` does for a peer that is down: force a fresh handshake.
            t.vpn
                .reinitiate(&t.net.node("wrk-b").unwrap().public_key)
                .await
                .unwrap();
            Duration::from_secs(5)
        } else {
            // The hub re-handshakes by itself 15 s (+ up to 0.33 s jitter) after its first
            // unanswered packet (here: the first probe after the kill), then the next probe
            // passes: at most ~18 s after that probe, so at most that after the restart.
            Duration::from_secs(20)
        };
        let took = t
            .wait_all_alive(limit)
            .await
            .unwrap_or_else(|r| panic!("{round}: not back within {limit:?}\n{r}"));
        println!(
            "{round}: the gate passed again {:?} after the restart",
            start.elapsed()
        );
        assert!(took <= limit);
    }
    t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_public_key_is_diagnosed_as_never_a_handshake() {
    let t = Tunnel::up(&["ctl-c", "wrk-c"], Some("wrk-c")).await;
    t.wait_all_alive(Duration::from_secs(1)).await.unwrap_err();
    let start = Instant::now();
    let r = t.report().await;
    assert!(start.elapsed() < Duration::from_secs(5));
    println!("{r}");
    assert!(r.peer("ctl-c").unwrap().is_alive(), "{r}");
    let bad = r.peer("wrk-c").unwrap();
    assert_eq!(bad.state, PeerState::NeverHandshake, "{r}");
    assert!(
        bad.reason()
            .contains("never a handshake (wrong public key, wrong endpoint or UDP")
    );
    assert!(
        bad.remedy()
            .unwrap()
            .contains(&format!("UDP {} is open", t.net.port))
    );
    t.finish().await;
}

async fn idle_then_check(idle: Duration, names: &[&str]) -> String {
    let t = Tunnel::up(names, None).await;
    t.wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    // Nothing goes through the tunnel now but the hub's keepalives.
    tokio::time::sleep(idle).await;
    let start = Instant::now();
    let r = t.report().await;
    let took = start.elapsed();
    assert!(r.all_alive(), "after {idle:?} idle:\n{r}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let line = format!(
        "idle {} s: gate passed in {} ms; handshake ages {:?}",
        idle.as_secs(),
        took.as_millis(),
        r.peers
            .iter()
            .map(|p| p.last_handshake_secs)
            .collect::<Vec<_>>()
    );
    t.finish().await;
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_passes_after_the_tunnel_idled_60s_and_after_it_idled_over_180s() {
    // Both in parallel (two slots): the suite takes as long as the longer one.
    let (a, b) = tokio::join!(
        idle_then_check(Duration::from_secs(60), &["ctl-d", "wrk-d"]),
        idle_then_check(Duration::from_secs(185), &["ctl-e", "wrk-e"]),
    );
    println!("{a}\n{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_updated_in_place_and_missing_peers_restored() {
    let t = Tunnel::up(&["ctl-f"], None).await;
    t.wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    let key = t.net.node("ctl-f").unwrap().public_key.clone();
    let good = SocketAddr::new(t.lab.public_ips()["ctl-f"], t.net.port);
    let desired = |ep| k0rdent_ssh::wireguard::DesiredPeer {
        public_key: key.clone(),
        address: t.node_ip("ctl-f"),
        endpoint: ep,
        keepalive_secs: 25,
    };
    let from_network = t.net.desired_peers(&t.lab.public_ips()).unwrap();
    assert_eq!(from_network, vec![desired(good)]);
    assert!(
        t.vpn.sync_peers(&from_network).await.unwrap().is_empty(),
        "nothing to change"
    );
    // A stale endpoint (as after a public IP change the hub does not know yet) is fixed in place.
    let stale = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 250)), t.net.port);
    // WireGuard roams: an authenticated packet from the node (a late TCP segment of an earlier
    // probe) can move the endpoint back to `good` by itself between the two calls. Retry until
    // the sync is the one that fixed it.
    let mut changes = Vec::new();
    for _ in 0..10 {
        t.vpn.sync_peers(&[desired(stale)]).await.unwrap();
        changes = t.vpn.sync_peers(&[desired(good)]).await.unwrap();
        if !changes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(changes.len(), 1);
    assert!(
        changes[0].to_string().contains(&format!("→ {good}")),
        "{}",
        changes[0]
    );
    let ifindex_before =
        std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", t.net.interface)).unwrap();
    // A peer removed behind our back is added back.
    cmd::run(
        "wg",
        &[
            "set",
            t.net.interface.as_str(),
            "peer",
            &key.to_base64(),
            "remove",
        ],
    );
    let r = t.report().await;
    assert_eq!(
        r.peer("ctl-f").unwrap().state,
        PeerState::PeerMissing,
        "{r}"
    );
    let changes = t.vpn.sync_peers(&[desired(good)]).await.unwrap();
    assert_eq!(
        changes,
        vec![k0rdent_ssh::wireguard::PeerChange::Added(key.clone())]
    );
    t.wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    let dev = read_device(t.net.interface.as_str(), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(dev.peers.len(), 1);
    assert_eq!(dev.peers[0].endpoint, Some(good));
    // The link was never recreated.
    let ifindex_after =
        std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", t.net.interface)).unwrap();
    assert_eq!(ifindex_before, ifindex_after);

    // An operator who is not root: the same changes through the real `wg` under `sudo -n`
    // (`wg show dump` read, `wg set` written), here root's own sudo.
    let sudo = t.vpn.clone().with_privilege(Privilege::Sudo);
    let mut changes = Vec::new();
    for _ in 0..10 {
        sudo.sync_peers(&[desired(stale)]).await.unwrap();
        changes = sudo.sync_peers(&[desired(good)]).await.unwrap();
        if !changes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        changes.len(),
        1,
        "the endpoint moved back through sudo wg set"
    );
    assert!(
        sudo.remove_peer(&key).await.unwrap(),
        "removed through sudo"
    );
    assert!(!sudo.remove_peer(&key).await.unwrap(), "already gone");
    let dev = read_device(t.net.interface.as_str(), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(dev.peers.is_empty(), "{dev:?}");
    assert_eq!(
        sudo.sync_peers(&[desired(good)]).await.unwrap(),
        vec![k0rdent_ssh::wireguard::PeerChange::Added(key.clone())]
    );
    t.wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    sudo.reinitiate(&key).await.unwrap();
    let direct = read_device(t.net.interface.as_str(), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        direct.peers[0].allowed_ips,
        [format!("{}/32", t.node_ip("ctl-f"))]
    );
    assert_eq!(
        direct.peers[0].keepalive_secs,
        Some(25),
        "restored as it was"
    );
    t.finish().await;
}

#[test]
fn stale_leftovers_of_a_crashed_test_are_swept_before_the_slot_is_reused() {
    k0rdent_tests::lab::require_lab();
    let slot = Slot::acquire();
    let n = slot.n;
    // What a crashed test leaves: a namespace with a process in it, its veth, a hub link.
    k0rdent_tests::lab::netns::create_node_namespace(&slot, 0);
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &slot.netns(0), "sleep", "600"])
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    assert!(cmd::wait_for(5.0, || std::fs::read_to_string(format!(
        "/proc/{pid}/comm"
    ))
    .is_ok_and(|c| c.trim() == "sleep")));
    cmd::run(
        "ip",
        &["link", "add", &slot.hub_interface(), "type", "bridge"],
    );
    let left = slot.leftovers();
    assert_eq!(left.len(), 3, "{left:?}");
    drop(slot); // the lock goes with the process; the leftovers stay

    let again = Slot::acquire_number(n);
    assert!(again.leftovers().is_empty(), "{:?}", again.leftovers());
    assert!(!cmd::alive(pid), "the stale process was killed");
    let _ = child.wait();
    again.sweep();
    assert!(!again.dir().exists());
}
