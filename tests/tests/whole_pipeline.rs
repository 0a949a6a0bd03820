//! The whole pipeline with the real `k0rdent` CLI: the ARM emulator whose VMs are lab nodes,
//! our own WireGuard hub, the stand-in k0sctl installing (stand-in) k0s over SSH through the
//! tunnel, the fake Kubernetes API served inside the controller on its tunnel address, the
//! real kubectl and the stand-in helm, kcm played by the fake API.
//!
//! Proves: a fresh `deploy` ends with a ready k0rdent (exit 0); a rerun starts nothing and runs
//! no mutating tool; a `k0sctl apply` killed between `k0s install` and the service start
//! leaves k0s installed but stopped, and the next `deploy` starts it and finishes — after
//! which the hub interface removed → only `connect_vpn` reruns, and a silent peer blocks the
//! run (exit 3) naming the node without any SSH attempt or tool run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;
use k0rdent_ssh::wireguard::ResolvedNetwork;
use k0rdent_standins::kube::{FakeKube, KcmSimulation};
use k0rdent_tests::lab::{
    self,
    cli::{LabCli, serve_as_cli},
    cmd,
    vm_backend::{LabVmBackend, LabVmOptions},
};
use k0rdent_tests::standins;

const CONFIG: &str = include_str!("../fixtures/lab-vms-1x1.yaml");
const CONTROLLER: &str = "k0s-controller-1";
const WORKER: &str = "k0s-worker-1";

fn main() -> ExitCode {
    if let Some(code) = serve_as_cli() {
        return code;
    }
    lab::require_lab();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    rt.block_on(fresh_deploy_rerun_killed_apply_and_tunnel_back());
    eprintln!(
        "test whole_pipeline::fresh_deploy_rerun_killed_apply_and_tunnel_back ... ok ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// The stand-ins' invocations of one verb (`apply`, `upgrade`, ...).
fn calls(log: &Path, verb: &str) -> usize {
    standins::invocations(log)
        .iter()
        .filter(|c| {
            c["argv"]
                .as_array()
                .is_some_and(|a| a.iter().skip(1).any(|x| x == verb))
        })
        .count()
}

async fn fresh_deploy_rerun_killed_apply_and_tunnel_back() {
    let backend = Arc::new(LabVmBackend::new(LabVmOptions {
        boot_delay: Duration::from_millis(500),
    }));
    let emu = Emulator::builder()
        .operation_duration(Duration::from_millis(200))
        .retry_after(Duration::from_millis(100))
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    let slot = backend.slot();
    let tools = slot.dir().join("tools");
    std::fs::create_dir_all(&tools).unwrap();
    let kubeconfig = tools.join("admin.kubeconfig");
    let k0sctl_log = tools.join("k0sctl.log");
    let helm_log = tools.join("helm.log");
    let pause = tools.join("pause");
    // The k0sctl wrapper pauses after `k0s install` while the file `pause` exists.
    let k0sctl = standins::wrapper(
        &tools,
        "k0sctl",
        &[
            ("K0RDENT_STANDIN_LOG", k0sctl_log.display().to_string()),
            ("K0RDENT_STANDIN_DIR", tools.display().to_string()),
            (
                "K0RDENT_STANDIN_KUBECONFIG",
                kubeconfig.display().to_string(),
            ),
        ],
    );
    let script = std::fs::read_to_string(&k0sctl).unwrap().replace(
        "exec '",
        &format!(
            "[ -f '{p}' ] && export K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL=$(cat '{p}')\nexec '",
            p = pause.display()
        ),
    );
    std::fs::write(&k0sctl, script).unwrap();
    let helm = standins::wrapper(
        &tools,
        "helm",
        &[
            ("K0RDENT_STANDIN_LOG", helm_log.display().to_string()),
            ("K0RDENT_STANDIN_DIR", tools.display().to_string()),
        ],
    );
    let line = "wireguard_network: 172.30.0.0/24";
    let config = format!(
        "{}\nsoftware:\n  k0rdent:\n    version: \"1.4.0\"\ntimeouts:\n  cloud_init_timeout: 60\ntools:\n  k0sctl: {}\n  helm: {}\n",
        CONFIG.replace(line, &format!("wireguard_network: {}", slot.tunnel_net())),
        k0sctl.display(),
        helm.display()
    );
    let cli = LabCli::new(emu, &slot.dir().join("cli"), &config);

    // The VMs and the tunnel first: the controller's API lives on its tunnel address.
    cli.ok(&["-y", "deploy", "--until", "connect_vpn"]);
    let state = cli.state().await;
    let net = ResolvedNetwork::from_state(&state).unwrap();
    slot.record_hub(net.interface.as_str());
    backend
        .wait_all_booted(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let tip = net.node(CONTROLLER).unwrap().address;
    let kube = FakeKube::with_sans(vec![IpAddr::V4(tip)]).unwrap();
    let ns = backend.with_node(CONTROLLER, |n| n.netns.clone()).unwrap();
    let api = kube
        .serve_std(lab::netns::bind_in(
            &ns,
            SocketAddr::new(IpAddr::V4(tip), 6443),
        ))
        .unwrap();
    std::fs::write(
        &kubeconfig,
        kube.admin_kubeconfig(&format!("https://{tip}:6443"), "k0s-cluster")
            .unwrap(),
    )
    .unwrap();
    let _kcm = kube.start_kcm_simulation(KcmSimulation::default());

    // The CLI killed (SIGKILL, as a crash or a closed laptop) while k0sctl sits between
    // `k0s install` and the service start on the controller: k0sctl dies with it (parent-death
    // signal), k0s is left installed but stopped, and the step stays in progress.
    std::fs::write(&pause, "60").unwrap();
    let killer = {
        let log = k0sctl_log.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            loop {
                if start.elapsed() > Duration::from_secs(180) {
                    return false;
                }
                if calls(&log, "apply") > 0
                    && !cmd::output("pgrep", &["-f", "k0sctl apply"])
                        .stdout
                        .is_empty()
                {
                    std::thread::sleep(Duration::from_secs(4));
                    let out = cmd::output("pgrep", &["-f", "--", "--state-dir .* -y deploy$"]);
                    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                        cmd::kill(pid.parse().unwrap());
                    }
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let r = cli.run(&["-y", "deploy"]);
    eprintln!("{}{}", r.stdout, r.stderr);
    assert!(killer.join().unwrap(), "k0sctl never paused");
    assert_eq!(r.code, -1, "the CLI was killed");
    std::fs::remove_file(&pause).unwrap();
    let start = Instant::now();
    while !cmd::output("pgrep", &["-f", "k0sctl apply"])
        .stdout
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "k0sctl outlived the CLI"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = backend
        .with_node(CONTROLLER, |n| {
            n.run(&[
                "sh",
                "-c",
                "ls /etc/systemd/system/ | grep k0s; k0s status -o json >/dev/null 2>&1 || echo NOT-RUNNING",
            ])
        })
        .unwrap()
        .unwrap();
    assert_eq!(
        left, "k0scontroller.service\nNOT-RUNNING\n",
        "installed but stopped"
    );
    let state = cli.state().await;
    assert_eq!(
        state.phases["install_k0s"].status,
        k0rdent_core::state::Status::InProgress
    );

    // The next deploy starts the stopped k0s first (k0sctl refuses such a host) and finishes.
    let r = cli.run(&["-y", "deploy"]);
    eprintln!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 0, "resumed deploy:\n{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("starting the k0s service")
            || r.stdout.contains("starting the k0s service"),
        "{}",
        r.stderr
    );
    let kcfg = std::fs::read_to_string(cli.state_dir().join("kubeconfig")).unwrap();
    assert!(
        kcfg.contains(&format!("server: https://{tip}:6443")),
        "{kcfg}"
    );
    assert_eq!(calls(&helm_log, "upgrade"), 1);
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);

    // A rerun starts nothing and runs no apply or install.
    let (applies, upgrades) = (calls(&k0sctl_log, "apply"), calls(&helm_log, "upgrade"));
    let r = cli.ok(&["-y", "deploy"]);
    assert!(r.started_steps().is_empty(), "{}", r.stderr);
    assert_eq!(
        (calls(&k0sctl_log, "apply"), calls(&helm_log, "upgrade")),
        (applies, upgrades)
    );

    // The hub interface is removed (a reboot): only connect_vpn reruns.
    cmd::run("ip", &["link", "del", net.interface.as_str()]);
    let r = cli.ok(&["-y", "deploy"]);
    let started = r.started_steps();
    assert_eq!(started.len(), 1, "{}", r.stderr);
    assert!(started[0].contains("connect_vpn"), "{started:?}");
    assert_eq!(
        (calls(&k0sctl_log, "apply"), calls(&helm_log, "upgrade")),
        (applies, upgrades)
    );

    // The worker's WireGuard dies (its peer goes silent): deploy blocks with exit 3 naming
    // the node, tries no SSH to it and runs no tool.
    backend.with_node(WORKER, |n| n.kill_wireguard()).unwrap();
    let r = cli.run(&["-y", "deploy"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("k0s-worker-1") && r.stdout.contains("no SSH attempt"),
        "{}",
        r.stdout
    );
    assert!(r.started_steps().is_empty(), "{}", r.stderr);
    assert_eq!(
        (calls(&k0sctl_log, "apply"), calls(&helm_log, "upgrade")),
        (applies, upgrades)
    );

    cli.ok(&["-y", "reset"]);
    // The API's socket lives in the controller's namespace and would keep it alive.
    drop(api);
    assert!(
        backend.wait_all_deleted(Duration::from_secs(30)),
        "{:?}",
        backend.names()
    );
    // Connections the API closed sit in TIME_WAIT in the controller's namespace and keep its
    // link for up to a minute after the namespace is deleted (kernel behaviour, not ours).
    let start = Instant::now();
    while (0..2).any(|i| cmd::try_run("ip", &["link", "show", &slot.veth(i)]).is_ok()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the VMs' links stay"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("links gone {:.1?} after reset", start.elapsed());
    backend.teardown();
}
