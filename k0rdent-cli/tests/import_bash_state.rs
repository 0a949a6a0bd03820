//! `k0rdent import-bash-state DIR` on directories laid out exactly as the Bash tool writes them
//! (`tests/fixtures/bash-state/<scenario>/`), then the real `k0rdent` binary against the ARM
//! emulator seeded with what the Bash tool created — untagged resources in its tagged group,
//! named as `az vm create` names them: the next `plan` creates nothing that exists, and a
//! `deploy --until create_vms` writes nothing to Azure. Keys land in `keys/` (0600), never in
//! the state or the output; a second import is refused; a state directory holding the Bash
//! tool's state file makes `deploy` say to import it.
//!
//! Regenerate the fixtures with
//! `K0RDENT_WRITE_BASH_FIXTURES=1 cargo test -p k0rdent-cli --test import_bash_state -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bash_fixtures;
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use bash_fixtures::{COMPLETE, MIDWAY, Scenario};
use k0rdent_arm_emulator::Emulator;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bash-state")
}

#[test]
#[ignore = "writes the fixtures; run with K0RDENT_WRITE_BASH_FIXTURES=1"]
fn write_bash_state_fixtures() {
    if std::env::var_os("K0RDENT_WRITE_BASH_FIXTURES").is_none() {
        return;
    }
    for s in [&MIDWAY, &COMPLETE] {
        let dir = fixtures().join(s.name);
        let _ = std::fs::remove_dir_all(&dir);
        s.write(&dir);
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The committed fixtures are what the generator writes (same files; fresh keys aside).
#[test]
fn the_generator_writes_the_layout_the_fixtures_hold() {
    for s in [&MIDWAY, &COMPLETE] {
        let tmp = tempfile::tempdir().unwrap();
        s.write(&tmp.path().join("d"));
        assert_eq!(
            files(&tmp.path().join("d")),
            files(&fixtures().join(s.name)),
            "{}",
            s.name
        );
        let fresh = std::fs::read_to_string(
            tmp.path()
                .join("d/k0sctl-config")
                .join(format!("{}-k0sctl.yaml", s.cluster_id)),
        );
        let committed = std::fs::read_to_string(
            fixtures()
                .join(s.name)
                .join("k0sctl-config")
                .join(format!("{}-k0sctl.yaml", s.cluster_id)),
        );
        assert_eq!(fresh.ok(), committed.ok());
    }
}

struct Lab {
    emu: Emulator,
    tmp: tempfile::TempDir,
    scenario: &'static Scenario,
}

impl Lab {
    async fn start(scenario: &'static Scenario) -> Lab {
        let emu = Emulator::builder()
            .operation_duration(Duration::from_millis(20))
            .retry_after(Duration::from_millis(50))
            .start()
            .await
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        bash_fixtures::copy(&fixtures().join(scenario.name), &tmp.path().join("bash"));
        Lab { emu, tmp, scenario }
    }

    fn bash(&self) -> PathBuf {
        self.tmp.path().join("bash")
    }

    fn state(&self) -> PathBuf {
        self.tmp.path().join("k0rdent-state")
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o: Output = common::k0rdent(&self.emu, self.tmp.path())
            .env("K0RDENT_STATE_DIR", self.state())
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn import(&self) -> (i32, String, String) {
        let dir = self.bash();
        self.run(&["import-bash-state", dir.to_str().unwrap()])
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.bash().join(rel)).unwrap()
    }

    async fn seed_bash_resources(&self) {
        bash_fixtures::seed(&self.emu, self.scenario, &self.bash()).await;
    }

    fn writes_since(&self, mark: usize) -> Vec<String> {
        self.emu.log().entries()[mark..]
            .iter()
            .filter(|e| e.mutating)
            .map(|e| format!("{} {}", e.method, e.path))
            .collect()
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The private keys the Bash tool wrote (WireGuard keys in base64, the SSH key's body).
fn private_material(lab: &Lab) -> Vec<String> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(lab.bash().join("wireguard")).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with("_privkey") {
            v.push(std::fs::read_to_string(p).unwrap().trim().to_owned());
        }
    }
    let ssh = lab.read(&format!(
        "azure-resources/{}-ssh-key",
        lab.scenario.cluster_id
    ));
    // A line from the middle of the PEM body.
    v.push(ssh.lines().nth(5).unwrap().to_owned());
    v
}

fn plan_json(out: &str) -> Vec<(String, String, String)> {
    let line = out
        .lines()
        .find(|l| l.contains("\"result\":\"plan\""))
        .unwrap_or_else(|| panic!("no plan in {out}"));
    let v: Value = serde_json::from_str(line).unwrap();
    v["plan"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_owned(),
                e["decision"].as_str().unwrap().to_owned(),
                e["reason"]["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn imported_then_planned(
    scenario: &'static Scenario,
) -> (Lab, Vec<(String, String, String)>) {
    let lab = Lab::start(scenario).await;
    lab.seed_bash_resources().await;
    let (code, out, err) = lab.import();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("Imported {}", scenario.cluster_id)),
        "{out}"
    );
    let secrets = private_material(&lab);
    for s in &secrets {
        assert!(
            !out.contains(s.as_str()) && !err.contains(s.as_str()),
            "a key was printed"
        );
    }
    // Keys into keys/, 0600 in a 0700 directory; none in the state file.
    let keys = lab.state().join("keys");
    assert_eq!(mode(&keys), 0o700);
    let mut names: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = vec!["ssh-admin.key".to_owned(), "wireguard-hub.key".to_owned()];
    want.extend(
        scenario
            .hosts()
            .iter()
            .map(|(h, _)| format!("wireguard-{h}.key")),
    );
    want.sort();
    assert_eq!(names, want);
    for n in &names {
        assert_eq!(mode(&keys.join(n)), 0o600, "{n}");
    }
    assert_eq!(
        std::fs::read(keys.join("ssh-admin.key")).unwrap(),
        std::fs::read(
            lab.bash()
                .join(format!("azure-resources/{}-ssh-key", scenario.cluster_id))
        )
        .unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(keys.join("wireguard-hub.key"))
            .unwrap()
            .trim(),
        lab.read("wireguard/mylaptop_privkey").trim()
    );
    let state = std::fs::read_to_string(lab.state().join("deployment-state.yaml")).unwrap();
    for s in &secrets {
        assert!(
            !state.contains(s.as_str()),
            "a private key is in the state file"
        );
    }
    assert!(
        state.contains(&format!("wgk0{}", scenario.suffix())),
        "{state}"
    );
    assert!(
        state.contains(&format!("wireguard.port: {}", scenario.port)),
        "{state}"
    );
    assert!(
        state.contains("azure_nic_name: k0s-controller-1VMNic"),
        "{state}"
    );

    let mark = lab.emu.log().entries().len();
    let (code, out, err) = lab.run(&["plan", "-o", "json"]);
    assert!(code == 2 || code == 3, "{code}\n{out}\n{err}");
    assert!(
        lab.writes_since(mark).is_empty(),
        "plan wrote: {:?}",
        lab.writes_since(mark)
    );
    // The differences left as the Bash tool made them are a plan line, not a change.
    let (_, text, notes) = lab.run(&["plan"]);
    assert!(
        notes.contains("imported from k0rdent-azure-setup"),
        "{notes}"
    );
    assert!(notes.contains("TCP 22"), "{notes}");
    assert!(!text.contains("replace"), "{text}");
    (lab, plan_json(&out))
}

fn assert_azure_adopted(plan: &[(String, String, String)], scenario: &Scenario) {
    let azure: Vec<_> = plan
        .iter()
        .filter(|(s, _, _)| {
            s == "prepare_deployment" || s == "setup_network" || s.starts_with("create_vms/")
        })
        .collect();
    assert_eq!(azure.len(), 2 + scenario.hosts().len(), "{plan:?}");
    for (step, decision, reason) in azure {
        assert_eq!(
            (decision.as_str(), reason.as_str()),
            ("skip", "adopted"),
            "{step}: {plan:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn midway_import_adopts_the_network_and_vms_and_plans_the_tunnel_onwards() {
    let (lab, plan) = imported_then_planned(&MIDWAY).await;
    assert_azure_adopted(&plan, &MIDWAY);
    // setup_vpn was done by the Bash tool with its own hub file; ours is checked and the later
    // phases wait for it; nothing is skipped that was never done.
    for (step, decision, _) in &plan {
        if ["connect_vpn", "install_k0s", "install_k0rdent"].contains(&step.as_str()) {
            assert_ne!(decision, "skip", "{step}: {plan:?}");
        }
        assert_ne!(decision, "replace", "{step}: {plan:?}");
    }
    // The roles are the Bash tool's rule (a single controller is controller+worker), and
    // k0s was never installed, so our privateAddress may be used.
    let state = std::fs::read_to_string(lab.state().join("deployment-state.yaml")).unwrap();
    assert!(state.contains("k0s_role: controller+worker"), "{state}");
    assert!(!state.contains("k0s_no_private_address"), "{state}");

    // deploy up to create_vms writes nothing to Azure: nothing it made is rewritten.
    let mark = lab.emu.log().entries().len();
    let (code, out, err) = lab.run(&["deploy", "--until", "create_vms", "-y"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        lab.writes_since(mark).is_empty(),
        "deploy wrote: {:?}",
        lab.writes_since(mark)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_import_keeps_the_bash_roles_and_never_replaces_a_vm() {
    let (lab, plan) = imported_then_planned(&COMPLETE).await;
    assert_azure_adopted(&plan, &COMPLETE);
    assert!(plan.iter().all(|(_, d, _)| d != "replace"), "{plan:?}");
    let state = std::fs::read_to_string(lab.state().join("deployment-state.yaml")).unwrap();
    let v: Value = serde_yaml::from_str(&state).unwrap();
    let role = |n: &str| {
        v["nodes"][n]["attributes"]["k0s_role"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(role("k0s-controller-1"), "controller");
    assert_eq!(role("k0s-controller-2"), "controller+worker");
    assert_eq!(role("k0s-controller-3"), "controller+worker");
    assert_eq!(role("k0s-worker-2"), "worker");
    assert_eq!(
        v["nodes"]["k0s-worker-1"]["attributes"]["k0s_no_private_address"],
        Value::Bool(true)
    );
    assert_eq!(v["nodes"]["k0s-controller-2"]["tunnel_ip"], "172.24.24.12");

    // deploy up to create_vms writes nothing to Azure here either (5 VMs over 3 zones).
    let mark = lab.emu.log().entries().len();
    let (code, out, err) = lab.run(&["deploy", "--until", "create_vms", "-y"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        lab.writes_since(mark).is_empty(),
        "deploy wrote: {:?}",
        lab.writes_since(mark)
    );

    // A second import is refused, and changes nothing.
    let before = std::fs::read(lab.state().join("deployment-state.yaml")).unwrap();
    let (code, out, err) = lab.import();
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("already holds a deployment"), "{err}");
    assert_eq!(
        std::fs::read(lab.state().join("deployment-state.yaml")).unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bash_state_in_the_state_directory_is_pointed_at_import() {
    let lab = Lab::start(&MIDWAY).await;
    // The Bash tool's own state/ used as k0rdent's state directory (both default to ./state).
    let bash_state = lab.bash().join("state");
    for cmd in [&["deploy", "-y"][..], &["plan"], &["status"]] {
        let o = common::k0rdent(&lab.emu, lab.tmp.path())
            .env("K0RDENT_STATE_DIR", &bash_state)
            .env("K0RDENT_CONFIG", lab.bash().join("config/k0rdent.yaml"))
            .args(cmd)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {err}");
        assert!(err.contains("is the Bash tool's state"), "{err}");
        assert!(err.contains("k0rdent import-bash-state"), "{err}");
    }
    // Nothing was migrated or moved: the Bash tool's file and keys are as they were.
    let text = lab.read("state/deployment-state.yaml");
    assert!(text.contains("private_key:"), "{text}");
    assert!(!bash_state.join("keys").exists());
    // Importing into it is refused too.
    let o = common::k0rdent(&lab.emu, lab.tmp.path())
        .env("K0RDENT_STATE_DIR", &bash_state)
        .arg("import-bash-state")
        .arg(lab.bash())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!bash_state.join("keys").exists());
}
