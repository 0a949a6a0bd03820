//! `k0rdent state migrate` between two directories with the real binary and the real
//! pipeline against the ARM emulator (#12): a deployment done up to `create_vms` moves to
//! another directory (its keys and known_hosts copied there), a bare `plan` follows the
//! pointer left in `./state`, both plan as nothing to do without a single ARM write; and
//! back again. (Moves to Azure Blob Storage are in `tests/tests/state_migrate_cli.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;

const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");

fn k0rdent(emu: &Emulator, dir: &Path, args: &[&str]) -> (i32, String) {
    let o = common::k0rdent(emu, dir)
        .current_dir(dir)
        .env("K0RDENT_CONFIG", dir.join("k0rdent.yaml"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_moved_to_another_directory_and_back_plans_as_nothing_to_do() {
    let t = Instant::now();
    let emu = Emulator::builder()
        .latency(Duration::from_millis(5))
        .operation_duration(Duration::from_millis(200))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("k0rdent.yaml"), CONFIG).unwrap();
    let run = |args: &[&str]| k0rdent(&emu, dir, args);
    let plan = ["plan", "--until", "create_vms"];

    let (code, out) = run(&["deploy", "-y", "--until", "create_vms"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(run(&plan).0, 0);
    let keys = names(&dir.join("state/keys"));
    assert!(!keys.is_empty());

    let mark = emu.log().len();
    let (code, out) = run(&["state", "migrate", "--to", "moved"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Copied and read back"), "{out}");
    assert_eq!(names(&dir.join("moved/keys")), keys, "the keys came along");
    for name in &keys {
        assert_eq!(
            std::fs::read(dir.join("moved/keys").join(name)).unwrap(),
            std::fs::read(dir.join("state/keys").join(name)).unwrap()
        );
    }
    let (code, out) = run(&["plan", "--until", "create_vms", "-v"]);
    assert_eq!(code, 0, "a bare plan follows ./state's pointer:\n{out}");
    assert!(out.contains("following it"), "{out}");
    let (code, out) = run(&["plan", "--until", "create_vms", "--state-dir", "moved"]);
    assert_eq!(code, 0, "{out}");

    let (code, out) = run(&["state", "migrate", "--state-dir", "moved", "--to", "state"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&plan);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["plan", "--until", "create_vms", "--state-dir", "moved"]);
    assert_eq!(code, 0, "moved/ points back to ./state:\n{out}");
    assert!(
        emu.log().mutating_since(mark).is_empty(),
        "moving the state changed nothing in Azure"
    );
    eprintln!("moved and back: {:?}", t.elapsed());
}
