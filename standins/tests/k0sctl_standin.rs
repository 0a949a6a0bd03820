//! `k0sctl apply` by the stand-in against real sshd servers on 127.0.0.1: it installs and
//! starts the stand-in k0s on every host, changes nothing on a rerun, restarts what k0sctl
//! restarts, and fails where k0sctl fails (a service installed but stopped, a role change, an
//! etcd member left behind, a second run at the same time).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "k0sctl_standin/sshd.rs"]
mod sshd;
#[path = "k0sctl_standin/testutil.rs"]
mod testutil;

use std::process::Stdio;

use sshd::Lab;
use testutil::*;

#[test]
fn apply_installs_and_starts_every_host_and_a_rerun_changes_nothing() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0, 1]);
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        K0S_CONFIG,
    );
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));

    let c = status_json(&lab, 0);
    assert_eq!(c["Role"], "controller");
    assert_eq!(c["Version"], "v1.33.4+k0s.0");
    assert_eq!(c["Workloads"], false);
    assert!(
        lab.hosts[0]
            .root
            .join("etc/systemd/system/k0scontroller.service")
            .is_file()
    );
    assert!(lab.hosts[0].root.join("etc/k0s/k0s.yaml").is_file());
    let w = status_json(&lab, 1);
    assert_eq!(w["Role"], "worker");
    assert_eq!(w["Workloads"], true);
    assert_eq!(w["SingleNode"], false);
    assert!(
        lab.hosts[1]
            .root
            .join("etc/systemd/system/k0sworker.service")
            .is_file()
    );
    assert_eq!(state(&lab, 0, "starts").as_deref(), Some("1"));
    assert_eq!(state(&lab, 1, "starts").as_deref(), Some("1"));
    let members =
        std::fs::read_to_string(lab.hosts[0].root.join("var/lib/k0s/etcd-members")).unwrap();
    assert_eq!(members, "node0 https://10.0.0.1:2380\n");

    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    for h in 0..2 {
        assert_eq!(
            state(&lab, h, "starts").as_deref(),
            Some("1"),
            "host {h} restarted"
        );
        assert_eq!(state(&lab, h, "restarts"), None, "host {h} restarted");
    }

    // A change of spec.k0s.config restarts the running controller, not the worker.
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        "      spec:\n        network:\n          provider: kuberouter\n",
    );
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(state(&lab, 0, "restarts").as_deref(), Some("1"));
    assert_eq!(state(&lab, 1, "restarts"), None);

    // A new k0s version replaces the binary and restarts every host; an older one is refused.
    let y = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, y.replace("v1.33.4+k0s.0", "v1.33.5+k0s.0")).unwrap();
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(state(&lab, 0, "restarts").as_deref(), Some("2"));
    assert_eq!(state(&lab, 1, "restarts").as_deref(), Some("1"));
    assert_eq!(status_json(&lab, 1)["Version"], "v1.33.5+k0s.0");
    std::fs::write(&cfg, y).unwrap();
    let o = apply(&lab, &cfg);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("can't perform a downgrade: v1.33.5+k0s.0 > v1.33.4+k0s.0"),
        "{t}"
    );

    // Every run was recorded with its argv and environment.
    let log = std::fs::read_to_string(lab.dir.path().join("invocations.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["argv"][1], "apply");
    assert_eq!(lines[0]["env"]["SSH_KNOWN_HOSTS"], kh.display().to_string());
    assert_eq!(lines[0]["env"]["KUBECONFIG"], serde_json::Value::Null);
}

#[test]
fn killed_between_install_and_start_the_next_apply_fails_until_the_service_is_started() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0, 1]);
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        K0S_CONFIG,
    );
    let unit = lab.hosts[0]
        .root
        .join("etc/systemd/system/k0scontroller.service");
    let mut child = k0sctl(
        &lab,
        &["apply", "--config", cfg.to_str().unwrap()],
        &[("K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL", "60")],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for("the controller's service unit", || unit.is_file());

    // While it runs, a second invocation for the same configuration is refused.
    let o = apply(&lab, &cfg);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("already running"), "{t}");

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The killed run's control masters live on (ControlPersist=600). Left there, the next
    // run's `ssh -N -f -o ControlMaster=yes` finds the socket taken, falls back to a plain
    // connection that stays in the background for good, and its commands go through the
    // old master: whoever kills k0sctl closes them, as here.
    lab.close_masters();

    let o = apply(&lab, &cfg);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("k0s doesn't appear to be running but has been installed as a service at /etc/systemd/system/k0scontroller.service - please remove it or start the service"),
        "{t}"
    );
    // k0sctl uploads every binary before it installs any service: the worker has k0s but
    // no service and nothing running.
    assert!(lab.hosts[1].root.join("usr/local/bin/k0s").exists());
    assert!(
        !lab.hosts[1]
            .root
            .join("etc/systemd/system/k0sworker.service")
            .exists()
    );
    assert!(!k0s(&lab, 1, &["status"]).status.success());

    let o = k0s(&lab, 0, &["start"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(status_json(&lab, 1)["Role"], "worker");
}

#[test]
fn a_role_change_is_refused() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0, 1]);
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        K0S_CONFIG,
    );
    assert!(apply(&lab, &cfg).status.success());
    let cfg = config(
        &lab,
        &kh,
        &[
            (0, "controller", "10.0.0.1"),
            (1, "controller+worker", "10.0.0.2"),
        ],
        K0S_CONFIG,
    );
    let o = apply(&lab, &cfg);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains(&format!(
            "[OpenSSH] root@127.0.0.1:{}: is configured as k0s controller+worker but is already running as worker - role change is not supported",
            lab.hosts[1].port
        )),
        "{t}"
    );
}

#[test]
fn a_new_controller_still_listed_in_etcd_is_refused_until_it_leaves() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0, 1]);
    let one = config(&lab, &kh, &[(0, "controller", "10.0.0.1")], K0S_CONFIG);
    assert!(apply(&lab, &one).status.success());
    // A controller at 10.0.0.2 was replaced: etcd still lists it.
    let members = lab.hosts[0].root.join("var/lib/k0s/etcd-members");
    let mut m = std::fs::read_to_string(&members).unwrap();
    m.push_str("old https://10.0.0.2:2380\n");
    std::fs::write(&members, m).unwrap();

    let two = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "controller", "10.0.0.2")],
        K0S_CONFIG,
    );
    let o = apply(&lab, &two);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("is listed as an existing etcd member but k0s is not found installed on it"),
        "{t}"
    );

    let o = k0s(&lab, 0, &["etcd", "leave", "--peer-address", "10.0.0.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = apply(&lab, &two);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(status_json(&lab, 1)["Role"], "controller");
    let m = std::fs::read_to_string(&members).unwrap();
    assert_eq!(
        m,
        "node0 https://10.0.0.1:2380\nnode1 https://10.0.0.2:2380\n"
    );

    // Resetting the second controller takes it out of etcd on the leader.
    let y = std::fs::read_to_string(&two).unwrap().replace(
        "    hostname: node1\n",
        "    hostname: node1\n    reset: true\n",
    );
    std::fs::write(&two, y).unwrap();
    let o = apply(&lab, &two);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!lab.hosts[1].root.join("usr/local/bin/k0s").exists());
    let m = std::fs::read_to_string(&members).unwrap();
    assert_eq!(m, "node0 https://10.0.0.1:2380\n");
}

#[test]
fn a_reset_host_loses_k0s() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0, 1]);
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        K0S_CONFIG,
    );
    assert!(apply(&lab, &cfg).status.success());
    let y = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("    role: worker\n", "    role: worker\n    reset: true\n");
    std::fs::write(&cfg, y).unwrap();
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!lab.hosts[1].root.join("usr/local/bin/k0s").exists());
    assert!(
        !lab.hosts[1]
            .root
            .join("etc/systemd/system/k0sworker.service")
            .exists()
    );
    assert!(status_json(&lab, 0)["Pid"].as_i64().unwrap() > 0);
}

#[test]
fn a_single_node_runs_as_k0s_reports_it_and_a_rerun_accepts_it() {
    let lab = Lab::start(1);
    let kh = lab.known_hosts(&[0]);
    let cfg = config(&lab, &kh, &[(0, "single", "10.0.0.1")], K0S_CONFIG);
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    let st = status_json(&lab, 0);
    // k0s says "controller" with workloads; k0sctl reads `--single=true` in Args as single.
    assert_eq!(st["Role"], "controller");
    assert_eq!(st["Workloads"], true);
    assert_eq!(st["SingleNode"], true);
    assert!(
        st["Args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--single=true")
    );
    let o = apply(&lab, &cfg);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(state(&lab, 0, "starts").as_deref(), Some("1"));
}
