//! The whole pipeline with the real `k0rdent` CLI: the ARM emulator whose VMs are lab nodes,
//! our own WireGuard hub, the stand-in k0sctl installing (stand-in) k0s over SSH through the
//! tunnel, the fake Kubernetes API served inside the controller on its tunnel address, the
//! real kubectl and the stand-in helm, kcm played by the fake API.
//!
//! Proves: a fresh `deploy` ends with a ready k0rdent (exit 0); a rerun starts nothing and runs
//! no mutating tool; a `k0sctl apply` killed between `k0s install` and the service start
//! leaves k0s installed but stopped, and the next `deploy` starts it and finishes — after
//! which the hub interface removed → only `connect_vpn` reruns; the worker given another
//! public IP → `plan` and `deploy` rerun only `setup_vpn`, which moves the endpoint on the same
//! hub process, and no tool runs; a second worker in the configuration → `plan` shows and
//! `deploy` runs exactly its VM, `setup_vpn` and `install_k0s` (one more `k0sctl apply`, no
//! helm, both workers in `kubectl get nodes`); the count lowered again → confirmed, k0sctl
//! resets that worker and its VM, NIC, public IP, disk, peer and records go (the CLI killed
//! mid-deletion resumes with one VM DELETE in all), and a rerun does nothing; a silent peer blocks the run (exit 3) naming
//! the node without any SSH attempt or tool run. The plans, the JSON events and the status of
//! those scenarios are insta snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use k0rdent_azure::names::VmNames;
use k0rdent_ssh::wireguard::ResolvedNetwork;
use k0rdent_standins::kube::Resource;
use k0rdent_tests::lab::cli::{LabCli, harness};
use k0rdent_tests::lab::pipeline::{CONTROLLER, PipelineLab, WORKER};
use k0rdent_tests::lab::wireguard::find_wireguard_go;
use k0rdent_tests::lab::{cmd, transcript};

fn main() -> ExitCode {
    harness(
        "whole_pipeline",
        &[("fresh_deploy_rerun_killed_apply_and_tunnel_back", || {
            Box::pin(fresh_deploy_rerun_killed_apply_and_tunnel_back())
        })],
    )
}

/// An insta snapshot of `text` with the lab's addresses, keys, ids and durations replaced.
fn snapshot(name: &str, text: &str) {
    transcript::settings().bind(|| insta::assert_snapshot!(name, text));
}

/// The steps a text `plan` lists as `run` or `rerun` (provisional ones too: `run*`), in
/// order.
fn planned(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (step, action) = (words.next()?, words.next()?);
            matches!(action.trim_end_matches('*'), "run" | "rerun").then_some(step)
        })
        .collect()
}

/// `kubectl get nodes -o name` with the kubeconfig the pipeline wrote, as it is.
fn kube_nodes(cli: &LabCli) -> String {
    let kubeconfig = cli.state_dir().join("kubeconfig");
    let out = cmd::output(
        "kubectl",
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "nodes",
            "-o",
            "name",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn fresh_deploy_rerun_killed_apply_and_tunnel_back() {
    let lab = PipelineLab::start().await;
    let (backend, cli, tools) = (&lab.backend, &lab.cli, &lab.tools);

    // The VMs and the tunnel first: the controller's API lives on its tunnel address.
    cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    let net = ResolvedNetwork::from_state(&cli.state().await).unwrap();
    let api = lab.api().await;
    let tip = api.address;

    // The CLI killed (SIGKILL, as a crash or a closed laptop) while k0sctl sits between
    // `k0s install` and the service start on the controller: k0sctl dies with it (parent-death
    // signal), k0s is left installed but stopped, and the step stays in progress.
    lab.pause_k0sctl_after_install(Some(60));
    let killer = lab.when_k0s_installed(|_| PipelineLab::kill_deploys());
    let r = cli.run(&["deploy", "-y"]);
    eprintln!("{}{}", r.stdout, r.stderr);
    assert!(killer.join().unwrap().is_some(), "k0sctl never paused");
    assert_eq!(r.code, -1, "the CLI was killed");
    lab.pause_k0sctl_after_install(None);
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
    let r = cli.run(&["deploy", "-y"]);
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
    assert_eq!(tools.mutating_calls().1, 1);
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);

    // Flux moves the release to a new revision on its own (kcm's HelmRelease does); the
    // rerun below still runs no helm.
    let flux_bumped = || {
        api.kube
            .list(Resource::Secrets, None, "owner=helm,status=deployed")
            .unwrap()
            .iter()
            .any(|s| s["metadata"]["labels"]["version"] != "1")
    };
    assert!(
        cmd::wait_for(10.0, flux_bumped),
        "Flux bumped the release's revision"
    );
    // A rerun starts nothing and runs no apply or install.
    let (applies, upgrades) = tools.mutating_calls();
    let r = cli.ok(&["deploy", "-y"]);
    assert!(r.started_steps().is_empty(), "{}", r.stderr);
    assert_eq!(tools.mutating_calls(), (applies, upgrades));

    // The hub interface is removed (a reboot): only connect_vpn reruns.
    cmd::run("ip", &["link", "del", net.interface.as_str()]);
    let r = cli.ok(&["deploy", "-y"]);
    let started = r.started_steps();
    assert_eq!(started.len(), 1, "{}", r.stderr);
    assert!(started[0].contains("connect_vpn"), "{started:?}");
    assert_eq!(tools.mutating_calls(), (applies, upgrades));

    // The worker comes back with another public IP: `plan` says setup_vpn reruns for the
    // endpoint, `deploy` updates the peer in place (the same hub process) and reinstalls
    // nothing.
    let hub_pid = find_wireguard_go(net.interface.as_str());
    let moved = backend.move_public_ip(WORKER);
    assert!(
        cli.emu
            .reassign_public_ip(&VmNames::new(WORKER).public_ip, IpAddr::V4(moved)),
        "the worker's public IP resource"
    );
    let plan = cli.run(&["plan"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    snapshot("public_ip_changed_plan", &plan.stdout);
    let r = cli.ok(&["-o", "json", "deploy", "-y"]);
    let events = transcript::decisive_events(&r.stdout);
    snapshot("public_ip_changed_deploy_events", &events);
    assert_eq!(transcript::started(&events), ["setup_vpn"], "{events}");
    assert_eq!(
        hub_pid,
        find_wireguard_go(net.interface.as_str()),
        "same hub"
    );
    let dump = cmd::run("wg", &["show", net.interface.as_str(), "endpoints"]);
    assert!(dump.contains(&format!("{moved}:{}", net.port)), "{dump}");
    assert_eq!(tools.mutating_calls(), (applies, upgrades));

    // A second worker in the configuration: exactly its VM, its peer and install_k0s run
    // (k0sctl adds the host); install_k0rdent does not, its inputs are unchanged.
    std::fs::write(
        cli.config(),
        std::fs::read_to_string(cli.config()).unwrap().replace(
            "  workers:\n    count: 1\n    zones: [2]",
            "  workers:\n    count: 2\n    zones: [2]",
        ),
    )
    .unwrap();
    let plan = cli.run(&["plan"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    snapshot("worker_added_plan", &plan.stdout);
    assert_eq!(
        planned(&plan.stdout),
        [
            "prepare_deployment",
            "create_vms/k0s-worker-2",
            "setup_vpn",
            "install_k0s"
        ],
        "{}",
        plan.stdout
    );
    let r = cli.ok(&["-o", "json", "deploy", "-y"]);
    let events = transcript::decisive_events(&r.stdout);
    snapshot("worker_added_deploy_events", &events);
    assert_eq!(
        transcript::started(&events),
        ["create_vms/k0s-worker-2", "setup_vpn", "install_k0s"],
        "{events}"
    );
    assert_eq!(tools.mutating_calls(), (applies + 1, upgrades));
    assert_eq!(kube_nodes(cli), "node/k0s-worker-1\nnode/k0s-worker-2\n");
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    snapshot("worker_added_status", &status.stdout);
    let applies = applies + 1;

    // The count lowered again: k0s-worker-2 leaves. `plan` shows install_k0s (k0sctl drains
    // and resets it) and remove_nodes (its VM goes) as changes that need confirmation, and
    // install_k0rdent untouched; `deploy` without -y deletes nothing.
    let two = std::fs::read_to_string(cli.config()).unwrap();
    std::fs::write(
        cli.config(),
        two.replace("count: 2\n    zones: [2]", "count: 1\n    zones: [2]"),
    )
    .unwrap();
    let plan = cli.run(&["plan"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    snapshot("worker_removed_plan", &plan.stdout);
    assert_eq!(
        planned(&plan.stdout),
        [
            "prepare_deployment",
            "setup_vpn",
            "install_k0s",
            "remove_nodes"
        ],
        "{}",
        plan.stdout
    );
    let r = cli.run(&["deploy"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("-y") || r.stdout.contains("-y"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    assert!(cli.emu.vm("k0s-worker-2").is_some());
    assert_eq!(tools.mutating_calls(), (applies, upgrades));

    // Confirmed: one k0sctl apply with the worker `reset: true` (drained, its Kubernetes node
    // deleted, k0s reset), then its VM, NIC, public IP and OS disk deleted, its peer and
    // records removed; no helm. The CLI is SIGKILLed while Azure deletes the VM; the next
    // deploy resumes remove_nodes alone and never sends a second DELETE for the VM.
    let mark = cli.emu.log().len();
    let (killed_run, killed) =
        cli.run_killed_when(&["deploy", "-y"], Duration::from_millis(300), |v| {
            v["event"] == "step_progress"
                && v["step"] == "remove_nodes"
                && v["message"] == "deleting VM k0s-worker-2"
        });
    assert!(killed, "{}{}", killed_run.stdout, killed_run.stderr);
    let state = cli.state().await;
    assert!(!state.nodes.contains_key("k0s-worker-2"), "forgotten first");
    assert!(
        state.phases["create_vms"]
            .items
            .contains_key("k0s-worker-2")
    );
    let r = cli.ok(&["-o", "json", "deploy", "-y"]);
    let events = transcript::decisive_events(&r.stdout);
    snapshot("worker_removed_deploy_events", &events);
    assert_eq!(transcript::started(&events), ["remove_nodes"], "{events}");
    assert_eq!(tools.mutating_calls(), (applies + 1, upgrades));
    let vm_deletes = cli
        .emu
        .log()
        .since(mark)
        .iter()
        .filter(|e| e.method == "DELETE" && e.path.ends_with("/virtualMachines/k0s-worker-2"))
        .filter(|e| e.status / 100 == 2)
        .count();
    assert_eq!(vm_deletes, 1);
    let applied = std::fs::read_to_string(cli.state_dir().join("k0sctl.yaml")).unwrap();
    assert_eq!(applied.matches("reset: true").count(), 1, "{applied}");
    assert_eq!(kube_nodes(cli), "node/k0s-worker-1\n");
    let gone = VmNames::new("k0s-worker-2");
    assert!(cli.emu.vm("k0s-worker-2").is_none());
    for (rtype, name) in [
        ("Microsoft.Network/networkInterfaces", &gone.nic),
        ("Microsoft.Network/publicIPAddresses", &gone.public_ip),
        ("Microsoft.Compute/disks", &gone.os_disk),
    ] {
        assert!(cli.emu.resource(rtype, name).is_none(), "{rtype} {name}");
    }
    assert!(cli.emu.vm(WORKER).is_some() && cli.emu.vm(CONTROLLER).is_some());
    let peers = cmd::run("wg", &["show", net.interface.as_str(), "peers"]);
    assert_eq!(peers.lines().count(), 2, "{peers}");
    let state = cli.state().await;
    assert!(!state.nodes.contains_key("k0s-worker-2"));
    assert!(
        !state.phases["create_vms"]
            .items
            .contains_key("k0s-worker-2")
    );
    let hub = std::fs::read_to_string(
        cli.state_dir()
            .join("keys")
            .join(format!("{}.conf", net.interface)),
    )
    .unwrap();
    assert_eq!(
        hub.matches("[Peer]").count(),
        2,
        "two peers left in the hub file"
    );
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    snapshot("worker_removed_status", &status.stdout);
    let r = cli.ok(&["deploy", "-y"]);
    assert!(r.started_steps().is_empty(), "{}", r.stderr);
    let applies = applies + 1;
    assert_eq!(tools.mutating_calls(), (applies, upgrades));
    k0rdent_tests::lab::agreement::assert_agrees(&lab, "converged after the changes").await;

    // The worker's WireGuard dies (its peer goes silent): deploy blocks with exit 3 naming
    // the node, tries no SSH to it and runs no tool.
    backend.with_node(WORKER, |n| n.kill_wireguard()).unwrap();
    let r = cli.run(&["deploy", "-y"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("k0s-worker-1") && r.stdout.contains("no SSH attempt"),
        "{}",
        r.stdout
    );
    assert!(r.started_steps().is_empty(), "{}", r.stderr);
    assert_eq!(tools.mutating_calls(), (applies, upgrades));

    lab.finish(Some(api));
}
