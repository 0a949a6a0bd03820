//! `k0rdent deploy --until create_vms` end to end: the real binary against the ARM emulator
//! with throttling on, killed (SIGKILL) at moments chosen from the emulator's request log —
//! including while a VM's long-running operation is pending — and rerun. Nothing may be
//! created twice, nothing may be left over, a final rerun makes no write, and a VM deleted
//! behind our back is reported by `status` (exit 2) and is the only thing the next deploy
//! recreates. A second test checks that no secret reaches any output or the state directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use k0rdent_arm_emulator::{Emulator, LoggedRequest};

const VM: &str = "Microsoft.Compute/virtualMachines";

const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");

struct Lab {
    emu: Emulator,
    dir: tempfile::TempDir,
}

impl Lab {
    async fn start() -> Lab {
        let emu = Emulator::builder()
            .latency(Duration::from_millis(5))
            .operation_duration(Duration::from_millis(800))
            .retry_after(Duration::from_millis(100))
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k0rdent.yaml"), CONFIG).unwrap();
        Lab { emu, dir }
    }

    fn state(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    fn k0rdent(&self, args: &[&str]) -> Command {
        let mut c = common::k0rdent(&self.emu, self.dir.path());
        c.env("K0RDENT_CONFIG", self.dir.path().join("k0rdent.yaml"))
            .env("K0RDENT_STATE_DIR", self.state())
            .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o: Output = self.k0rdent(args).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

fn kill(mut child: Child) -> Option<i32> {
    match child.try_wait().unwrap() {
        Some(status) => status.code(),
        None => {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            None
        }
    }
}

fn is_vm_put(e: &LoggedRequest) -> bool {
    e.method == "PUT" && e.resource_type.as_deref() == Some(VM)
}

fn accepted_write(e: &LoggedRequest) -> bool {
    e.mutating && (200..300).contains(&e.status)
}

/// A moment to kill a run at, chosen from the request log.
#[derive(Debug)]
enum Moment {
    /// Right after the n-th accepted write since the emulator started.
    Write(usize),
    /// As soon as a VM's PUT is accepted in this run: its operation is still pending.
    VmPending,
    /// While the run observes (after its n-th request, before it writes).
    Observing(usize),
}

impl Moment {
    fn reached(&self, all: &[LoggedRequest], mark: usize) -> bool {
        match self {
            Moment::Write(n) => all.iter().filter(|e| accepted_write(e)).count() >= *n,
            Moment::VmPending => all[mark.min(all.len())..]
                .iter()
                .any(|e| is_vm_put(e) && (e.status == 201 || e.status == 200)),
            Moment::Observing(n) => all.len().saturating_sub(mark) >= *n,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_until_create_vms_survives_sigkills_at_logged_moments() {
    let lab = Lab::start().await;
    lab.emu.faults().throttle_every(3);
    let mut kills = Vec::new();
    for round in 0..40 {
        let all = lab.emu.log().entries();
        let mark = all.len();
        let writes = all.iter().filter(|e| accepted_write(e)).count();
        let what = match round % 5 {
            1 | 3 => Moment::Observing(2 + round % 7),
            4 => Moment::VmPending,
            _ => Moment::Write(writes + 1),
        };
        let mut child = lab
            .k0rdent(&["deploy", "-y", "--until", "create_vms"])
            .spawn()
            .unwrap();
        // Until the moment comes or the run ends on its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut hit = false;
        while std::time::Instant::now() < deadline {
            if what.reached(&lab.emu.log().entries(), mark) {
                hit = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        match kill(child) {
            None => kills.push(format!(
                "round {round}: killed at {what:?} (request #{})",
                lab.emu.log().len()
            )),
            Some(code) => {
                // It finished before the moment came: everything already exists.
                assert_eq!(code, 0, "round {round} ended on its own with {code}");
                assert!(!hit || round > 0);
                break;
            }
        }
    }
    assert!(kills.len() >= 10, "only {} kills: {kills:#?}", kills.len());
    let count = |kind: &str| kills.iter().filter(|k| k.contains(kind)).count();
    assert!(count("VmPending") >= 2, "{kills:#?}");
    assert!(count("Write") >= 4, "{kills:#?}");
    eprintln!("{} kills:\n{}", kills.len(), kills.join("\n"));

    // Run to completion.
    let (code, out, err) = lab.run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Deployment converged."), "{out}");

    // Nothing created twice: every resource got at most one 201 (created).
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for e in lab.emu.log().entries() {
        if e.method == "PUT" && e.status == 201 {
            *created.entry(e.path.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "created twice: {twice:#?}\nkills: {kills:#?}"
    );

    // No orphan and nothing missing: exactly the expected resources exist.
    let vms = [
        "k0s-controller-1",
        "k0s-controller-2",
        "k0s-controller-3",
        "k0s-worker-1",
        "k0s-worker-2",
    ];
    let mut names = lab.emu.resource_names(VM);
    names.sort();
    assert_eq!(names, vms);
    assert_eq!(
        lab.emu
            .resource_names("Microsoft.Network/networkInterfaces")
            .len(),
        5
    );
    assert_eq!(
        lab.emu
            .resource_names("Microsoft.Network/publicIPAddresses")
            .len(),
        5
    );
    assert_eq!(lab.emu.resource_names("Microsoft.Compute/disks").len(), 5);
    for vm in vms {
        let state = lab.emu.vm(vm).unwrap();
        assert_eq!(state.provisioning_state, "Succeeded", "{vm}");
    }

    // A final rerun makes no write and plans every real step `skip` (no step reruns because
    // it reads records it wrote itself).
    let mark = lab.emu.log().len();
    let (code, out, err) = lab.run(&["-o", "json", "deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{err}");
    let writes = lab.emu.log().mutating_since(mark);
    assert!(writes.is_empty(), "a no-op rerun wrote: {writes:#?}");
    let result: serde_json::Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["result"] == "deploy")
        .expect("a deploy result line");
    assert_eq!(result["steps"], serde_json::json!([]), "{result}");
    let in_scope: Vec<&serde_json::Value> = result["initial_plan"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let step = e["step"].as_str().unwrap();
            step == "prepare_deployment"
                || step == "setup_network"
                || step.starts_with("create_vms/")
        })
        .collect();
    assert_eq!(in_scope.len(), 7);
    for e in in_scope {
        assert_eq!(e["decision"], "skip", "{e}");
    }

    // Judged up to create_vms, plan and status find nothing to do (exit 0) and show only
    // those phases; unbounded, the later phases are still to do. A misspelt phase is a usage
    // error.
    for command in ["plan", "status"] {
        let (code, out, err) = lab.run(&[command, "--until", "create_vms"]);
        assert_eq!(code, 0, "{command} --until create_vms:\n{out}\n{err}");
        let judged = match command {
            "plan" => "all 7 steps are up to date",
            _ => "create_vms/k0s-worker-1",
        };
        assert!(out.contains(judged), "{out}");
        assert!(
            !out.contains("setup_vpn"),
            "{command} --until shows later phases:\n{out}"
        );
        let (code, out, _) = lab.run(&[command]);
        assert_ne!(code, 0, "{command}:\n{out}");
        assert!(out.contains("setup_vpn"), "{out}");
    }
    let (code, _, err) = lab.run(&["plan", "--until", "create_vm"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("did you mean `--until create_vms`?"), "{err}");

    // A VM deleted behind our back: status names it (exit 2), deploy recreates only it.
    assert!(lab.emu.delete_resource(VM, "k0s-worker-2"));
    let (code, out, _) = lab.run(&["status"]);
    assert_eq!(code, 2, "{out}");
    let drift: Vec<&str> = out.lines().filter(|l| l.contains("DRIFT")).collect();
    assert_eq!(drift.len(), 1, "{out}");
    assert!(drift[0].starts_with("create_vms/k0s-worker-2"), "{out}");
    let mark = lab.emu.log().len();
    let (code, _, err) = lab.run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{err}");
    let writes = lab.emu.log().mutating_since(mark);
    assert!(!writes.is_empty());
    for w in &writes {
        assert!(
            w.path.to_ascii_lowercase().contains("k0s-worker-2"),
            "wrote something else: {w:?}"
        );
    }
    assert!(lab.emu.vm("k0s-worker-2").is_some());

    // A changed configuration is reported against the recorded one and planned in place.
    let cfg = lab.dir.path().join("k0rdent.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace(
            "  worker:\n    size: Standard_B2s",
            "  worker:\n    size: Standard_D2s_v5",
        ),
    )
    .unwrap();
    let (code, out, err) = lab.run(&["plan"]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "note: the configuration {} changed since the last deploy (1 setting); `k0rdent plan` shows",
            cfg.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("note:   workers.size: \"Standard_B2s\" -> \"Standard_D2s_v5\""),
        "{err}"
    );
    let reruns: Vec<&str> = out.lines().filter(|l| l.contains(" rerun ")).collect();
    assert_eq!(
        reruns.len(),
        2,
        "the two workers change size in place: {out}"
    );
}

/// Issue #7, must show 2, through the binary: a VM whose creation failed, then a change of an
/// immutable property of that VM in the configuration (its zone: the custom data is derived
/// from the WireGuard plan, not configured; the library test `replace_confirmation` changes
/// the custom data itself). Without -y: zero DELETE requests, exit 3 naming the confirmation;
/// with -y: exactly that one VM is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_vm_with_a_changed_immutable_property_is_replaced_only_with_yes() {
    let lab = Lab::start().await;
    lab.emu.faults().fail_provisioning("k0s-worker-1", 1);
    let deletes = |mark: usize| -> Vec<String> {
        lab.emu
            .log()
            .mutating_since(mark)
            .into_iter()
            .filter(|e| e.method == "DELETE")
            .map(|e| e.path)
            .collect()
    };
    let (code, out, err) = lab.run(&["deploy", "--until", "create_vms"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(deletes(0).is_empty(), "{:#?}", deletes(0));
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Failed"
    );

    let cfg = lab.dir.path().join("k0rdent.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("    count: 2\n    zones: [1, 2]"));
    std::fs::write(
        &cfg,
        text.replace(
            "    count: 2\n    zones: [1, 2]",
            "    count: 2\n    zones: [3, 2]",
        ),
    )
    .unwrap();
    let (code, out, err) = lab.run(&["plan"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let replaces: Vec<&str> = out.lines().filter(|l| l.contains(" replace ")).collect();
    assert_eq!(replaces.len(), 1, "{out}");
    assert!(replaces[0].contains("create_vms/k0s-worker-1"), "{out}");

    let mark = lab.emu.log().len();
    let (code, out, err) = lab.run(&["deploy", "--until", "create_vms"]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(deletes(mark).is_empty(), "{:#?}", deletes(mark));
    assert!(
        out.contains("k0s-worker-1") && out.contains("needs confirmation (-y)"),
        "{out}"
    );
    assert!(
        out.contains("hint: review the plan (`k0rdent plan`) and run again with -y"),
        "{out}"
    );

    let old_id = lab.emu.vm("k0s-worker-1").unwrap().vm_id;
    let mark = lab.emu.log().len();
    let (code, out, err) = lab.run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let gone = deletes(mark);
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert!(
        gone[0].ends_with("/virtualMachines/k0s-worker-1"),
        "{gone:#?}"
    );
    let vm_puts: Vec<String> = lab
        .emu
        .log()
        .mutating_since(mark)
        .into_iter()
        .filter(is_vm_put)
        .map(|e| e.path)
        .collect();
    assert_eq!(vm_puts.len(), 1, "{vm_puts:#?}");
    assert!(vm_puts[0].ends_with("/k0s-worker-1"), "{vm_puts:#?}");
    let vm = lab.emu.vm("k0s-worker-1").unwrap();
    assert_eq!(vm.provisioning_state, "Succeeded");
    assert_ne!(vm.vm_id, old_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_until_deploy_sets_up_the_vpn_and_blocks_on_a_missing_wg_quick() {
    let lab = Lab::start().await;
    let (code, out, err) = lab.run(&["plan"]);
    assert_eq!(code, 2, "fresh: pending changes come first\n{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("run") && l.contains("setup_vpn")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("install_k0s"))
            && out.lines().any(|l| l.contains("install_k0rdent")),
        "{out}"
    );
    // A wg-quick that refuses (so no interface is ever brought up on the test machine) and
    // says how it was called: setup_vpn writes the hub file, then connect_vpn runs
    // `wg-quick up <hub file>` and blocks with its message.
    let bin = tempfile::tempdir().unwrap();
    let calls = bin.path().join("calls");
    let script = bin.path().join("wg-quick");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\necho 'wg-quick: Unable to access interface: Protocol not supported' >&2\nexit 1\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = lab
        .k0rdent(&["deploy", "-y"])
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.contains("connect_vpn") && out.contains("Protocol not supported"),
        "{out}\n{err}"
    );
    // The infrastructure part converged, and setup_vpn wrote the hub file, 0600.
    assert_eq!(lab.emu.resource_names(VM).len(), 5);
    let keys = lab.state().join("keys");
    let hub: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    assert_eq!(hub.len(), 1, "{hub:?}");
    let mode = std::fs::metadata(&hub[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&hub[0]).unwrap();
    assert_eq!(text.matches("[Peer]").count(), 5, "{text}");
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(calls.trim(), format!("up {}", hub[0].display()), "{calls}");
}

/// Every way a secret could be spelled in output: raw, base64 (at each alignment), URL-encoded.
fn spellings(secret: &[u8]) -> Vec<String> {
    use std::fmt::Write as _;
    let mut v = vec![String::from_utf8_lossy(secret).into_owned()];
    for skip in 0..3 {
        if secret.len() > skip + 12 {
            let b64 = base64_encode(&secret[skip..]);
            // Drop the characters that depend on the neighbours.
            v.push(b64[2..b64.len().saturating_sub(4)].to_owned());
        }
    }
    let mut url = String::new();
    for b in secret {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(b) {
            url.push(char::from(*b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    v.push(url);
    v.into_iter().filter(|s| s.len() >= 12).collect()
}

fn base64_encode(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            }
        }
    }
    out
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_output_logs_or_the_state_file() {
    let lab = Lab::start().await;
    let mut outputs = String::new();
    for args in [
        &["-vv", "deploy", "-y", "--until", "create_vms"][..],
        &["-vv", "-o", "json", "status"],
        &["-o", "json", "state", "show"],
        &["state", "history"],
    ] {
        let (_, out, err) = lab.run(args);
        outputs.push_str(&out);
        outputs.push_str(&err);
    }
    assert!(
        outputs.contains("DEBUG") || outputs.contains("debug"),
        "debug logging was on"
    );
    let mut secrets: Vec<(String, Vec<u8>)> = vec![(
        "client secret".into(),
        lab.emu.client_secret().expose().as_bytes().to_vec(),
    )];
    for (i, t) in lab.emu.issued_tokens().iter().enumerate() {
        secrets.push((format!("token {i}"), t.expose().as_bytes().to_vec()));
    }
    assert!(secrets.len() >= 2, "a token was issued");
    let keys = lab.state().join("keys");
    let mut key_files = Vec::new();
    files_under(&keys, &mut key_files);
    assert!(key_files.len() >= 7, "ssh + hub + 5 nodes: {key_files:?}");
    for k in &key_files {
        let bytes = std::fs::read(k).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        // The base64 body of each key (each line of an OpenSSH key, the whole WireGuard key).
        for line in text
            .lines()
            .filter(|l| l.len() >= 20 && !l.starts_with("-----"))
        {
            secrets.push((
                format!("{} line", k.display()),
                line.trim().as_bytes().to_vec(),
            ));
        }
    }
    let mut state_files = Vec::new();
    files_under(&lab.state(), &mut state_files);
    let mut haystacks = vec![("output".to_owned(), outputs)];
    for f in state_files.iter().filter(|f| !f.starts_with(&keys)) {
        haystacks.push((
            f.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned(),
        ));
    }
    for (what, secret) in &secrets {
        for s in spellings(secret) {
            for (where_, hay) in &haystacks {
                assert!(!hay.contains(&s), "{what} appears in {where_}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_deletes_our_resource_group_and_archives_the_state() {
    let lab = Lab::start().await;
    let (code, _, err) = lab.run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{err}");
    let rg = {
        let state = std::fs::read_to_string(lab.state().join("deployment-state.yaml")).unwrap();
        let id = state
            .lines()
            .find_map(|l| l.strip_prefix("cluster_id: "))
            .unwrap()
            .trim()
            .to_owned();
        format!("{id}-resgrp")
    };
    assert!(lab.emu.group_exists(&rg), "{rg}");
    // Without -y and without a terminal, reset refuses and changes nothing.
    let (code, _, err) = lab.run(&["reset"]);
    assert_eq!(code, 1, "{err}");
    assert!(lab.emu.group_exists(&rg));
    let mark = lab.emu.log().len();
    let (code, out, err) = lab.run(&["reset", "-y"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("archived to"), "{out}");
    assert!(!lab.emu.group_exists(&rg));
    let deletes: Vec<_> = lab
        .emu
        .log()
        .mutating_since(mark)
        .into_iter()
        .filter(|e| e.method == "DELETE")
        .collect();
    assert_eq!(
        deletes.len(),
        1,
        "one tag-checked group deletion: {deletes:#?}"
    );
    assert!(!lab.state().join("deployment-state.yaml").exists());
    assert!(
        !lab.state().join("keys").exists(),
        "keys of deleted VMs are not kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_count_plans_the_removal_and_refuses_only_leaving_no_workload_node() {
    let lab = Lab::start().await;
    let (code, out, err) = lab.run(&["deploy", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let cfg = lab.dir.path().join("k0rdent.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let workers = |n: u32| {
        text.replace(
            "    count: 2\n    zones: [1, 2]",
            &format!("    count: {n}\n    zones: [1, 2]"),
        )
    };

    // No worker left: the controllers run no kubelet, and roles never change.
    std::fs::write(&cfg, workers(0)).unwrap();
    let mark = lab.emu.log().len();
    for args in [&["plan"][..], &["deploy", "-y"]] {
        let (code, out, err) = lab.run(args);
        assert_eq!(code, 1, "{args:?}: {out}\n{err}");
        assert!(
            err.contains("removing k0s-worker-1, k0s-worker-2")
                && err.contains("would leave no node that runs workloads"),
            "{err}"
        );
        assert!(err.contains("cluster.workers.count"), "{err}");
    }
    assert!(lab.emu.log().mutating_since(mark).is_empty());

    // One worker fewer: planned (k0sctl resets it, then remove_nodes deletes its VM), each
    // needing confirmation; a deploy that stops before the later phases deletes nothing.
    std::fs::write(&cfg, workers(1)).unwrap();
    let (code, out, err) = lab.run(&["plan"]);
    assert_eq!(code, 2, "{out}\n{err}");
    let removal: Vec<&str> = out.lines().filter(|l| l.contains("remove_nodes")).collect();
    assert_eq!(removal.len(), 1, "{out}");
    assert!(
        removal[0].contains("k0s-worker-2 no longer in the configuration")
            && removal[0].contains("needs confirmation"),
        "{out}"
    );
    let mark = lab.emu.log().len();
    let (code, out, err) = lab.run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(lab.emu.log().mutating_since(mark).is_empty());
    assert!(lab.emu.vm("k0s-worker-2").is_some());
}

/// `plan` runs the read-only preflight checks even on a fresh deployment, where every Azure
/// step waits for `prepare_deployment`: an unknown VM size blocks the plan (exit 3) with the
/// size named and a remedy, and nothing is written to Azure or the state directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_of_a_fresh_deployment_shows_an_unknown_vm_size() {
    let lab = Lab::start().await;
    let cfg = lab.dir.path().join("k0rdent.yaml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let bad = text.replacen("size: Standard_B2s", "size: Standard_Nope9", 1);
    assert_ne!(bad, text);
    std::fs::write(&cfg, bad).unwrap();
    let (code, out, err) = lab.run(&["plan"]);
    assert_eq!(code, 3, "{out}\n{err}");
    let blocked: Vec<&str> = out.lines().filter(|l| l.contains(" blocked ")).collect();
    assert!(
        blocked.iter().any(|l| l.starts_with("setup_network")),
        "{out}"
    );
    assert!(
        out.contains("VM size Standard_Nope9 does not exist in westeurope"),
        "{out}"
    );
    assert!(out.contains("hint: "), "a remedy: {out}");
    assert!(
        lab.emu.log().mutating_since(0).is_empty(),
        "plan wrote to Azure"
    );
    assert!(!lab.state().join("deployment-state.yaml").exists());
    // With the size fixed the same plan has only pending changes.
    std::fs::write(&cfg, text).unwrap();
    let (code, out, err) = lab.run(&["plan"]);
    assert_eq!(code, 2, "{out}\n{err}");
}
