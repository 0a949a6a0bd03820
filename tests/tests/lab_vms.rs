//! The real `k0rdent` CLI against the ARM emulator whose VMs are real lab nodes
//! (`LabVmBackend`): `deploy --until connect_vpn` creates a controller and a worker, brings
//! our own WireGuard hub up to them, and `k0rdent ssh` reaches each node through the tunnel as
//! the configuration's admin user with the pinned host keys, while the NSG the CLI created
//! (enforced in each VM) drops SSH to the public IPs. A rerun starts nothing; `vpn
//! down` then `deploy` brings only the tunnel back; a deallocated and restarted VM comes back
//! with its tunnel; `reset` leaves no namespace, process or interface.
//!
//! The `k0rdent` binary belongs to another package, so this test has its own `main`: started
//! by `LabCli`, the same executable is the real CLI (`k0rdent_cli::main`, exactly what the
//! `k0rdent` binary runs; see `k0rdent_tests::lab::cli`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::Duration;

use k0rdent_arm_emulator::{BackendVm, VmBackend};
use k0rdent_ssh::wireguard::ResolvedNetwork;
use k0rdent_tests::lab::{
    self,
    cli::{LabCli, harness},
    cmd,
    pipeline::emulated_vms,
    vm_backend::{LabVmBackend, LabVmOptions, VmStatus, nsg},
};

const CONFIG: &str = include_str!("../fixtures/lab-vms-1x1.yaml");
const CONTROLLER: &str = "k0s-controller-1";
const WORKER: &str = "k0s-worker-1";

fn main() -> ExitCode {
    harness(
        "lab_vms",
        &[
            (
                "a_hub_nobody_recorded_is_found_by_its_peers_and_swept",
                || Box::pin(async { a_hub_nobody_recorded_is_found_by_its_peers_and_swept() }),
            ),
            ("a_vm_created_again_under_its_name_is_a_new_node", || {
                Box::pin(a_vm_created_again_under_its_name_is_a_new_node())
            }),
            ("a_moved_public_ip_stops_at_once", || {
                Box::pin(a_moved_public_ip_stops_at_once())
            }),
            ("deploy_ssh_rerun_vpn_down_power_cycle_and_reset", || {
                Box::pin(deploy_ssh_rerun_vpn_down_power_cycle_and_reset())
            }),
        ],
    )
}

fn link_exists(name: &str) -> bool {
    cmd::try_run("ip", &["link", "show", name]).is_ok()
}

fn wireguard_go_pids(backend: &LabVmBackend, vm: &str) -> Vec<i32> {
    backend
        .with_node(vm, lab::wireguard::LabNode::wireguard_pids)
        .unwrap()
}

/// A test that crashed before recording the hub the CLI brought up (its name comes from a
/// random cluster id): the next holder of the slot finds it by its peers' endpoints in the
/// slot's /26 and removes it with its wireguard-go.
fn a_hub_nobody_recorded_is_found_by_its_peers_and_swept() {
    let slot = lab::slot::Slot::acquire();
    let n = slot.n;
    let iface = format!("wgk0stale{n:02}");
    cmd::run("wireguard-go", &[&iface]);
    let key = cmd::sh("wg genkey | wg pubkey");
    let endpoint = format!("{}:51820", slot.node_ip(3));
    cmd::run(
        "wg",
        &[
            "set",
            &iface,
            "peer",
            key.trim(),
            "endpoint",
            &endpoint,
            "allowed-ips",
            "10.255.255.1/32",
        ],
    );
    let pid = cmd::find_wireguard_go(&iface).expect("wireguard-go runs");
    assert!(slot.hub_interfaces().contains(&iface));
    assert!(
        slot.leftovers().iter().any(|l| l.contains(&iface)),
        "{:?}",
        slot.leftovers()
    );
    drop(slot); // the "crash": the lock goes, nothing is cleaned up
    let again = lab::slot::Slot::acquire_number(n);
    assert!(!link_exists(&iface), "the unrecorded hub {iface} was swept");
    assert!(
        cmd::wait_for(5.0, || !cmd::alive(pid)),
        "its wireguard-go {pid} is gone"
    );
    assert!(!std::path::Path::new(&format!("/run/wireguard/{iface}.sock")).exists());
    assert_eq!(again.leftovers(), Vec::<String>::new());
}

fn backend_vm(name: &str, vm_id: &str) -> BackendVm {
    BackendVm {
        name: name.to_owned(),
        vm_id: vm_id.to_owned(),
        admin_user: "azureuser".to_owned(),
        ssh_public_keys: vec![],
        custom_data: k0rdent_core::secret::Secret::new(b"#cloud-config\n{}\n".to_vec()),
        public_ip: None,
        private_ip: None,
        subnet_prefix: None,
        size: "Standard_B2s".to_owned(),
        zone: None,
        // No NSG: everything gets in, as on Azure.
        inbound: k0rdent_arm_emulator::InboundRules::default(),
    }
}

/// The backend alone: the same instance again changes nothing; a new instance under the same
/// name (its old one deleted behind the client's back) is a new node with new host keys and
/// machine-id; a second delete does nothing.
async fn a_vm_created_again_under_its_name_is_a_new_node() {
    let backend = LabVmBackend::new(LabVmOptions {
        boot_delay: Duration::ZERO,
        api: None,
    });
    let boot = |b: &LabVmBackend| b.wait_all_booted(Duration::from_secs(20)).unwrap();
    let facts = |b: &LabVmBackend| {
        b.with_node("vm", |n| {
            (
                n.sshd.pid,
                n.sshd.host_public_keys(),
                n.run(&["cat", "/etc/machine-id"]).unwrap(),
                n.run(&["hostname"]).unwrap(),
            )
        })
        .unwrap()
    };
    let ip = backend
        .create(&backend_vm("vm", "11111111-aaaa"))
        .await
        .unwrap();
    boot(&backend);
    let first = facts(&backend);
    assert_eq!(first.2.trim(), format!("11111111aaaa{}", "0".repeat(20)));
    assert_eq!(first.3, "vm\n");
    let again = backend
        .create(&backend_vm("vm", "11111111-aaaa"))
        .await
        .unwrap();
    assert_eq!(again, ip);
    assert_eq!(
        facts(&backend).0,
        first.0,
        "the same instance is left alone"
    );
    let other = backend
        .create(&backend_vm("vm", "22222222-bbbb"))
        .await
        .unwrap();
    boot(&backend);
    let second = facts(&backend);
    assert_eq!(other, ip, "the freed node index is reused");
    assert_ne!(second.0, first.0);
    assert_ne!(second.1, first.1, "a new instance has new host keys");
    assert_ne!(second.2, first.2);
    backend.delete("vm").await.unwrap();
    backend.delete("vm").await.unwrap();
    assert!(backend.names().is_empty());
    backend.teardown();
}

/// The backend alone, a VM without an NSG: its public address reaches sshd through the edge's
/// 1:1 NAT; once the VM moves to another public address, the new one answers, the old one
/// stops at once, even for the connection opened before (conntrack still remembers its
/// translation), as when Azure releases an address; delete takes the mapping away.
async fn a_moved_public_ip_stops_at_once() {
    use std::io::{Read as _, Write as _};
    let backend = LabVmBackend::new(LabVmOptions {
        boot_delay: Duration::ZERO,
        api: None,
    });
    let old = backend
        .create(&backend_vm("vm", "33333333-cccc"))
        .await
        .unwrap()
        .unwrap();
    backend.wait_all_booted(Duration::from_secs(20)).unwrap();
    let banner = |stream: &mut std::net::TcpStream| {
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let connect = |ip: std::net::IpAddr| {
        std::net::TcpStream::connect_timeout(&(ip, 22).into(), Duration::from_secs(1))
    };
    let mut before = connect(old).unwrap();
    assert!(
        banner(&mut before).starts_with("SSH-2.0-"),
        "sshd through the NAT"
    );
    let slot = backend.slot();
    let drops = lab::edge::released_drops(slot);

    let new = backend.move_public_ip("vm");
    assert_eq!(backend.public_ip("vm"), Some(new));
    let mut after = connect(new.into()).unwrap();
    assert!(
        banner(&mut after).starts_with("SSH-2.0-"),
        "the new address answers"
    );
    // The old connection: sshd would answer a client banner; nothing comes back.
    before.write_all(b"SSH-2.0-lab\r\n").unwrap();
    let mut buf = [0u8; 64];
    before
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let got = before.read(&mut buf);
    assert!(
        matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
            || e.kind() == std::io::ErrorKind::TimedOut),
        "the old address is released, its connection dead: {got:?}"
    );
    assert!(connect(old).is_err(), "a new connection to the old address");
    let dropped = lab::edge::released_drops(slot);
    assert!(dropped > drops, "released drops {drops} → {dropped}");
    let private = backend.private_ip("vm").unwrap().addr();
    assert_eq!(lab::edge::mappings(slot), [(new, private)]);

    backend.delete("vm").await.unwrap();
    assert_eq!(lab::edge::mappings(slot), []);
    backend.teardown();
    assert!(!lab::edge::exists(slot), "teardown removes the edge");
}

async fn deploy_ssh_rerun_vpn_down_power_cycle_and_reset() {
    let (backend, emu) =
        emulated_vms(Duration::from_millis(1500), Duration::from_millis(300)).await;
    let slot = backend.slot();
    let line = "wireguard_network: 172.30.0.0/24";
    assert!(
        CONFIG.contains(line),
        "the fixture's WireGuard network line changed"
    );
    let config = CONFIG.replace(line, &format!("wireguard_network: {}", slot.tunnel_net()));
    let cli = LabCli::new(emu, &slot.dir().join("cli"), &config);

    // Fresh: the VMs are created as lab nodes, the hub comes up to them.
    let first = cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    let deploy_took = first.took;
    eprintln!("{}", first.stderr);
    let net = ResolvedNetwork::from_state(&cli.state().await).unwrap();
    let hub = net.interface.to_string();
    slot.record_hub(&hub);
    assert!(link_exists(&hub), "the hub interface {hub} is up");
    assert_eq!(backend.names(), [CONTROLLER, WORKER]);
    for vm in [CONTROLLER, WORKER] {
        let ip = backend.public_ip(vm).unwrap();
        assert!(slot.subnet().contains(&ip));
        assert_eq!(
            cli.emu.vm(vm).unwrap().public_ip,
            Some(std::net::IpAddr::V4(ip)),
            "the emulator records the node's address as {vm}'s public IP"
        );
        // Lab traffic stays on the machine: node addresses on their veths, tunnel on the hub.
        lab::netns::assert_route(net.node(vm).unwrap().address, &hub);
    }
    backend
        .wait_all_booted(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    vnet_behind_the_edge(&backend, &cli);
    let status = cli.wait_vpn_alive(Duration::from_secs(20));
    assert_eq!(
        status.code, 0,
        "vpn status:\n{}{}",
        status.stdout, status.stderr
    );

    // ssh through the tunnel as the admin user; host keys pinned on first contact.
    let known_hosts = cli.state_dir().join("known_hosts");
    for vm in [CONTROLLER, WORKER] {
        let r = cli.ok(&["ssh", vm, "--", "hostname"]);
        assert_eq!(r.stdout, format!("{vm}\n"), "{}", r.stderr);
    }
    let pinned = std::fs::read_to_string(&known_hosts).unwrap();
    for vm in [CONTROLLER, WORKER] {
        let addr = net.node(vm).unwrap().address.to_string();
        let types: Vec<&str> = pinned
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(addr.as_str()))
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        assert_eq!(
            types.len(),
            3,
            "{vm}: rsa, ecdsa and ed25519 pinned: {pinned}"
        );
    }
    // Again from the pinned known_hosts: who we are, sudo without a password, cloud-init's files.
    let r = cli.ok(&[
        "ssh",
        CONTROLLER,
        "--",
        "id -un; sudo -n id -u; sudo -n test -f /var/lib/cloud/instance/boot-finished && echo booted; cat /etc/machine-id",
    ]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        ["k0rdent", "0", "booted"],
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(lines[3].len(), 32, "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), pinned);
    // The user exists only inside the nodes.
    assert!(cmd::try_run("id", &["k0rdent"]).is_err());

    // The NSG the CLI created (only UDP to the WireGuard port gets in) is enforced in each
    // VM: the tunnel works (above), while SSH to the public IP is dropped, and counted.
    for vm in [CONTROLLER, WORKER] {
        let ns = slot.netns(backend.index(vm).unwrap());
        let table = nsg::nft(Some(&ns), &["list", "table", "inet", nsg::TABLE], "").unwrap();
        assert!(
            table.contains(&format!("udp dport {} return", net.port))
                && table.contains("DenyAllInBound"),
            "{vm}: the NSG from the emulator, with the configuration's WireGuard port:\n{table}"
        );
        let ip = backend.public_ip(vm).unwrap();
        let before = backend.nsg_drops(vm);
        let started = std::time::Instant::now();
        let direct = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip.into(), 22),
            Duration::from_secs(1),
        );
        let waited = started.elapsed();
        assert!(direct.is_err(), "{vm}: SSH to its public IP {ip} got in");
        assert!(
            waited >= Duration::from_millis(900),
            "{vm}: the SYN was dropped (a timeout), not refused: {waited:?}"
        );
        let after = backend.nsg_drops(vm);
        assert!(after > before, "{vm}: NSG drops {before} → {after}");
        eprintln!("{vm}: TCP {ip}:22 timed out after {waited:?}; NSG drops {before} → {after}");
    }
    nsg_rule_removed_and_restored(&backend, &cli, net.port);

    // A rerun starts nothing: no emulator write, no step, the same hub process.
    let hub_go = cmd::find_wireguard_go(&hub).unwrap();
    let node_go = wireguard_go_pids(&backend, WORKER);
    let writes = cli.writes().len();
    let again = cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    assert_eq!(
        again.started_steps(),
        Vec::<&str>::new(),
        "{}",
        again.stderr
    );
    assert_eq!(cli.writes().len(), writes, "the rerun wrote to Azure");
    assert_eq!(
        cmd::find_wireguard_go(&hub),
        Some(hub_go),
        "wg-quick ran again"
    );
    assert_eq!(wireguard_go_pids(&backend, WORKER), node_go);

    // vpn down, then deploy: only connect_vpn runs and the tunnel answers again.
    cli.ok(&["vpn", "down"]);
    assert!(!link_exists(&hub), "vpn down removed {hub}");
    assert_ne!(cli.run(&["vpn", "status"]).code, 0);
    let back = cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    let steps = back.started_steps();
    assert!(
        steps.len() == 1 && steps[0].starts_with("> connect_vpn"),
        "only connect_vpn runs: {}",
        back.stderr
    );
    assert_eq!(
        cli.writes().len(),
        writes,
        "bringing the tunnel back wrote to Azure"
    );
    slot.record_hub(&hub);
    let status = cli.wait_vpn_alive(Duration::from_secs(20));
    assert_eq!(
        status.code, 0,
        "vpn status:\n{}{}",
        status.stdout, status.stderr
    );
    assert_eq!(
        cli.ok(&["ssh", WORKER, "--", "hostname"]).stdout,
        format!("{WORKER}\n")
    );

    // The worker deallocated (through the backend, as Azure's deallocate would): nothing of
    // it runs; started again, sshd and wg-quick@wg0 come back and the tunnel answers.
    backend.deallocate(WORKER).await.unwrap();
    assert_eq!(backend.status(WORKER), Some(VmStatus::Off));
    assert!(lab::netns::pids(&slot.netns(backend.index(WORKER).unwrap())).is_empty());
    assert_eq!(
        cli.run(&["ssh", WORKER, "--", "true"]).code,
        3,
        "a silent peer blocks"
    );
    backend.start(WORKER).await.unwrap();
    backend
        .wait_all_booted(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(wireguard_go_pids(&backend, WORKER).len(), 1);
    let status = cli.wait_vpn_alive(Duration::from_secs(30));
    assert_eq!(
        status.code, 0,
        "vpn status:\n{}{}",
        status.stdout, status.stderr
    );
    assert_eq!(
        cli.ok(&["ssh", WORKER, "--", "hostname"]).stdout,
        format!("{WORKER}\n")
    );

    // reset: the hub down, the VMs (and with them the nodes) gone, nothing left.
    let reset = cli.ok(&["reset", "-y"]);
    assert!(
        !link_exists(&hub),
        "reset took the hub down: {}",
        reset.stderr
    );
    assert!(
        backend.wait_all_deleted(Duration::from_secs(30)),
        "the emulator deleted every VM: {:?}",
        backend.names()
    );
    backend.teardown();
    eprintln!(
        "deploy --until connect_vpn (fresh, 1 controller + 1 worker): {:.2} s",
        deploy_took.as_secs_f64()
    );
}

/// Each VM's NIC has the private address ARM gave it, on the VNet bridge of the slot's edge
/// namespace, which maps its public address to it 1:1; the VMs reach each other over the
/// VNet; the VNet range exists nowhere in the root namespace.
fn vnet_behind_the_edge(backend: &LabVmBackend, cli: &LabCli) {
    let slot = backend.slot();
    let mappings = lab::edge::mappings(slot);
    let mut privates = Vec::new();
    for vm in [CONTROLLER, WORKER] {
        let arm = cli.emu.vm(vm).unwrap();
        let private = backend.private_ip(vm).unwrap();
        let public = backend.public_ip(vm).unwrap();
        assert_eq!(
            arm.private_ip,
            Some(std::net::IpAddr::V4(private.addr())),
            "{vm}: the NIC's address is the one ARM allocated"
        );
        let ns = slot.netns(backend.index(vm).unwrap());
        let eth0 = cmd::run(
            "ip",
            &["-n", &ns, "-o", "-4", "addr", "show", "dev", "eth0"],
        );
        assert!(
            eth0.contains(&format!("inet {private} ")),
            "{vm}: eth0 holds {private}: {eth0}"
        );
        assert!(!eth0.contains(&public.to_string()), "{vm}: {eth0}");
        assert!(
            mappings.contains(&(public, private.addr())),
            "{vm}: the edge maps {public} to {}: {mappings:?}",
            private.addr()
        );
        let root = cmd::run("ip", &["-o", "-4", "addr", "show"]);
        assert!(
            !root.contains(&format!("inet {}/", private.addr())),
            "{vm}: its private address is not in the root namespace: {root}"
        );
        privates.push((ns, private.addr()));
    }
    // Over the VNet (the NSG's AllowVnetInBound lets it in), both ways.
    let (a, b) = (&privates[0], &privates[1]);
    for ((from, _), (_, to)) in [(a, b), (b, a)] {
        let to = to.to_string();
        let out = cmd::try_run(
            "ip",
            &["netns", "exec", from, "ping", "-c", "1", "-W", "2", &to],
        );
        assert!(out.is_ok(), "{from} → {to} over the VNet: {out:?}");
    }
}

/// The WireGuard rule removed from the NSG behind our back (a PUT of the NSG without it, as
/// the portal does): the emulator hands the change to the backend and the VMs enforce it at
/// once — a new flow to the WireGuard port is dropped (the tunnel's established flow carries
/// on, as Azure keeps existing flows) — `status` exits 2 naming it, and `deploy` puts the
/// rule back, which reaches the VMs the same way.
/// A range of 1000 UDP source ports just below the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`), which no socket bound to port 0 can be given.
fn probe_ports() -> (u16, u16) {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let first: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        first > 2024,
        "ephemeral range starts at {first}: no room below it"
    );
    (first - 1000, first - 1)
}

fn nsg_rule_removed_and_restored(backend: &LabVmBackend, cli: &LabCli, port: u16) {
    const NSG: &str = "Microsoft.Network/networkSecurityGroups";
    let names = cli.emu.resource_names(NSG);
    assert_eq!(names.len(), 1, "{names:?}");
    let nsg = cli.emu.resource(NSG, &names[0]).unwrap();
    let id = nsg["id"].as_str().unwrap().to_owned();
    let body = serde_json::json!({
        "location": nsg["location"],
        "tags": nsg["tags"],
        "properties": { "securityRules": [] },
    });
    let (code, out) = cli.arm_with(
        "PUT",
        &format!("{id}?api-version=2024-05-01"),
        Some(&body.to_string()),
    );
    assert!(code == 200 || code == 201, "PUT {id}: {code} {out}");
    let vms = [CONTROLLER, WORKER];
    let allows = |vm: &str| {
        let ns = backend.slot().netns(backend.index(vm).unwrap());
        nsg::nft(Some(&ns), &["list", "table", "inet", nsg::TABLE], "")
            .unwrap()
            .contains(&format!("udp dport {port} return"))
    };
    assert!(
        cmd::wait_for(5.0, || vms.iter().all(|vm| !allows(vm))),
        "the rule's removal reached the VMs"
    );
    // Whether a datagram of a new flow to the WireGuard port gets past the NSG: counted by a
    // chain of the test's own that runs after the NSG's (an accept goes on to it, a drop
    // does not), for the probes' source ports only (the tunnel's own packets also go to
    // that port, and other packets reach the NIC too). The probes' ports lie below the
    // kernel's ephemeral range: the hub's wireguard-go has no ListenPort, so its socket (and
    // with it every keepalive and handshake it sends to this port) takes an ephemeral port,
    // which once fell inside a probe range picked from the middle of it.
    let (probe_first, probe_last) = probe_ports();
    let probe_ports = format!("{probe_first}-{probe_last}");
    for vm in vms {
        let ns = backend.slot().netns(backend.index(vm).unwrap());
        let table = format!(
            "table inet lab_probe {{\n\
             \tcounter passed {{ }}\n\
             \tchain after_nsg {{\n\
             \t\ttype filter hook input priority 10; policy accept;\n\
             \t\tiifname \"eth0\" udp sport {probe_ports} udp dport {port} counter name \"passed\"\n\
             \t}}\n\
             }}\n"
        );
        nsg::nft(Some(&ns), &["-f", "-"], &table).unwrap();
    }
    let next_port = std::sync::atomic::AtomicU16::new(probe_first);
    let dropped = |vm: &str| {
        let ns = backend.slot().netns(backend.index(vm).unwrap());
        let passed = || nsg::counter_packets(Some(&ns), "inet", "lab_probe", "passed");
        let before = passed();
        let sport = next_port.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(sport <= probe_last, "out of probe ports");
        let socket = std::net::UdpSocket::bind(("0.0.0.0", sport)).unwrap();
        let public = backend.public_ip(vm).unwrap();
        socket.send_to(b"probe", (public, port)).unwrap();
        !cmd::wait_for(1.0, || passed() > before)
    };
    for vm in vms {
        assert!(dropped(vm), "{vm}: a new flow to UDP {port} is dropped");
    }
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 2, "{}{}", status.stdout, status.stderr);
    let said = format!("{}{}", status.stdout, status.stderr);
    assert!(
        said.contains(&format!("does not allow UDP {port}")),
        "status names the NSG drift:\n{said}"
    );
    let r = cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    let started = r.started_steps();
    assert!(
        started.iter().any(|s| s.contains("setup_network")),
        "{}",
        r.stderr
    );
    assert!(
        cmd::wait_for(5.0, || vms.iter().all(|vm| allows(vm))),
        "deploy's rule reached the VMs"
    );
    for vm in vms {
        assert!(!dropped(vm), "{vm}: UDP {port} gets in again");
    }
    eprintln!("NSG rule removed behind our back and restored by deploy; reran {started:?}");
}
