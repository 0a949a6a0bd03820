//! `render hub`, `kubeconfig` and `ssh` on a deployment whose VMs exist (the real binary
//! against the ARM emulator) but whose tunnel is not up: the hub file is printed without its
//! private key, the kubeconfig is reported missing with a remedy, and `ssh` probes the
//! tunnel first — exit 3 with the diagnosis, never an SSH timeout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;

const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");

fn run(emu: &Emulator, dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o: Output = common::k0rdent(emu, dir)
        .env("K0RDENT_CONFIG", dir.join("k0rdent.yaml"))
        .env("K0RDENT_STATE_DIR", dir.join("state"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_kubeconfig_and_ssh_before_the_tunnel_is_up() {
    let emu = Emulator::builder()
        .operation_duration(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("k0rdent.yaml"), CONFIG).unwrap();

    // Before anything exists.
    let (code, _, err) = run(&emu, d, &["render", "hub"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no deployment"), "{err}");

    let (code, out, err) = run(&emu, d, &["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = run(&emu, d, &["render", "hub"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("[Peer]").count(), 5, "{out}");
    assert!(
        out.contains("PrivateKey = <not printed: keys/wireguard-hub.key"),
        "{out}"
    );
    let hub_key = std::fs::read_to_string(d.join("state/keys/wireguard-hub.key")).unwrap();
    assert!(
        !out.contains(hub_key.trim()),
        "the hub's private key was printed"
    );
    for n in 1..=3 {
        assert!(
            out.contains(&format!("# k0s-controller-{n} (controller)")),
            "{out}"
        );
    }
    let (code, out, _) = run(&emu, d, &["-o", "json", "render", "hub"]);
    assert_eq!(code, 0);
    assert!(!out.contains(hub_key.trim()));

    // The k0sctl configuration install_k0s would apply, from the recorded state.
    let (code, out, err) = run(&emu, d, &["render", "k0sctl"]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(doc["apiVersion"], "k0sctl.k0sproject.io/v1beta1");
    let hosts = doc["spec"]["hosts"].as_sequence().unwrap();
    let roles: Vec<&str> = hosts.iter().map(|h| h["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["controller", "controller", "controller", "worker", "worker"]
    );
    for h in hosts {
        assert!(
            h["openSSH"]["address"]
                .as_str()
                .unwrap()
                .starts_with("172.24.24."),
            "{h:?}"
        );
        assert!(
            h["privateAddress"].as_str().unwrap().starts_with("10.0.1."),
            "{h:?}"
        );
    }
    assert!(
        !d.join("state/k0sctl.yaml").exists(),
        "render writes nothing"
    );

    let (code, _, err) = run(&emu, d, &["kubeconfig"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no kubeconfig") && err.contains("k0rdent deploy"),
        "{err}"
    );

    let (code, _, err) = run(&emu, d, &["ssh", "k0s-nope-1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the nodes are: k0s-controller-1"), "{err}");

    // No tunnel: the probe answers within its timeout, with the diagnosis; no ssh runs.
    let start = Instant::now();
    let (code, out, err) = run(&emu, d, &["ssh", "k0s-worker-1", "--", "true"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("peer k0s-worker-1"), "{out}");
    assert!(out.contains("hint:"), "{out}");
}
