//! Helpers shared by the stand-in k0sctl tests: the configuration the product renders, and
//! running the binary and the hosts' stand-in k0s.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::sshd::Lab;
pub const BIN: &str = env!("CARGO_BIN_EXE_k0sctl");

/// A host of the configuration: (index in the lab, role, privateAddress).
pub type Spec<'a> = (usize, &'a str, &'a str);

/// The configuration the product renders (k0rdent-cli's `k0sctl_config.rs` snapshots), for
/// the lab's hosts.
pub fn config(lab: &Lab, known_hosts: &Path, hosts: &[Spec<'_>], k0s_config: &str) -> PathBuf {
    let mut y = String::from(
        "apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nmetadata:\n  name: k0rdent-test\nspec:\n  hosts:\n",
    );
    for (i, role, private) in hosts {
        y.push_str(&format!(
            "  - openSSH:\n      address: 127.0.0.1\n      user: root\n      port: {port}\n      keyPath: {key}\n      configPath: /dev/null\n      options:\n        BatchMode: true\n        GlobalKnownHostsFile: /dev/null\n        IdentitiesOnly: true\n        StrictHostKeyChecking: true\n        UpdateHostKeys: false\n        UserKnownHostsFile: {kh}\n    role: {role}\n    privateAddress: {private}\n    hostname: node{i}\n",
            port = lab.hosts[*i].port,
            key = lab.key.display(),
            kh = known_hosts.display(),
        ));
    }
    y.push_str(&format!(
        "  k0s:\n    version: v1.33.4+k0s.0\n    config:\n{k0s_config}"
    ));
    let p = lab.dir.path().join("k0sctl.yaml");
    std::fs::write(&p, y).unwrap();
    p
}

pub const K0S_CONFIG: &str = "      spec:\n        network:\n          provider: calico\n";

pub fn k0sctl(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("K0RDENT_STANDIN_ROOT")
        .env_remove("K0RDENT_STANDIN_KUBECONFIG")
        .env_remove("K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL")
        // k0sctl retries an unreachable host for 10 minutes; a test that gets there fails.
        .env("K0RDENT_STANDIN_K0SCTL_CONNECT_TIMEOUT", "30")
        .env(
            "K0RDENT_STANDIN_LOG",
            lab.dir.path().join("invocations.jsonl"),
        )
        .env("SSH_KNOWN_HOSTS", lab.dir.path().join("known_hosts"))
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

pub fn run(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Output {
    k0sctl(lab, args, env).output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn apply(lab: &Lab, cfg: &Path) -> Output {
    run(lab, &["apply", "--config", cfg.to_str().unwrap()], &[])
}

pub fn state(lab: &Lab, host: usize, file: &str) -> Option<String> {
    std::fs::read_to_string(lab.hosts[host].root.join("var/lib/k0s/standin").join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The host's k0s, run on the node (the stand-in's script has its root written in).
pub fn k0s(lab: &Lab, host: usize, args: &[&str]) -> Output {
    Command::new(lab.hosts[host].root.join("usr/local/bin/k0s"))
        .args(args)
        .output()
        .unwrap()
}

pub fn status_json(lab: &Lab, host: usize) -> serde_json::Value {
    let o = k0s(lab, host, &["status", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
