//! The stand-in `k0sctl`'s command line, its `kubeconfig` command and its node registration
//! through a Kubernetes API, with real sshd servers on 127.0.0.1 as the hosts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "k0sctl_standin/api.rs"]
mod api;
#[path = "k0sctl_standin/sshd.rs"]
mod sshd;
#[path = "k0sctl_standin/testutil.rs"]
mod testutil;

use sshd::Lab;
use testutil::*;

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
        "version: v0.32.2\ncommit: 0000000\n"
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
    let o = run(&lab, &["apply", "--dry-run"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not model --dry-run"),
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
