//! The VPN cut and brought back in the middle of `install_k0s`, on lab VMs (1 controller, 1
//! worker), through the real CLI:
//!
//! 1. while k0sctl has installed k0s on the controller (and sits before the service start), the
//!    worker's wireguard-go is killed — its peer goes silent: the watched VPN gate stops the
//!    run within 5 s with exit 3 naming the node, k0sctl is stopped with it, and after the cut
//!    no SSH session reaches a node (no new `Accepted publickey` in either sshd's log; an
//!    nftables counter on the hub sees only the gate's few TCP probes to the worker);
//! 2. the worker's tunnel back, the hub interface removed (a reboot): `deploy --until
//!    connect_vpn` brings it back, rerunning only `connect_vpn`;
//! 3. the hub interface half-built (a bare wireguard-go interface, no key, no peer): the next
//!    `deploy` repairs it and completes, without rerunning any phase before `connect_vpn`;
//!    a rerun then starts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use k0rdent_ssh::wireguard::ResolvedNetwork;
use k0rdent_tests::lab::cli::harness;
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::pipeline::{CONTROLLER, PipelineLab, WORKER};
use k0rdent_tests::lab::vm_backend::nsg;

fn main() -> ExitCode {
    harness(
        "lab_vpn_cut",
        &[(
            "a_peer_cut_mid_install_stops_the_run_and_the_tunnel_comes_back",
            || Box::pin(a_peer_cut_mid_install_stops_the_run_and_the_tunnel_comes_back()),
        )],
    )
}

/// The steps a run started, by id.
fn started(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(|l| l.split(':').next().unwrap().to_owned())
        .collect()
}

/// An nftables table in the root namespace counting TCP SYNs to `ip` port 22.
struct SynCounter {
    table: String,
}

impl SynCounter {
    fn new(table: &str, ip: std::net::Ipv4Addr) -> SynCounter {
        let rules = format!(
            "add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n counter syns {{ }}\n chain out {{\n  type filter hook output priority 0; policy accept;\n  ip daddr {ip} tcp dport 22 tcp flags syn counter name syns\n }}\n}}\n"
        );
        nsg::nft(None, &["-f", "-"], &rules).unwrap();
        SynCounter {
            table: table.to_owned(),
        }
    }

    fn packets(&self) -> u64 {
        syn_packets(&self.table)
    }
}

fn syn_packets(table: &str) -> u64 {
    nsg::counter_packets(None, "inet", table, "syns")
}

/// `Accepted publickey` lines in each sshd's log: (controller, worker).
fn accepted(backend: &k0rdent_tests::lab::vm_backend::LabVmBackend) -> (usize, usize) {
    let count = |vm: &str| {
        backend
            .with_node(vm, |n| n.sshd.log().matches("Accepted publickey").count())
            .unwrap()
    };
    (count(CONTROLLER), count(WORKER))
}

impl Drop for SynCounter {
    fn drop(&mut self) {
        let _ = nsg::nft(None, &["delete", "table", "inet", &self.table], "");
    }
}

async fn a_peer_cut_mid_install_stops_the_run_and_the_tunnel_comes_back() {
    let lab = PipelineLab::start().await;
    let (backend, cli) = (&lab.backend, &lab.cli);
    cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    let api = lab.api().await;
    let net = ResolvedNetwork::from_state(&cli.state().await).unwrap();
    let hub = net.interface.as_str().to_owned();
    let worker_tip = net.node(WORKER).unwrap().address;
    let table = format!("k0lab_syns_{}", backend.slot().n);
    let syns = SynCounter::new(&table, worker_tip);

    // 1. The cut, once k0sctl has installed k0s on the controller.
    lab.pause_k0sctl_after_install(Some(60));
    let cutter = {
        let table = table.clone();
        lab.when_k0s_installed(move |backend| {
            backend.with_node(WORKER, |n| n.kill_wireguard()).unwrap();
            (Instant::now(), accepted(backend), syn_packets(&table))
        })
    };
    let r = cli.run(&["deploy", "-y"]);
    let ended = Instant::now();
    let (cut, at_cut_accepted, at_cut_syns) =
        cutter.join().unwrap().expect("k0sctl never installed k0s");
    eprintln!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 3, "blocked by the VPN gate");
    let took = ended - cut;
    eprintln!("the run stopped {took:?} after the cut");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("vpn_up") && all.contains(WORKER), "{all}");
    lab.pause_k0sctl_after_install(None);
    assert!(
        cmd::wait_for(5.0, || cmd::output("pgrep", &["-f", "k0sctl apply"])
            .stdout
            .is_empty()),
        "k0sctl outlived the stopped run"
    );
    // Nothing reached a node over SSH after the cut; the hub sent the worker only the
    // gate's bounded probes (a TCP connect each, never a session).
    let (later_accepted, later_syns) = (accepted(backend), syns.packets());
    eprintln!(
        "after the cut: sshd accepts {at_cut_accepted:?} → {later_accepted:?}, SYNs to the worker {at_cut_syns} → {later_syns}"
    );
    assert_eq!(
        later_accepted, at_cut_accepted,
        "an SSH session after the cut"
    );
    // A probe a second (the watch interval), each a connect with a 1 s limit that the
    // kernel may retry once: a handful, bounded by the time to the verdict.
    assert!(
        later_syns - at_cut_syns <= 8,
        "SYNs to the worker after the cut: {}",
        later_syns - at_cut_syns
    );

    // 2. The worker's tunnel back; the hub interface removed: only connect_vpn reruns.
    backend
        .with_node(WORKER, |n| n.wg_quick("up", "wg0"))
        .unwrap()
        .unwrap();
    cmd::run("ip", &["link", "del", &hub]);
    let r = cli.run(&["deploy", "-y", "--until", "connect_vpn"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(started(&r.stderr), ["connect_vpn"], "{}", r.stderr);
    assert!(cmd::find_wireguard_go(&hub).is_some());

    // 3. A half-built hub: its interface exists with neither key nor peer.
    cmd::run("ip", &["link", "del", &hub]);
    assert!(cmd::wait_for(5.0, || cmd::find_wireguard_go(&hub).is_none()));
    cmd::run("wireguard-go", &[&hub]);
    let go = cmd::find_wireguard_go(&hub).unwrap();
    backend.slot().record_pid("half-built-hub", go);
    let dump = cmd::run("wg", &["show", &hub, "peers"]);
    assert!(dump.trim().is_empty(), "half-built: {dump}");
    let r = cli.run(&["deploy", "-y"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        started(&r.stderr),
        ["connect_vpn", "install_k0s", "install_k0rdent"],
        "{}",
        r.stderr
    );
    let peers = cmd::run("wg", &["show", &hub, "peers"]);
    assert_eq!(peers.lines().count(), 2, "repaired: {peers}");
    let r = cli.ok(&["deploy", "-y"]);
    assert!(started(&r.stderr).is_empty(), "{}", r.stderr);
    cli.ok(&["status"]);
    drop(syns);
    lab.finish(Some(api));
}
