//! Slots: each test holds an flock'ed slot number `n` that gives it unique names and subnets
//! (so cargo's parallel tests, and test binaries run in parallel, never collide) and, on
//! acquisition, sweeps whatever a crashed earlier holder of the same slot left behind.
//!
//! Lock numbers 0–15 each stand for a /28 of 198.51.100.0/24 (the layout before slots were
//! widened); a slot is a /26 and holds the locks of the four numbers it covers, and is named
//! by the first of them (`n` = 0, 4, 8 or 12). So a checkout still on the one-number-per-test
//! layout, running on the same machine, never shares addresses, names or tunnel networks with
//! it, and a sweep also removes the names such a checkout's crashed test left in its range.
//!
//! Per slot `n` (two digits `nn`):
//! - network namespaces `k0lab<nn>n<N>` (N = node 0..15), host-side veths `k0l<nn>v<N>`;
//! - for VMs of the ARM emulator's backend, the edge namespace `k0lab<nn>e`
//!   ([`super::edge`]): the VNet bridge and the 1:1 DNAT of the public addresses, reached
//!   from the root namespace over veth `k0l<nn>e`, link 169.254.(200+n).0/30;
//! - hub interface `wgk0labnn` (derived by the plan from cluster id `k0rdent-labnn`), plus
//!   any hub interface recorded with [`Slot::record_hub`] (a deployment made by the real CLI
//!   has a random cluster id) or whose peers' endpoints lie in the slot's /26;
//! - the /26 198.51.100.16n/26 (TEST-NET-2, never eth0's range): a node started directly
//!   ([`super::wireguard::Lab`]) holds 198.51.100.(16n+4N+2) on a /30 link from the root
//!   namespace (host side `.+1`); VM N of the emulator's backend has 198.51.100.(16n+2+N) as
//!   its public address, mapped 1:1 by the edge to its private VNet address, and moves to
//!   203.0.113.(16n+2+N) (up to [`VMS`] VMs);
//! - tunnel network 172.30.n.0/24;
//! - files under `/run/k0rdent-lab/snn/`.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use rustix::fs::{FlockOperation, flock};

use super::cmd;

/// Where slot locks and slot directories live.
pub const LAB_DIR: &str = "/run/k0rdent-lab";
/// Lock numbers, one per /28 of 198.51.100.0/24.
pub const NUMBERS: u8 = 16;
/// Lock numbers per slot (a /26 is four /28).
pub const SPAN: u8 = 4;
/// How many slots exist: 198.51.100.0/24 holds four /26.
pub const SLOTS: u8 = NUMBERS / SPAN;
/// Nodes started directly per slot; each gets a /30 link in the slot's /26 (room for 3
/// controllers, 2 workers and replacements).
pub const NODES: u8 = 16;
/// VMs of the emulator's backend per slot: their public addresses are consecutive in the
/// slot's /26 ([`Slot::vm_public_ip`]), the edge maps them to the VNet.
pub const VMS: u8 = 60;

/// A held slot: exclusive `flock`s on its lock files, released when dropped.
#[derive(Debug)]
pub struct Slot {
    /// Its first lock number (0, 4, 8 or 12); every name and address of the slot derives
    /// from it.
    pub n: u8,
    _locks: Vec<File>,
}

fn lock_file(n: u8) -> File {
    std::fs::create_dir_all(LAB_DIR).unwrap();
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(LAB_DIR).join(format!("slot-{n:02}.lock")))
        .unwrap()
}

impl Slot {
    /// Takes the first free slot (waiting up to 10 minutes), then sweeps its leftovers.
    pub fn acquire() -> Slot {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            for n in (0..NUMBERS).step_by(usize::from(SPAN)) {
                if let Some(s) = Self::try_take(n) {
                    return s;
                }
            }
            assert!(Instant::now() < deadline, "no free lab slot in 10 minutes");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Takes slot `n` (a [`Slot::n`]), waiting for its holder, then sweeps its leftovers.
    pub fn acquire_number(n: u8) -> Slot {
        assert!(
            n < NUMBERS && n.is_multiple_of(SPAN),
            "no slot starts at number {n}"
        );
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(s) = Self::try_take(n) {
                return s;
            }
            assert!(Instant::now() < deadline, "slot {n} busy for 10 minutes");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn try_take(n: u8) -> Option<Slot> {
        let mut locks = Vec::new();
        for m in n..n + SPAN {
            let f = lock_file(m);
            flock(&f, FlockOperation::NonBlockingLockExclusive).ok()?;
            locks.push(f);
        }
        let s = Slot { n, _locks: locks };
        s.sweep();
        std::fs::create_dir_all(s.dir().join("pids")).unwrap();
        Some(s)
    }

    /// `<LAB_DIR>/sNN`, with the slot's pid records; swept when the slot is taken.
    pub fn dir(&self) -> PathBuf {
        Path::new(LAB_DIR).join(format!("s{:02}", self.n))
    }

    /// Network namespace of node `i`.
    pub fn netns(&self, i: u8) -> String {
        format!("k0lab{:02}n{i}", self.n)
    }

    /// Host-side veth of node `i`.
    pub fn veth(&self, i: u8) -> String {
        format!("k0l{:02}v{i}", self.n)
    }

    /// The edge namespace of the slot's VMs ([`super::edge`]).
    pub fn edge_netns(&self) -> String {
        edge_netns(self.n)
    }

    /// The root namespace's end of the link to the edge namespace.
    pub fn edge_veth(&self) -> String {
        format!("k0l{:02}e", self.n)
    }

    /// The root namespace's address on the edge link (the source every packet from this
    /// machine to a VM's public address carries, as the Internet's would).
    pub fn edge_root_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, 200 + self.n, 1)
    }

    /// The edge namespace's address on the edge link (the root's gateway to the public
    /// addresses).
    pub fn edge_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, 200 + self.n, 2)
    }

    /// `203.0.113.16n/26`: the public addresses VMs move to ([`Slot::vm_moved_ip`]).
    pub fn moved_subnet(&self) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::new(203, 0, 113, self.n * 16), 26).unwrap()
    }

    /// The deployment's cluster id in this slot.
    pub fn cluster_id(&self) -> String {
        format!("k0rdent-lab{:02}", self.n)
    }

    /// The hub interface the plan derives from [`Slot::cluster_id`].
    pub fn hub_interface(&self) -> String {
        format!("wgk0lab{:02}", self.n)
    }

    fn link_base(&self, i: u8) -> u8 {
        assert!(i < NODES);
        self.n * 16 + i * 4
    }

    /// `198.51.100.16n/26`: every link of the slot.
    pub fn subnet(&self) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::new(198, 51, 100, self.n * 16), 26).unwrap()
    }

    /// Every namespace and veth name in the slot's range: its own nodes' and those a
    /// one-number-per-test checkout could have left under the other numbers it covers.
    fn range_names(&self) -> (Vec<String>, Vec<String>) {
        let (mut netns, mut links): (Vec<String>, Vec<String>) = (self.n..self.n + SPAN)
            .flat_map(|m| {
                (0..NODES).map(move |i| (format!("k0lab{m:02}n{i}"), format!("k0l{m:02}v{i}")))
            })
            .unzip();
        // The backend's VMs beyond the direct nodes' range (their links are in the edge).
        netns.extend((NODES..VMS).map(|i| self.netns(i)));
        netns.push(self.edge_netns());
        links.push(self.edge_veth());
        (netns, links)
    }

    /// Host-side address of node `i`'s link.
    pub fn host_ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, self.link_base(i) + 1)
    }

    /// Node `i`'s "public" address.
    pub fn node_ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, self.link_base(i) + 2)
    }

    /// VM `i`'s public address: 198.51.100.(16n+2+i) (`i` < [`VMS`]), mapped by the edge
    /// to its private one.
    pub fn vm_public_ip(&self, i: u8) -> Ipv4Addr {
        assert!(i < VMS);
        Ipv4Addr::new(198, 51, 100, self.n * 16 + 2 + i)
    }

    /// VM `i`'s public address after a move: 203.0.113.(16n+2+i).
    pub fn vm_moved_ip(&self, i: u8) -> Ipv4Addr {
        assert!(i < VMS);
        Ipv4Addr::new(203, 0, 113, self.n * 16 + 2 + i)
    }

    /// `172.30.<n>.0/24`: the WireGuard network of the slot's deployment.
    pub fn tunnel_net(&self) -> Ipv4Net {
        Ipv4Net::new(Ipv4Addr::new(172, 30, self.n, 0), 24).unwrap()
    }

    /// Records a hub interface a deployment in this slot brought up (the real CLI derives
    /// its name from a random cluster id), so [`Slot::leftovers`] and [`Slot::sweep`] cover
    /// it even after a crash; its wireguard-go is recorded too when it runs.
    pub fn record_hub(&self, iface: &str) {
        let dir = self.dir().join("hubs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(iface), b"").unwrap();
        if let Some(pid) = cmd::find_wireguard_go(iface) {
            self.record_pid(&format!("hub-{iface}"), pid);
        }
    }

    /// The hub interfaces of this slot: its own name, the recorded ones, and any WireGuard
    /// interface of the root namespace with a peer endpoint in the slot's /26 (a hub whose
    /// name a crashed test never recorded).
    pub fn hub_interfaces(&self) -> Vec<String> {
        let mut hubs = vec![self.hub_interface()];
        if let Ok(dir) = std::fs::read_dir(self.dir().join("hubs")) {
            hubs.extend(
                dir.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
        let subnet = self.subnet();
        // stdout whatever the status: one stale socket must not hide the other interfaces.
        let out = cmd::output("wg", &["show", "all", "endpoints"]);
        let endpoints = String::from_utf8_lossy(&out.stdout);
        for line in endpoints.lines() {
            let mut f = line.split_whitespace();
            let (Some(iface), _, Some(ep)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if ep
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| matches!(a.ip(), std::net::IpAddr::V4(ip) if subnet.contains(&ip)))
            {
                hubs.push(iface.to_owned());
            }
        }
        hubs.sort();
        hubs.dedup();
        hubs
    }

    /// Records a process this slot started, so a later sweep can kill it if it survives.
    pub fn record_pid(&self, name: &str, pid: i32) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut data = pid.to_string().into_bytes();
        data.push(b'\n');
        data.extend(cmdline);
        std::fs::write(self.dir().join("pids").join(format!("{name}.pid")), data).unwrap();
    }

    /// Everything of this slot that still exists (empty when clean).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let (netns, mut links) = self.range_names();
        left.extend(
            existing_netns(&netns)
                .into_iter()
                .map(|ns| format!("netns {ns}")),
        );
        let hubs = self.hub_interfaces();
        links.extend(hubs.iter().cloned());
        left.extend(
            existing_links(&links)
                .into_iter()
                .map(|l| format!("link {l}")),
        );
        for hub in &hubs {
            let sock = format!("/run/wireguard/{hub}.sock");
            if Path::new(&sock).exists() {
                left.push(sock);
            }
            if let Some(pid) = cmd::find_wireguard_go(hub) {
                left.push(format!("process wireguard-go {hub} (pid {pid})"));
            }
        }
        for (name, pid) in self.recorded_pids() {
            left.push(format!("process {name} (pid {pid})"));
        }
        left
    }

    /// Recorded processes that are still alive with the same command line.
    fn recorded_pids(&self) -> Vec<(String, i32)> {
        let Ok(dir) = std::fs::read_dir(self.dir().join("pids")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let Ok(data) = std::fs::read(e.path()) else {
                continue;
            };
            let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                continue;
            };
            let Ok(pid) = String::from_utf8_lossy(&data[..nl]).parse::<i32>() else {
                continue;
            };
            let now = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmd::alive(pid) && now == data[nl + 1..] {
                out.push((e.file_name().to_string_lossy().into_owned(), pid));
            }
        }
        out
    }

    /// Removes everything of this slot: processes (recorded ones and any inside its
    /// namespaces), namespaces, links, sockets, files.
    pub fn sweep(&self) {
        let hubs = self.hub_interfaces();
        let mut pids: Vec<i32> = self.recorded_pids().into_iter().map(|(_, p)| p).collect();
        pids.extend(hubs.iter().filter_map(|h| cmd::find_wireguard_go(h)));
        let (netns, veths) = self.range_names();
        let mine = existing_netns(&netns);
        for ns in &mine {
            if let Ok(out) = cmd::try_run("ip", &["netns", "pids", ns]) {
                pids.extend(out.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
        for p in &pids {
            cmd::kill(*p);
        }
        assert!(
            cmd::wait_for(10.0, || pids.iter().all(|p| !cmd::alive(*p))),
            "slot {}: processes {pids:?} survived SIGKILL",
            self.n
        );
        for ns in &mine {
            let _ = cmd::try_run("ip", &["netns", "del", ns]);
        }
        let mut names = veths;
        names.extend(hubs.iter().cloned());
        for name in existing_links(&names) {
            let _ = cmd::try_run("ip", &["link", "del", &name]);
        }
        for hub in &hubs {
            let _ = std::fs::remove_file(format!("/run/wireguard/{hub}.sock"));
        }
        // A namespace (and its veth) disappears only after its last process and mount are
        // gone; wait for that so the names can be reused at once.
        let gone = cmd::wait_for(10.0, || existing_links(&names).is_empty());
        assert!(
            gone,
            "slot {}: links {:?} did not go away",
            self.n,
            existing_links(&names)
        );
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

/// The edge namespace of slot `n` ([`Slot::edge_netns`]), for those who only know the number.
pub fn edge_netns(n: u8) -> String {
    format!("k0lab{n:02}e")
}

/// Which of `names` are network namespaces now.
fn existing_netns(names: &[String]) -> Vec<String> {
    let list = cmd::run("ip", &["netns", "list"]);
    let present: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names
        .iter()
        .filter(|n| present.contains(&n.as_str()))
        .cloned()
        .collect()
}

/// Which of `names` are links of the root namespace now.
fn existing_links(names: &[String]) -> Vec<String> {
    let links = cmd::run("ip", &["-o", "link", "show"]);
    names
        .iter()
        .filter(|n| links.contains(&format!(": {n}:")) || links.contains(&format!(": {n}@")))
        .cloned()
        .collect()
}
