//! The configuration a deployment was deployed with is recorded by absolute path, so later
//! commands find it from any directory without `--config`; when it has moved or changed since,
//! they say which and what to do. The real binary against the ARM emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use k0rdent_arm_emulator::Emulator;

const CONFIG: &str = "azure:
  location: westeurope
  vm_image: Debian:debian-12:12-gen2:latest
network:
  wireguard_network: 172.24.26.0/24
vm_sizing:
  controller:
    size: Standard_B2s
  worker:
    size: Standard_B2s
cluster:
  controllers:
    count: 1
  workers:
    count: 1
";

fn k0rdent(emu: &Emulator, cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let o = common::k0rdent(emu, cwd)
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn recorded_path(state: &Path) -> String {
    let text = std::fs::read_to_string(state.join("deployment-state.yaml")).unwrap();
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    v["config"]["path"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_configuration_is_found_from_anywhere_and_a_move_or_change_is_named() {
    let emu = Emulator::builder()
        .latency(Duration::from_millis(1))
        .operation_duration(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = work.path().join("k0rdent.yaml");
    std::fs::write(&config, CONFIG).unwrap();
    let state = work.path().join("state");

    // Deployed with relative paths, as the lab and most users do.
    let (code, out, err) = k0rdent(
        &emu,
        work.path(),
        &[
            "deploy",
            "--config",
            "k0rdent.yaml",
            "--state-dir",
            "state",
            "-y",
            "--until",
            "create_vms",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(recorded_path(&state), config.display().to_string());

    // From another directory, without --config: the infrastructure is in sync (exit 2 only
    // for the VPN and install phases still to run), and nothing is said about the
    // configuration.
    let abs_state = state.display().to_string();
    let status = |cwd: &Path, extra: &[&str]| {
        let mut args = vec!["status", "--state-dir", abs_state.as_str()];
        args.extend_from_slice(extra);
        k0rdent(&emu, cwd, &args)
    };
    let (code, in_sync, err) = status(elsewhere.path(), &[]);
    assert_eq!(code, 2, "{in_sync}{err}");
    assert!(!err.contains("error:") && !err.contains("note:"), "{err}");
    let out = in_sync.clone();
    assert!(out.contains("create_vms/k0s-worker-1"), "{out}");

    // Changed: said so, with the setting and what plan shows.
    std::fs::write(
        &config,
        CONFIG.replace(
            "  worker:\n    size: Standard_B2s",
            "  worker:\n    size: Standard_D2s_v5",
        ),
    )
    .unwrap();
    let (code, out, err) = status(elsewhere.path(), &[]);
    assert_eq!(code, 2, "the change is pending: {out}{err}");
    assert!(
        err.contains(&format!(
            "note: the configuration {} changed since the last deploy (1 setting); `k0rdent plan` shows",
            config.display()
        )) && err.contains("note:   workers.size: \"Standard_B2s\" -> \"Standard_D2s_v5\""),
        "{err}"
    );
    // Comments only: said so too, and nothing is pending.
    std::fs::write(&config, format!("# reviewed\n{CONFIG}")).unwrap();
    let (code, out, err) = status(elsewhere.path(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("but no setting differs"), "{err}");
    assert_eq!(out, in_sync, "a comment changes nothing that status shows");

    // Moved: named, with the remedy, and nothing else is attempted.
    let moved = work.path().join("renamed.yaml");
    std::fs::rename(&config, &moved).unwrap();
    let (code, out, err) = status(elsewhere.path(), &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        err.lines().next().unwrap(),
        format!(
            "error: the configuration this deployment was last deployed with, {}, is no longer there (moved or deleted)",
            config.display()
        )
    );
    assert!(
        err.lines()
            .nth(1)
            .unwrap()
            .starts_with("hint: pass --config NEW_PATH"),
        "{err}"
    );
    // The remedy works, with a relative path from yet another directory.
    let (code, out, err) = status(work.path(), &["--config", "renamed.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        out, in_sync,
        "the same deployment, found through the new path"
    );
    assert!(
        err.contains(&format!(
            "note: using the configuration {}; the last deploy used {}",
            moved.display(),
            config.display()
        )),
        "{err}"
    );
}
