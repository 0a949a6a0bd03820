//! Network namespaces as VMs: one veth /30 link per node in 198.51.100.0/24.

use std::net::Ipv4Addr;

use super::cmd;
use super::slot::Slot;

/// Creates node `i`'s namespace and its link (host side `.+1`, node side `.+2` as `eth0`),
/// and checks that the host routes the node's address over that link only.
pub fn create_node_namespace(slot: &Slot, i: u8) {
    let ns = slot.netns(i);
    let veth = slot.veth(i);
    let host = format!("{}/30", slot.host_ip(i));
    let node = format!("{}/30", slot.node_ip(i));
    cmd::run("ip", &["netns", "add", &ns]);
    cmd::run(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    );
    cmd::run("ip", &["addr", "add", &host, "dev", &veth]);
    cmd::run("ip", &["link", "set", &veth, "up"]);
    cmd::run("ip", &["-n", &ns, "addr", "add", &node, "dev", "eth0"]);
    cmd::run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
    cmd::run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
    assert_route(slot.node_ip(i), &veth);
}

/// Panics unless the kernel routes `ip` out of `dev` (lab traffic never leaves the machine).
pub fn assert_route(ip: Ipv4Addr, dev: &str) {
    let out = cmd::run("ip", &["-o", "route", "get", &ip.to_string()]);
    let words: Vec<&str> = out.split_whitespace().collect();
    let via = words.windows(2).find(|w| w[0] == "dev").map(|w| w[1]);
    assert_eq!(via, Some(dev), "route to {ip} must use {dev}: {out}");
}

/// Process ids inside namespace `ns`.
pub fn pids(ns: &str) -> Vec<i32> {
    cmd::try_run("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// A TCP listener bound to `addr` inside namespace `ns`: created on a thread that entered
/// the namespace, so it stays there (what answers on a VM's addresses lives in the VM).
pub fn bind_in(ns: &str, addr: std::net::SocketAddr) -> std::net::TcpListener {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&fd),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        std::net::TcpListener::bind(addr).unwrap()
    })
    .join()
    .unwrap()
}
