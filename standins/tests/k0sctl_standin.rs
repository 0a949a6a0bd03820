//! The stand-in `k0sctl` binary against real sshd servers on 127.0.0.1: it connects as rig's
//! openSSH client does (so OpenSSH checks the host keys), installs and starts the stand-in
//! k0s on every host, and fails where k0sctl fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "k0sctl_standin/api.rs"]
mod api;
#[path = "k0sctl_standin/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sshd::Lab;

const BIN: &str = env!("CARGO_BIN_EXE_k0sctl");

/// A host of the configuration: (index in the lab, role, privateAddress).
type Spec<'a> = (usize, &'a str, &'a str);

/// The configuration the product renders (k0rdent-cli's `k0sctl_config.rs` snapshots), for
/// the lab's hosts.
fn config(lab: &Lab, known_hosts: &Path, hosts: &[Spec<'_>], k0s_config: &str) -> PathBuf {
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

const K0S_CONFIG: &str = "      spec:\n        network:\n          provider: calico\n";

fn k0sctl(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("K0RDENT_STANDIN_ROOT")
        .env_remove("K0RDENT_STANDIN_KUBECONFIG")
        .env_remove("K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL")
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

fn run(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Output {
    k0sctl(lab, args, env).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn apply(lab: &Lab, cfg: &Path) -> Output {
    run(lab, &["apply", "--config", cfg.to_str().unwrap()], &[])
}

fn state(lab: &Lab, host: usize, file: &str) -> Option<String> {
    std::fs::read_to_string(lab.hosts[host].root.join("var/lib/k0s/standin").join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The host's k0s, run on the node (the stand-in's script has its root written in).
fn k0s(lab: &Lab, host: usize, args: &[&str]) -> Output {
    Command::new(lab.hosts[host].root.join("usr/local/bin/k0s"))
        .args(args)
        .output()
        .unwrap()
}

fn status_json(lab: &Lab, host: usize) -> serde_json::Value {
    let o = k0s(lab, host, &["status", "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

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

    // Every run was recorded with its argv and environment.
    let log = std::fs::read_to_string(lab.dir.path().join("invocations.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["argv"][1], "apply");
    assert_eq!(lines[0]["env"]["SSH_KNOWN_HOSTS"], kh.display().to_string());
    assert_eq!(lines[0]["env"]["KUBECONFIG"], serde_json::Value::Null);
}

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
    let o = apply(&lab, &cfg);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("Host key verification failed"), "{t}");
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

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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

const ADMIN: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: https://localhost:6443\n    certificate-authority-data: Q0E=\ncontexts:\n- name: Default\n  context:\n    cluster: local\n    user: user\ncurrent-context: Default\nusers:\n- name: user\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";

#[test]
fn kubeconfig_prints_the_admin_config_for_the_first_controller() {
    let lab = Lab::start(2);
    let kh = lab.known_hosts(&[0, 1]);
    let cfg = config(
        &lab,
        &kh,
        &[(0, "controller", "10.0.0.1"), (1, "worker", "10.0.0.2")],
        K0S_CONFIG,
    );
    let admin = lab.dir.path().join("admin.conf");
    std::fs::write(&admin, ADMIN).unwrap();
    let env = [("K0RDENT_STANDIN_KUBECONFIG", admin.to_str().unwrap())];
    let c = cfg.to_str().unwrap();

    // Before k0s ever ran on the first controller, there is no admin kubeconfig.
    let o = run(&lab, &["kubeconfig", "--config", c], &env);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    assert!(apply(&lab, &cfg).status.success());
    let o = run(&lab, &["kubeconfig", "--config", c], &env);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    let want = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://127.0.0.1:6443\n  name: k0rdent-test\ncontexts:\n- context:\n    cluster: k0rdent-test\n    user: admin\n  name: k0rdent-test\ncurrent-context: k0rdent-test\nkind: Config\npreferences: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n\n";
    assert_eq!(out, want);

    let o = run(
        &lab,
        &[
            "kubeconfig",
            "--config",
            c,
            "--address",
            "https://10.9.9.9:6443",
        ],
        &env,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("server: https://10.9.9.9:6443\n"));
}

#[test]
fn the_command_line_is_checked_as_urfave_cli_does() {
    let lab = Lab::start(0);
    let o = run(&lab, &["version"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "version: v0.25.1\ncommit: 0000000\n"
    );
    let o = run(
        &lab,
        &["version"],
        &[("K0RDENT_STANDIN_K0SCTL_VERSION", "v0.17.0")],
    );
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("version: v0.17.0\n"));
    let o = run(&lab, &["apply", "--bogus"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("flag provided but not defined: -bogus"),
        "{}",
        text(&o)
    );
    let o = run(&lab, &["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No help topic for 'frobnicate'"));
    let bad = lab.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec:\n  hosts: []\n  bogus: 1\n",
    )
    .unwrap();
    let o = run(&lab, &["apply", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown field"),
        "{}",
        text(&o)
    );
}

#[test]
fn hosts_that_run_a_kubelet_are_registered_ready_through_the_api_once() {
    let lab = Lab::start(3);
    let api = api::Api::start(&lab.dir.path().join("api"));
    let kh = lab.known_hosts(&[0, 1, 2]);
    let cfg = config(
        &lab,
        &kh,
        &[
            (0, "controller", "10.0.0.1"),
            (1, "worker", "10.0.0.2"),
            (2, "worker", "10.0.0.3"),
        ],
        K0S_CONFIG,
    );
    let c = cfg.to_str().unwrap();
    let env = [(
        "K0RDENT_STANDIN_KUBECONFIG",
        api.kubeconfig.to_str().unwrap(),
    )];
    let o = run(&lab, &["apply", "--config", c], &env);
    assert!(o.status.success(), "{}", text(&o));
    {
        let w = api.world.lock().unwrap();
        // A pure controller runs no kubelet: only the workers are nodes.
        assert_eq!(w.nodes.keys().collect::<Vec<_>>(), ["node1", "node2"]);
        let n = &w.nodes["node1"];
        assert_eq!(n["status"]["conditions"][0]["type"], "Ready");
        assert_eq!(n["status"]["conditions"][0]["status"], "True");
        assert_eq!(n["status"]["addresses"][0]["address"], "10.0.0.2");
        assert_eq!(n["metadata"]["resourceVersion"], "2");
        assert_eq!(
            w.requests,
            [
                "GET /api/v1/nodes/node1",
                "POST /api/v1/nodes",
                "PUT /api/v1/nodes/node1/status",
                "GET /api/v1/nodes/node2",
                "POST /api/v1/nodes",
                "PUT /api/v1/nodes/node2/status",
            ]
        );
    }
    // A rerun only looks.
    let o = run(&lab, &["apply", "--config", c], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        api.world.lock().unwrap().requests[6..],
        ["GET /api/v1/nodes/node1", "GET /api/v1/nodes/node2"]
    );
    // A reset worker's node is deleted.
    let y = std::fs::read_to_string(&cfg).unwrap().replace(
        "    hostname: node2\n",
        "    hostname: node2\n    reset: true\n",
    );
    std::fs::write(&cfg, y).unwrap();
    let o = run(&lab, &["apply", "--config", c], &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        api.world.lock().unwrap().nodes.keys().collect::<Vec<_>>(),
        ["node1"]
    );
}
