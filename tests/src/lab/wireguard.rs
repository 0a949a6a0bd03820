//! Lab nodes: a network namespace with its own sshd (host keys in its `/etc/ssh`), its own
//! `/etc/wireguard`, `/var/lib/cloud`, `/usr/local/sbin`, `/root` and a private `/run/wireguard`,
//! configured only from the node's generated cloud-init fragment (write_files, packages,
//! `systemctl enable --now wg-quick@wg0` → `wg-quick up wg0`, which falls back to wireguard-go).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::cmd;
pub use super::cmd::find_wireguard_go;
use super::netns;
use super::slot::Slot;
use super::sshd::{Sshd, SshdOptions};

/// One lab node: a network namespace with its own sshd, standing in for a VM.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct LabNode {
    /// Index in the slot.
    pub index: u8,
    pub name: String,
    pub netns: String,
    /// Its "public" address as launched: on the host link ([`Slot::node_ip`]) for a node
    /// started directly, behind the edge ([`Slot::vm_public_ip`]) for a VM.
    pub public_ip: Ipv4Addr,
    /// Its private file tree (etc-wireguard, var-lib-cloud, sbin, sshd).
    pub root: PathBuf,
    /// Its sshd (the node's "init").
    pub sshd: Sshd,
}

impl LabNode {
    /// The node's private file tree `<slot dir>/node-<i>` (created: etc-wireguard, var-lib-cloud,
    /// sbin, sshd, home-root) and the sshd options every node has: in its namespace on port
    /// 22, with its own hostname, those directories bound over `/etc/wireguard`,
    /// `/var/lib/cloud`, `/usr/local/sbin` and `/root`, and a private `/run/wireguard`.
    /// Callers may add binds before [`LabNode::launch`].
    pub fn layout(slot: &Slot, i: u8, name: &str) -> (PathBuf, SshdOptions) {
        let root = slot.dir().join(format!("node-{i}"));
        for d in [
            "etc-wireguard",
            "var-lib-cloud",
            "sbin",
            "sshd",
            "home-root",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::set_permissions(
            root.join("etc-wireguard"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let opts = SshdOptions {
            dir: root.join("sshd"),
            listen: SocketAddr::from(([0, 0, 0, 0], 22)),
            netns: Some(slot.netns(i)),
            hostname: Some(name.to_owned()),
            binds: vec![
                (root.join("etc-wireguard"), "/etc/wireguard".into()),
                (root.join("var-lib-cloud"), "/var/lib/cloud".into()),
                (root.join("sbin"), "/usr/local/sbin".into()),
                // A fresh VM's root has no dotfiles (this machine's .bashrc is slow).
                (root.join("home-root"), "/root".into()),
            ],
            tmpfs: vec!["/run/wireguard".into()],
            mask: vec![],
            authorized_keys_file: None,
        };
        (root, opts)
    }

    /// Starts the node's sshd (its "init") with `opts` in its already created namespace
    /// ([`netns::create_node_namespace`]); returns once it listens.
    pub fn launch(
        slot: &Slot,
        i: u8,
        name: &str,
        public_ip: Ipv4Addr,
        root: PathBuf,
        opts: SshdOptions,
    ) -> LabNode {
        let sshd = Sshd::start(slot, name, opts);
        LabNode {
            index: i,
            name: name.to_owned(),
            netns: slot.netns(i),
            public_ip,
            root,
            sshd,
        }
    }

    fn start(slot: &Slot, i: u8, name: &str, admin_key: &std::path::Path) -> LabNode {
        netns::create_node_namespace(slot, i);
        let (root, opts) = Self::layout(slot, i, name);
        std::fs::copy(admin_key, root.join("sshd/client_ed25519")).unwrap();
        std::fs::copy(
            admin_key.with_extension("pub"),
            root.join("sshd/authorized_keys"),
        )
        .unwrap();
        Self::launch(slot, i, name, slot.node_ip(i), root, opts)
    }

    /// Powers the node off: sshd, its sessions and everything else in the namespace
    /// (wireguard-go) stop; the namespace, its link and its files stay, as a deallocated
    /// VM's disk does.
    pub fn power_off(&mut self) {
        self.sshd.stop();
        let pids = netns::pids(&self.netns);
        for p in &pids {
            cmd::kill(*p);
        }
        assert!(
            cmd::wait_for(10.0, || pids.iter().all(|p| !cmd::alive(*p))),
            "{}: processes {pids:?} survived SIGKILL",
            self.name
        );
    }

    /// Boots a powered-off node: sshd (with a fresh private `/run/wireguard`) and then the
    /// units cloud-init enabled, as systemd would at boot.
    pub fn power_on(&mut self, slot: &Slot) -> Result<(), String> {
        self.sshd.relaunch(slot);
        for unit in self.enabled_units() {
            self.start_unit(&unit)?;
        }
        Ok(())
    }

    /// Runs a command inside the node (its mount, network and UTS namespaces).
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let pid = self.sshd.pid.to_string();
        let mut argv = vec!["-t", pid.as_str(), "-m", "-n", "-u", "--"];
        argv.extend_from_slice(args);
        cmd::try_run("nsenter", &argv)
    }

    /// `wg-quick up|down IFACE` inside the node (what `wg-quick@IFACE` runs).
    pub fn wg_quick(&self, verb: &str, iface: &str) -> Result<String, String> {
        self.run(&["wg-quick", verb, iface])
    }

    /// The node's wireguard-go processes.
    pub fn wireguard_pids(&self) -> Vec<i32> {
        netns::pids(&self.netns)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "wireguard-go")
            })
            .collect()
    }

    /// Kills the node's wireguard-go (SIGKILL, as a crash) and waits until it is gone.
    pub fn kill_wireguard(&self) {
        let pids = self.wireguard_pids();
        assert!(!pids.is_empty(), "{}: no wireguard-go to kill", self.name);
        for p in &pids {
            cmd::kill(*p);
        }
        assert!(cmd::wait_for(5.0, || pids.iter().all(|p| !cmd::alive(*p))));
    }
}

/// A slot with nodes.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct Lab {
    pub slot: Slot,
    pub nodes: Vec<LabNode>,
    /// The admin (client) key every node authorizes.
    pub admin_key: PathBuf,
    torn_down: bool,
}

impl Lab {
    /// Takes a slot and starts one node per name (at most [`super::slot::NODES`]).
    pub fn start(names: &[&str]) -> Lab {
        super::require_lab();
        let slot = Slot::acquire();
        std::fs::create_dir_all("/run/wireguard").unwrap();
        std::fs::create_dir_all("/var/lib/cloud").unwrap();
        let admin_key = slot.dir().join("admin_ed25519");
        cmd::run(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "lab-admin",
                "-f",
                &admin_key.display().to_string(),
            ],
        );
        let nodes = names
            .iter()
            .enumerate()
            .map(|(i, n)| LabNode::start(&slot, u8::try_from(i).unwrap(), n, &admin_key))
            .collect();
        Lab {
            slot,
            nodes,
            admin_key,
            torn_down: false,
        }
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> &LabNode {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    /// The nodes' public addresses.
    pub fn public_ips(&self) -> BTreeMap<String, IpAddr> {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), IpAddr::V4(n.public_ip)))
            .collect()
    }

    /// The admin private key.
    pub fn admin_key_text(&self) -> String {
        std::fs::read_to_string(&self.admin_key).unwrap()
    }

    /// A directory for the deployment state of this lab.
    pub fn state_dir(&self) -> PathBuf {
        self.slot.dir().join("state")
    }

    /// Records the hub's wireguard-go (started by wg-quick in the root namespace) so a sweep
    /// can find it, and checks the tunnel routes go through the hub interface.
    pub fn hub_is_up(&self, tunnel_ips: &[Ipv4Addr]) {
        let iface = self.slot.hub_interface();
        let pid = find_wireguard_go(&iface).expect("the hub's wireguard-go is running");
        self.slot.record_pid("hub-wireguard-go", pid);
        for ip in tunnel_ips {
            netns::assert_route(*ip, &iface);
        }
    }

    /// Stops everything and asserts nothing of the slot is left.
    pub fn teardown(mut self) {
        self.torn_down = true;
        let hub_go = find_wireguard_go(&self.slot.hub_interface());
        for n in &mut self.nodes {
            n.sshd.stop();
        }
        self.slot.sweep();
        let left = self.slot.leftovers();
        assert!(
            left.is_empty(),
            "lab slot {} left behind: {left:?}",
            self.slot.n
        );
        if let Some(p) = hub_go {
            assert!(
                !cmd::alive(p),
                "the hub's wireguard-go {p} is still running"
            );
        }
        assert!(
            !std::path::Path::new(&self.slot.dir()).exists(),
            "slot directory left behind"
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.torn_down {
            // A failed test: clean up anyway (the next holder of the slot would too).
            for n in &mut self.nodes {
                n.sshd.stop();
            }
            self.slot.sweep();
        }
    }
}
