//! Real OpenSSH servers on 127.0.0.1 for the stand-in k0sctl's tests: one per "host", each
//! with its own host key and its own node-side root (sshd's `SetEnv
//! K0RDENT_STANDIN_ROOT=...`), logging in as root with a key made here.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One server.
pub struct Host {
    pub port: u16,
    /// What the node's sessions see as `/`.
    pub root: PathBuf,
    /// `[127.0.0.1]:port ssh-ed25519 ...`.
    pub known_hosts_line: String,
    child: Child,
}

/// The hosts, their client key and a `known_hosts` pinning them.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub hosts: Vec<Host>,
    pub key: PathBuf,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "standin-test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

impl Lab {
    /// Starts `n` servers.
    pub fn start(n: usize) -> Lab {
        assert!(
            is_root(),
            "these tests run sshd and log in as root: run them as root"
        );
        // rig's default ControlPath is ~/.ssh/ctrl-%C: the directory must exist, as on any
        // machine where ssh was ever used.
        let home_ssh = PathBuf::from(std::env::var("HOME").unwrap_or("/root".into())).join(".ssh");
        std::fs::create_dir_all(&home_ssh).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("client_ed25519");
        keygen(&key);
        std::fs::copy(
            key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let mut hosts = Vec::new();
        for i in 0..n {
            let hd = dir.path().join(format!("host{i}"));
            let root = hd.join("root");
            std::fs::create_dir_all(&root).unwrap();
            let hk = hd.join("ssh_host_ed25519_key");
            keygen(&hk);
            let pubkey = std::fs::read_to_string(hk.with_extension("pub")).unwrap();
            let pubkey: Vec<&str> = pubkey.split_whitespace().collect();
            let port = free_port();
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {a}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n\
                 StrictModes no\nMaxStartups 100\nMaxSessions 100\n\
                 SetEnv K0RDENT_STANDIN_ROOT={r}\n",
                hk = hk.display(),
                d = hd.display(),
                a = dir.path().join("authorized_keys").display(),
                r = root.display(),
            );
            std::fs::write(hd.join("sshd_config"), config).unwrap();
            let log = std::fs::File::create(hd.join("sshd.log")).unwrap();
            let child = Command::new("/usr/sbin/sshd")
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(hd.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let t = Instant::now();
            while !listening(port) {
                assert!(t.elapsed() < Duration::from_secs(10), "sshd did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            hosts.push(Host {
                port,
                root,
                known_hosts_line: format!("[127.0.0.1]:{port} {} {}", pubkey[0], pubkey[1]),
                child,
            });
        }
        Lab { dir, hosts, key }
    }

    /// Writes a `known_hosts` with the keys of the hosts `pinned` and returns its path.
    pub fn known_hosts(&self, pinned: &[usize]) -> PathBuf {
        let text: String = pinned
            .iter()
            .map(|&i| format!("{}\n", self.hosts[i].known_hosts_line))
            .collect();
        let p = self.dir.path().join("known_hosts");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Closes any control master a killed k0sctl left (rig's `ssh -O exit`).
    pub fn close_masters(&self) {
        for h in &self.hosts {
            let _ = Command::new("ssh")
                .args([
                    "-O",
                    "exit",
                    "-o",
                    "ControlPath=~/.ssh/ctrl-%C",
                    "-F",
                    "/dev/null",
                ])
                .args(["-p", &h.port.to_string(), "root@127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.close_masters();
        for h in &mut self.hosts {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
