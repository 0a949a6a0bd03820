//! How the stand-in `k0sctl` reaches hosts, against real sshd servers on 127.0.0.1: the
//! system `ssh` with rig's arguments, so OpenSSH's own host-key check, rig's control master
//! and k0sctl's connect retries, and the node-side root handed over in the remote command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "k0sctl_standin/sshd.rs"]
mod sshd;
#[path = "k0sctl_standin/testutil.rs"]
mod testutil;

use std::process::Command;
use std::time::{Duration, Instant};

use sshd::Lab;
use testutil::*;

#[test]
fn a_host_whose_key_is_not_pinned_fails_the_apply_before_anything_changes() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0]);
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        K0S_CONFIG,
    );
    let started = Instant::now();
    let o = apply(&lab, &cfg);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("Host key verification failed"), "{t}");
    // Not retried: rig v2 marks it non-retryable.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        t.contains(&format!("[OpenSSH] root@127.0.0.1:{}", lab.hosts[1].port)),
        "{t}"
    );
    assert!(
        !lab.hosts[0].root.join("usr/local/bin/k0s").exists(),
        "host 0 was changed"
    );
    // rig's default would have accepted and recorded the key: the pinned file is unchanged.
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

#[test]
fn a_control_path_whose_directory_is_missing_fails_the_connection_as_with_rig() {
    // rig multiplexes over `ssh -N -f` with ControlPath ~/.ssh/ctrl-%C: where that directory
    // does not exist, ssh cannot bind the socket and exits 255; k0sctl retries that for 10
    // minutes and fails.
    let lab = Lab::start(1);
    let kh = lab.known_hosts(&[0]);
    let cfg = config(&lab, &kh, &[(0, "controller", "10.0.0.1")], K0S_CONFIG);
    let missing = lab.dir.path().join("missing");
    let y = std::fs::read_to_string(&cfg).unwrap().replace(
        "        BatchMode: true\n",
        &format!(
            "        BatchMode: true\n        ControlPath: {}/ctrl-%C\n",
            missing.display()
        ),
    );
    std::fs::write(&cfg, y).unwrap();
    // Retryable for k0sctl: it would try for 10 minutes.
    let o = run(
        &lab,
        &["apply", "--config", cfg.to_str().unwrap()],
        &[("K0RDENT_STANDIN_K0SCTL_CONNECT_TIMEOUT", "1")],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("failed to start ssh multiplexing control master"),
        "{t}"
    );
    assert!(t.contains("cannot bind to path"), "{t}");

    // With `disableMultiplexing: true` there is no control master to bind.
    let y = std::fs::read_to_string(&cfg).unwrap().replace(
        "      configPath: /dev/null\n",
        "      configPath: /dev/null\n      disableMultiplexing: true\n",
    );
    std::fs::write(&cfg, y).unwrap();
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_unreachable_host_is_retried_until_the_connect_timeout() {
    let lab = Lab::start(1);
    let kh = lab.known_hosts(&[0]);
    let cfg = config(&lab, &kh, &[(0, "controller", "10.0.0.1")], K0S_CONFIG);
    // Nothing listens on the port any more.
    let port = lab.hosts[0].port.to_string();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port().to_string();
    drop(dead);
    let y = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&format!("port: {port}\n"), &format!("port: {dead_port}\n"));
    std::fs::write(&cfg, y).unwrap();
    let t = Instant::now();
    let o = run(
        &lab,
        &["apply", "--config", cfg.to_str().unwrap()],
        &[("K0RDENT_STANDIN_K0SCTL_CONNECT_TIMEOUT", "7")],
    );
    let took = t.elapsed();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("Connection refused"), "{out}");
    // Tried at 0 s and 5 s, not again at 10 s.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(9),
        "{took:?}"
    );
}

#[test]
fn a_root_given_to_k0sctl_is_passed_to_every_host_in_the_remote_command() {
    let lab = Lab::start(1);
    let kh = lab.known_hosts(&[0]);
    let cfg = config(&lab, &kh, &[(0, "controller", "10.0.0.1")], K0S_CONFIG);
    let alt = lab.dir.path().join("alt-root");
    let o = run(
        &lab,
        &["apply", "--config", cfg.to_str().unwrap()],
        &[("K0RDENT_STANDIN_ROOT", alt.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(alt.join("usr/local/bin/k0s").is_file());
    assert!(
        alt.join("etc/systemd/system/k0scontroller.service")
            .is_file()
    );
    assert!(!lab.hosts[0].root.join("usr/local/bin/k0s").exists());
    // The installed k0s has that root written in.
    let o = Command::new(alt.join("usr/local/bin/k0s"))
        .args(["status", "-o", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}
