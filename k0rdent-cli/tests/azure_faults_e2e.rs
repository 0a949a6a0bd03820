//! Issue #7, must-show 3: the real `k0rdent` binary against the ARM emulator with every Azure
//! behaviour of items 14–21 switched on at once — 411 without a length, NIC reservation
//! (shortened to 3 s), operation URLs that expire as soon as their operation ends, resize
//! rules, SKU limits, an asynchronous conflict, a canceled operation and throttling with a
//! Retry-After — on a 3-controller/2-worker `deploy --until create_vms` where one VM fails
//! once, one VM is deallocated behind our back, and the CLI is SIGKILLed while a VM's
//! operation is pending whose URL then expires. It converges, nothing is created twice, and a
//! final rerun makes no mutating request.
//!
//! A failed VM is replaced only with confirmation, so the runs that must replace it pass
//! `-y`; starting the deallocated VM needs none, and that run goes without `-y`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests report what they measured

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use k0rdent_arm_emulator::{Emulator, LoggedRequest};

const VM: &str = "Microsoft.Compute/virtualMachines";
const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");
const VMS: [&str; 5] = [
    "k0s-controller-1",
    "k0s-controller-2",
    "k0s-controller-3",
    "k0s-worker-1",
    "k0s-worker-2",
];

struct Lab {
    emu: Emulator,
    dir: tempfile::TempDir,
}

impl Lab {
    fn k0rdent(&self, args: &[&str]) -> Command {
        let mut c = common::k0rdent(&self.emu, self.dir.path());
        c.env("K0RDENT_CONFIG", self.dir.path().join("k0rdent.yaml"))
            .env("K0RDENT_STATE_DIR", self.dir.path().join("state"))
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let o = self.k0rdent(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    }

    fn state_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state/deployment-state.yaml"))
            .unwrap_or_default()
    }
}

fn vm_of(e: &LoggedRequest) -> Option<&str> {
    VMS.iter()
        .copied()
        .find(|v| e.path.ends_with(&format!("virtualMachines/{v}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_azure_fault_at_once_converges_without_duplicates_and_a_rerun_writes_nothing() {
    let emu = Emulator::builder()
        .latency(Duration::from_millis(5))
        .operation_duration(Duration::from_millis(800))
        .retry_after(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k0rdent.yaml"), CONFIG).unwrap();
    let lab = Lab { emu, dir };
    let f = lab.emu.faults();
    f.azure_rules(Duration::from_secs(3));
    f.fail_provisioning("k0s-controller-2", 1);
    f.cancel_operations("k0s-worker-1-nic", 1);
    f.conflict_async("k0s-worker-1", 1);
    f.throttle(Some("GET"), "/operations/", 2, Duration::from_secs(2));

    // 1. SIGKILL as soon as a VM's creation is accepted: its operation is pending.
    let mut child = lab
        .k0rdent(&["deploy", "-y", "--until", "create_vms"])
        .spawn()
        .unwrap();
    let pending = lab
        .emu
        .log()
        .wait_for(Duration::from_secs(120), |l| {
            l.iter()
                .any(|e| e.method == "PUT" && vm_of(e).is_some() && e.status == 201)
        })
        .await;
    assert!(pending, "a VM creation was accepted");
    child.kill().unwrap();
    child.wait().unwrap();
    let log = lab.emu.log().entries();
    let killed_vm = log
        .iter()
        .rfind(|e| e.method == "PUT" && e.status == 201 && vm_of(e).is_some())
        .and_then(vm_of)
        .unwrap()
        .to_owned();
    assert!(
        lab.state_text().contains("phase: accepted"),
        "the operation URL was journaled before the kill"
    );
    // Azure finishes (or fails) the work while nobody watches; the URL then expires.
    let mut terminal = false;
    for _ in 0..600 {
        if lab
            .emu
            .vm(&killed_vm)
            .is_some_and(|v| v.provisioning_state != "Creating")
        {
            terminal = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(terminal, "{killed_vm} finished provisioning");

    // 2. Converge. -y: k0s-controller-2's failed creation is replaced (delete + create).
    let mark = lab.emu.log().len();
    let (code, out) = lab.run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}");
    let since = lab.emu.log().since(mark);
    assert!(
        since
            .iter()
            .any(|e| e.path.contains("/operations/") && e.status == 404),
        "the journaled operation URL had expired and was settled by reading the resource"
    );
    assert!(
        !since
            .iter()
            .any(|e| e.method == "PUT" && e.status == 201 && vm_of(e) == Some(&killed_vm))
            || killed_vm == "k0s-controller-2",
        "{killed_vm} was not created a second time"
    );

    // 3. A VM deallocated behind our back is started (no confirmation needed); Azure first
    //    rejects the start as a conflict with an operation of its own.
    assert!(lab.emu.set_power_state("k0s-worker-1", "deallocated"));
    let mark = lab.emu.log().len();
    let (code, out) = lab.run(&["deploy", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}");
    let starts = lab
        .emu
        .log()
        .since(mark)
        .iter()
        .filter(|e| e.method == "POST" && e.path.ends_with("k0s-worker-1/start"))
        .count();
    assert_eq!(
        starts, 2,
        "accepted, failed as a conflict, sent again: {out}"
    );

    // Converged: every VM exists once, provisioned and running.
    let mut names = lab.emu.resource_names(VM);
    names.sort();
    assert_eq!(names, VMS);
    for kind in [
        "Microsoft.Network/networkInterfaces",
        "Microsoft.Network/publicIPAddresses",
        "Microsoft.Compute/disks",
    ] {
        assert_eq!(lab.emu.resource_names(kind).len(), 5, "{kind}");
    }
    for vm in VMS {
        let s = lab.emu.vm(vm).unwrap();
        assert_eq!(s.provisioning_state, "Succeeded", "{vm}");
        assert_eq!(s.power_state, "running", "{vm}");
    }

    // Nothing created twice: a resource is created again only after it was deleted (the
    // failed VM, replaced with -y).
    let all = lab.emu.log().entries();
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    let mut deleted: BTreeMap<String, usize> = BTreeMap::new();
    for e in &all {
        let p = e.path.to_ascii_lowercase();
        if e.method == "PUT" && e.status == 201 {
            *created.entry(p).or_default() += 1;
        } else if e.method == "DELETE" && (200..300).contains(&e.status) {
            *deleted.entry(p).or_default() += 1;
        }
    }
    for (path, n) in &created {
        let d = deleted.get(path).copied().unwrap_or(0);
        assert!(*n <= 1 + d, "{path} created {n} times, deleted {d} times");
    }
    let replaced: Vec<&String> = deleted.keys().collect();
    assert!(
        replaced.len() == 1 && replaced[0].ends_with("/virtualmachines/k0s-controller-2"),
        "only the failed VM was deleted (to be created again): {replaced:?}"
    );
    // Every Azure behaviour was met.
    let status_seen = |s: u16| all.iter().any(|e| e.status == s);
    assert!(!status_seen(411), "no write went without a length");
    assert!(status_seen(429), "throttled");
    assert!(
        all.iter()
            .any(|e| vm_of(e) == Some("k0s-controller-2") && e.status == 400),
        "the replaced VM's NIC was reserved at first"
    );

    let count = |pred: &dyn Fn(&LoggedRequest) -> bool| all.iter().filter(|e| pred(e)).count();
    eprintln!(
        "killed while {killed_vm}'s creation was pending; {} requests: {} expired polls (404), \
         {} NIC reservations (400), {} throttled (429), {} writes",
        all.len(),
        count(&|e| e.path.contains("/operations/") && e.status == 404),
        count(&|e| vm_of(e).is_some() && e.status == 400),
        count(&|e| e.status == 429),
        count(&|e| e.mutating),
    );

    // 4. A final rerun makes no mutating request.
    let mark = lab.emu.log().len();
    let (code, out) = lab.run(&["deploy", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}");
    let writes = lab.emu.log().mutating_since(mark);
    assert!(writes.is_empty(), "a no-op rerun wrote: {writes:#?}");
}
