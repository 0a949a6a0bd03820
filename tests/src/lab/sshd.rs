//! A real OpenSSH server started by the test, with its own config, rsa + ecdsa + ed25519 host
//! keys and an authorized client key, running in a private mount namespace where its own
//! key directory is `/etc/ssh` (so `/etc/ssh/ssh_host_*.pub` read over a session are its
//! keys), optionally inside a network namespace.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::cmd;
use super::slot::Slot;

/// Where and how to run sshd.
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Fixture directory (keys, config, log).
    pub dir: PathBuf,
    /// Inside `netns` when that is set.
    pub listen: SocketAddr,
    /// Network namespace to run in.
    pub netns: Option<String>,
    /// Host name inside the server's UTS namespace.
    pub hostname: Option<String>,
    /// Extra bind mounts (source directory → target), e.g. a per-node `/etc/wireguard`.
    pub binds: Vec<(PathBuf, String)>,
    /// tmpfs mounts (mode 0700), e.g. a private `/run/wireguard`.
    pub tmpfs: Vec<String>,
    /// Files hidden behind `/dev/null` (e.g. to make `cloud-init` missing).
    pub mask: Vec<String>,
    /// sshd's `AuthorizedKeysFile`; `None` is the fixture's `authorized_keys` (the lab
    /// client key, for every user), `.ssh/authorized_keys` is a VM's per-user file.
    pub authorized_keys_file: Option<String>,
}

impl SshdOptions {
    /// On 127.0.0.1 at a free port, in the root network namespace.
    pub fn loopback(dir: PathBuf) -> Self {
        SshdOptions {
            dir,
            listen: SocketAddr::from(([127, 0, 0, 1], free_port())),
            netns: None,
            hostname: None,
            binds: Vec::new(),
            tmpfs: Vec::new(),
            mask: Vec::new(),
            authorized_keys_file: None,
        }
    }
}

/// A free TCP port on 127.0.0.1 (the kernel's choice).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running sshd, stopped when dropped.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct Sshd {
    /// How it was started.
    pub opts: SshdOptions,
    pub pid: i32,
    child: Option<Child>,
    name: String,
}

/// The algorithms of the host keys every lab sshd has.
pub const HOST_KEY_TYPES: [&str; 3] = ["rsa", "ecdsa", "ed25519"];

fn keygen(path: &Path, kind: &str, comment: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let mut args = vec!["-q", "-t", kind, "-N", "", "-C", comment];
    if kind == "rsa" {
        args.extend(["-b", "3072"]);
    }
    let p = path.display().to_string();
    args.extend(["-f", p.as_str()]);
    cmd::run("ssh-keygen", &args);
}

impl Sshd {
    /// Generates keys (host keys only if absent), writes the config and starts sshd;
    /// returns once it listens. `name` labels it in the slot's process records.
    pub fn start(slot: &Slot, name: &str, opts: SshdOptions) -> Sshd {
        std::fs::create_dir_all(opts.dir.join("etc-ssh")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        for t in HOST_KEY_TYPES {
            let key = opts.dir.join("etc-ssh").join(format!("ssh_host_{t}_key"));
            if !key.exists() {
                keygen(&key, t, name);
            }
        }
        let client = opts.dir.join("client_ed25519");
        if !client.exists() {
            keygen(&client, "ed25519", "lab-client");
            let pubkey = std::fs::read(client.with_extension("pub")).unwrap();
            std::fs::write(opts.dir.join("authorized_keys"), pubkey).unwrap();
        }
        let d = opts.dir.display();
        let keys_file = opts
            .authorized_keys_file
            .clone()
            .unwrap_or_else(|| format!("{d}/authorized_keys"));
        let config = format!(
            "Port {port}\nListenAddress {addr}\n\
             HostKey /etc/ssh/ssh_host_rsa_key\nHostKey /etc/ssh/ssh_host_ecdsa_key\nHostKey /etc/ssh/ssh_host_ed25519_key\n\
             PidFile {d}/sshd.pid\nAuthorizedKeysFile {keys_file}\n\
             PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nLogLevel VERBOSE\n\
             MaxStartups 100\nMaxSessions 100\n",
            port = opts.listen.port(),
            addr = opts.listen.ip(),
        );
        std::fs::write(opts.dir.join("sshd_config"), config).unwrap();
        let mut s = Sshd {
            opts,
            pid: 0,
            child: None,
            name: name.to_owned(),
        };
        s.launch(slot);
        s
    }

    fn launch(&mut self, slot: &Slot) {
        let o = &self.opts;
        let d = o.dir.display();
        let mut script = String::from("set -e; ");
        if let Some(h) = &o.hostname {
            script.push_str(&format!("hostname {h}; "));
        }
        script.push_str(&format!("mount --bind {d}/etc-ssh /etc/ssh; "));
        for (src, target) in &o.binds {
            // A file is bound over an existing file; a directory target is created.
            if src.is_dir() {
                std::fs::create_dir_all(target).unwrap();
            }
            script.push_str(&format!("mount --bind {} {target}; ", src.display()));
        }
        for t in &o.tmpfs {
            std::fs::create_dir_all(t).unwrap();
            script.push_str(&format!("mount -t tmpfs -o mode=0700 tmpfs {t}; "));
        }
        for m in &o.mask {
            script.push_str(&format!("mount --bind /dev/null {m}; "));
        }
        script.push_str(&format!("exec /usr/sbin/sshd -D -e -f {d}/sshd_config"));
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = &o.netns {
            argv.extend(["ip".into(), "netns".into(), "exec".into(), ns.clone()]);
        }
        argv.extend(["unshare".into(), "--mount".into()]);
        if o.hostname.is_some() {
            argv.push("--uts".into());
        }
        argv.extend(["sh".into(), "-c".into(), script]);
        let log = File::options()
            .create(true)
            .append(true)
            .open(o.dir.join("sshd.log"))
            .unwrap();
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sshd: {e}"));
        // ip netns exec, unshare and sh all exec: this pid becomes sshd itself.
        self.pid = i32::try_from(child.id()).unwrap();
        self.child = Some(child);
        let listening = cmd::wait_for(10.0, || {
            if std::fs::read_to_string(format!("/proc/{}/comm", self.pid))
                .is_ok_and(|c| c.trim() != "sshd")
            {
                return false;
            }
            let ss = match &self.opts.netns {
                Some(ns) => cmd::try_run("ip", &["netns", "exec", ns, "ss", "-Hltn"]),
                None => cmd::try_run("ss", &["-Hltn"]),
            }
            .unwrap_or_default();
            let want = match self.opts.listen {
                SocketAddr::V4(a) if a.ip().is_unspecified() => format!("0.0.0.0:{}", a.port()),
                a => a.to_string(),
            };
            ss.split_whitespace().any(|w| w == want)
        });
        assert!(
            listening && cmd::alive(self.pid),
            "sshd {} did not start listening on {}: {}",
            self.name,
            self.opts.listen,
            self.log()
        );
        slot.record_pid(&format!("sshd-{}", self.name), self.pid);
    }

    /// Whether it runs (it was started and not stopped, and has not died).
    pub fn is_running(&self) -> bool {
        self.child.is_some() && cmd::alive(self.pid)
    }

    /// Starts a stopped server again with the same configuration and keys (a rebooted
    /// host); returns once it listens.
    pub fn relaunch(&mut self, slot: &Slot) {
        self.stop();
        self.launch(slot);
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.opts.listen
    }

    /// The authorized client private key (OpenSSH format).
    pub fn client_key(&self) -> String {
        std::fs::read_to_string(self.client_key_path()).unwrap()
    }

    /// Path of the client private key.
    pub fn client_key_path(&self) -> PathBuf {
        self.opts.dir.join("client_ed25519")
    }

    /// The host's public key lines (`ssh_host_*_key.pub`).
    pub fn host_public_keys(&self) -> Vec<String> {
        HOST_KEY_TYPES
            .iter()
            .map(|t| {
                std::fs::read_to_string(
                    self.opts
                        .dir
                        .join("etc-ssh")
                        .join(format!("ssh_host_{t}_key.pub")),
                )
                .unwrap()
                .trim()
                .to_owned()
            })
            .collect()
    }

    /// The server's log so far (`sshd.log` in its fixture directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.opts.dir.join("sshd.log")).unwrap_or_default()
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Stops the server (its sessions end with their connections).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            cmd::terminate(self.pid);
            if !cmd::wait_for(5.0, || !cmd::alive(self.pid)) {
                cmd::kill(self.pid);
            }
            let _ = c.wait();
        }
    }

    /// Replaces all host keys and restarts on the same address (a "rebuilt" host).
    pub fn regenerate_host_keys(&mut self, slot: &Slot) {
        self.stop();
        for t in HOST_KEY_TYPES {
            keygen(
                &self
                    .opts
                    .dir
                    .join("etc-ssh")
                    .join(format!("ssh_host_{t}_key")),
                t,
                &format!("{}-rebuilt", self.name),
            );
        }
        self.launch(slot);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A slot with one sshd on 127.0.0.1: the "real host" of the SSH tests.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct LoopbackHost {
    pub slot: Slot,
    pub sshd: Sshd,
    /// A directory the server's sessions see as `/usr/local/sbin` (first on root's PATH):
    /// put fake commands here.
    pub fake_bin: PathBuf,
    /// A directory the server's sessions see as `/var/lib/cloud`.
    pub cloud_dir: PathBuf,
    done: bool,
}

impl LoopbackHost {
    /// Takes a slot and starts sshd on 127.0.0.1; `mask` hides files from its sessions.
    pub fn start(mask: &[&str]) -> LoopbackHost {
        super::require_lab();
        let slot = Slot::acquire();
        let fake_bin = slot.dir().join("fake-bin");
        let cloud_dir = slot.dir().join("var-lib-cloud");
        std::fs::create_dir_all(&fake_bin).unwrap();
        std::fs::create_dir_all(&cloud_dir).unwrap();
        std::fs::create_dir_all("/var/lib/cloud").unwrap();
        let mut opts = SshdOptions::loopback(slot.dir().join("sshd"));
        opts.binds = vec![
            (fake_bin.clone(), "/usr/local/sbin".into()),
            (cloud_dir.clone(), "/var/lib/cloud".into()),
        ];
        opts.mask = mask.iter().map(|m| (*m).to_owned()).collect();
        let sshd = Sshd::start(&slot, "loopback", opts);
        LoopbackHost {
            slot,
            sshd,
            fake_bin,
            cloud_dir,
            done: false,
        }
    }

    /// Installs a fake command `name` (a shell script) for the server's sessions.
    pub fn fake_command(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.fake_bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Removes a fake command.
    pub fn remove_fake(&self, name: &str) {
        let _ = std::fs::remove_file(self.fake_bin.join(name));
    }

    /// Stops the server and asserts that nothing of the slot is left.
    pub fn finish(mut self) {
        self.done = true;
        self.sshd.stop();
        let left = self.slot.leftovers();
        assert!(left.is_empty(), "left behind: {left:?}");
        self.slot.sweep();
        assert!(!self.slot.dir().exists());
    }
}

impl Drop for LoopbackHost {
    fn drop(&mut self) {
        if !self.done {
            self.sshd.stop();
            self.slot.sweep();
        }
    }
}
