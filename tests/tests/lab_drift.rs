//! Drift behind our back, after a complete deployment on lab VMs (2 controllers, 1 worker):
//! a controller's VM deleted and the worker deallocated through ARM, as someone with `az` or
//! the portal would. `status` exits 2 and names both; `deploy` recreates the controller (its
//! old etcd member removed first) and starts the worker, and reruns exactly the steps that
//! depend on them; nothing else is touched — the other VMs keep their instance ids, no key is
//! regenerated — and afterwards `status` exits 0, the real `kubectl` lists the worker Ready
//! and a rerun starts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

use k0rdent_tests::lab::cli::harness;
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::pipeline::{CONTROLLER, PipelineLab, WORKER};
use k0rdent_tests::lab::vm_backend::VmStatus;

const CONFIG: &str = include_str!("../fixtures/lab-vms-2x1.yaml");
/// The controller deleted behind our back.
const LOST: &str = "k0s-controller-2";
const VM_TYPE: &str = "Microsoft.Compute/virtualMachines";
const COMPUTE_API: &str = "api-version=2024-07-01";

fn main() -> ExitCode {
    harness(
        "lab_drift",
        &[(
            "a_deleted_controller_and_a_deallocated_worker_are_named_and_repaired",
            || Box::pin(a_deleted_controller_and_a_deallocated_worker_are_named_and_repaired()),
        )],
    )
}

/// `kubectl get nodes` with the kubeconfig the pipeline wrote, unmodified: `name status` lines.
fn kube_nodes(kubeconfig: &Path) -> String {
    let out = cmd::run(
        "kubectl",
        &[
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "get",
            "nodes",
            "--no-headers",
        ],
    );
    out.lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn a_deleted_controller_and_a_deallocated_worker_are_named_and_repaired() {
    let lab = PipelineLab::start_with(CONFIG).await;
    let (backend, cli) = (&lab.backend, &lab.cli);
    cli.ok(&["deploy", "-y"]);
    let api = lab.api().await;
    cli.ok(&["status"]);
    let vms = [CONTROLLER, LOST, WORKER];
    let ids: BTreeMap<&str, String> = vms
        .iter()
        .map(|v| (*v, cli.emu.vm(v).unwrap().vm_id))
        .collect();
    let keys = cli.key_files();
    let pins = |s: &k0rdent_core::state::DeploymentState| -> BTreeMap<String, String> {
        s.nodes
            .iter()
            .map(|(n, r)| (n.clone(), format!("{:?}", r.ssh_host_keys)))
            .collect()
    };
    let pinned = pins(&cli.state().await);
    let kubeconfig = cli.state_dir().join("kubeconfig");
    assert_eq!(kube_nodes(&kubeconfig), format!("{WORKER} Ready"));

    // Behind our back: the controller's VM deleted, the worker deallocated.
    let id = |vm: &str| {
        cli.emu.resource(VM_TYPE, vm).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (code, body) = cli.arm("DELETE", &format!("{}?{COMPUTE_API}", id(LOST)));
    assert!(code == 202 || code == 200, "DELETE {LOST}: {code} {body}");
    let (code, body) = cli.arm("POST", &format!("{}/deallocate?{COMPUTE_API}", id(WORKER)));
    assert!(
        code == 202 || code == 200,
        "deallocate {WORKER}: {code} {body}"
    );
    assert!(
        cmd::wait_for(60.0, || cli.emu.vm(LOST).is_none()
            && !backend.names().iter().any(|n| n == LOST)
            && backend.status(WORKER) == Some(VmStatus::Off)),
        "the drift did not land: {:?} {:?}",
        backend.names(),
        backend.status(WORKER)
    );
    let writes_before = cli.writes().len();

    let status = cli.run(&["status"]);
    eprintln!("{}{}", status.stdout, status.stderr);
    assert_eq!(status.code, 2, "drift is exit 2");
    let drifted: Vec<&str> = status
        .stdout
        .lines()
        .filter(|l| l.contains(" DRIFT "))
        .collect();
    assert_eq!(drifted.len(), 2, "{}", status.stdout);
    assert!(status.stdout.contains(": 2 drifted,"), "{}", status.stdout);
    for vm in [LOST, WORKER] {
        assert!(
            drifted
                .iter()
                .any(|l| l.contains(&format!("create_vms/{vm}"))),
            "status names {vm}: {}",
            status.stdout
        );
    }
    assert!(
        !drifted
            .iter()
            .any(|l| l.contains(&format!("create_vms/{CONTROLLER} "))),
        "{}",
        status.stdout
    );
    assert_eq!(cli.writes().len(), writes_before, "status wrote to Azure");

    let plan = cli.run(&["plan"]);
    eprintln!("{}{}", plan.stdout, plan.stderr);
    assert_eq!(plan.code, 2);

    let run = cli.run(&["deploy", "-y"]);
    eprintln!("{}", run.stderr);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let started: BTreeSet<&str> = run
        .started_steps()
        .iter()
        .map(|l| l[2..].split(':').next().unwrap())
        .collect();
    eprintln!("started: {started:?}");
    // The two VMs, and k0s (a new controller to join, its old etcd member to drop). Not the
    // tunnel: the public IP resources outlived the VM, so the endpoints and keys are the
    // same; not k0rdent: it still runs on the cluster.
    let expected: BTreeSet<&str> = [
        "create_vms/k0s-controller-2",
        "create_vms/k0s-worker-1",
        "install_k0s",
    ]
    .into();
    assert_eq!(started, expected, "{}", run.stderr);

    // Exactly those VMs: the controller is a new instance, the worker the same one started,
    // the other controller untouched; no key regenerated.
    let now: BTreeMap<&str, String> = vms
        .iter()
        .map(|v| (*v, cli.emu.vm(v).unwrap().vm_id))
        .collect();
    assert_ne!(now[LOST], ids[LOST]);
    assert_eq!(now[WORKER], ids[WORKER]);
    assert_eq!(now[CONTROLLER], ids[CONTROLLER]);
    assert_eq!(cli.key_files(), keys, "a key was regenerated");
    // Host keys pinned anew only for the new VM.
    let repinned = pins(&cli.state().await);
    for vm in vms {
        assert_eq!(repinned[vm] == pinned[vm], vm != LOST, "{vm}: {repinned:?}");
    }
    assert!(repinned[LOST] != "[]", "the new VM's keys are pinned");

    // The replaced controller's old etcd member went before the new one joined: two members.
    let members = backend
        .with_node(CONTROLLER, |n| n.run(&["cat", "/var/lib/k0s/etcd-members"]))
        .unwrap()
        .unwrap();
    eprintln!("etcd members on {CONTROLLER}:\n{members}");
    assert_eq!(members.lines().count(), 2, "{members}");

    assert_eq!(kube_nodes(&kubeconfig), format!("{WORKER} Ready"));
    cli.ok(&["status"]);
    let again = cli.ok(&["deploy", "-y"]);
    assert!(again.started_steps().is_empty(), "{}", again.stderr);
    // The recreated controller's new host keys are pinned, the others' kept (checked above);
    // the state, Azure, the VMs, known_hosts and the hub agree both ways.
    k0rdent_tests::lab::agreement::assert_agrees(&lab, "after the repair").await;
    lab.finish(Some(api));
}
