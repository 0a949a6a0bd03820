//! The `k0rdent` binary as a user meets it: help, usage errors, exit codes, and the state
//! commands against a real state directory. Output is snapshotted (exit code, stdout,
//! stderr) with filters for what varies between runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn k0rdent(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_k0rdent"));
    c.env("K0RDENT_STATE_DIR", state)
        .env_remove("RUST_LOG")
        .env_remove("K0RDENT_CONFIG");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

macro_rules! k0rdent_snapshot {
    ($name:expr, $dir:expr, $cmd:expr) => {{
        let (code, out, err) = run($cmd);
        let dir = $dir.display().to_string();
        insta::with_settings!({filters => vec![
            (dir.as_str(), "[STATE_DIR]"),
            (r"\d{8}T\d{6}Z-[0-9a-f]{8}", "[RUN_ID]"),
            (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?Z?( UTC)?", "[TIME]"),
            (r"pid \d+", "pid [PID]"),
            (r"on [A-Za-z0-9._-]+ \(", "on [HOST] ("),
        ]}, {
            insta::assert_snapshot!($name, format!("exit: {code}\n--- stdout\n{out}--- stderr\n{err}"));
        });
        (code, out, err)
    }};
}

#[test]
fn help_lists_every_command_and_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = k0rdent_snapshot!("help", dir.path(), k0rdent(dir.path()).arg("--help"));
    assert_eq!(code, 0);
    for cmd in [
        "deploy",
        "plan",
        "status",
        "refresh",
        "reset",
        "vpn",
        "state",
        "kubeconfig",
        "ssh",
        "render",
    ] {
        assert!(out.contains(cmd), "{cmd} missing from help");
    }
}

/// Every command's and subcommand's `--help`, walked from the clap definition itself (so a
/// new command gets a snapshot, or fails here for want of one), each with a paragraph and
/// examples.
#[test]
fn every_command_has_help_with_a_paragraph_and_examples() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" || sub.is_hide_set() {
                continue;
            }
            let mut p = path.clone();
            p.push(sub.get_name().to_owned());
            out.push(p.clone());
            walk(sub, p, out);
        }
    }
    let mut paths = Vec::new();
    walk(&k0rdent_cli::args::Cli::command(), Vec::new(), &mut paths);
    assert!(paths.len() >= 18, "{paths:?}");
    let dir = tempfile::tempdir().unwrap();
    for path in &paths {
        let name = format!("help_{}", path.join("_").replace('-', "_"));
        let (code, out, err) = k0rdent_snapshot!(
            name.as_str(),
            dir.path(),
            k0rdent(dir.path()).args(path).arg("--help")
        );
        assert_eq!(code, 0, "{path:?}: {err}");
        assert!(out.contains("Usage: k0rdent"), "{path:?}: {out}");
        // A top-level command explains itself beyond its one line, and shows how it is used.
        if path.len() == 1 {
            let paragraphs = out.split("\n\n").count();
            assert!(paragraphs >= 4, "{path:?} has no paragraph: {out}");
            assert!(out.contains("Example"), "{path:?} has no example: {out}");
        }
    }
    // Only --output, -v and --color are global; --config, --state-dir and -y belong to the
    // commands that use them.
    let (_, top, _) = run(k0rdent(dir.path()).arg("--help"));
    let top = top.split("Options:").nth(1).unwrap();
    let top = top.split("Examples:").next().unwrap();
    for flag in ["--config", "--state-dir", "--yes"] {
        assert!(!top.contains(flag), "{flag} is global: {top}");
    }
    for flag in ["--output", "--verbose", "--color"] {
        assert!(top.contains(flag), "{flag} missing: {top}");
    }
    let (_, deploy, _) = run(k0rdent(dir.path()).args(["deploy", "--help"]));
    for flag in [
        "--config",
        "--state-dir",
        "--yes",
        "--until <PHASE>",
        "install_k0rdent",
    ] {
        assert!(deploy.contains(flag), "{flag} missing: {deploy}");
    }
    let (_, kubeconfig, _) = run(k0rdent(dir.path()).args(["kubeconfig", "--help"]));
    assert!(!kubeconfig.contains("--config") && !kubeconfig.contains("--yes"));
    // A parent's --state-dir is taken after its subcommand too.
    let (code, out, err) = run(k0rdent(dir.path())
        .args(["state", "show", "--state-dir"])
        .arg(dir.path().join("elsewhere")));
    assert_eq!(code, 0, "{out}{err}");
    // The flags are where the help says: before the command they are refused.
    let (code, _, err) = run(k0rdent(dir.path()).args(["-y", "deploy"]));
    assert_eq!(code, 1, "{err}");
}

#[test]
fn usage_errors_exit_1_not_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) =
        k0rdent_snapshot!("usage_error", dir.path(), k0rdent(dir.path()).arg("deploi"));
    assert_eq!(code, 1);
    assert!(err.contains("unrecognized subcommand"));
    let (code, _, _) = run(k0rdent(dir.path()).args(["--output", "xml", "plan"]));
    assert_eq!(code, 1);
}

#[test]
fn deployment_commands_without_a_configuration_say_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    k0rdent_snapshot!(
        "deploy_without_config",
        dir.path(),
        k0rdent(dir.path()).arg("deploy")
    );
    for args in [
        &["deploy"][..],
        &["plan"],
        &["status"],
        &["refresh"],
        &["reset", "-y"],
    ] {
        let (code, _, err) = run(k0rdent(dir.path()).args(args));
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.contains("no configuration") && err.contains("--config"),
            "{args:?}: {err}"
        );
    }
    for args in [&["vpn", "status"][..], &["vpn", "up"]] {
        let (code, _, err) = run(k0rdent(dir.path()).args(args));
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains("no deployment"), "{args:?}: {err}");
    }
    assert!(
        !dir.path().join("deployment-state.yaml").exists(),
        "nothing was written"
    );
}

#[test]
fn json_output_reports_errors_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(k0rdent(dir.path()).args(["-o", "json", "plan"]));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert!(v["error"].as_str().unwrap().contains("no configuration"));
}

fn write_state(dir: &Path) {
    use k0rdent_core::{
        FileStore, StepId,
        state::{DeploymentState, Status},
    };
    let store = FileStore::new(dir);
    let mut s = DeploymentState {
        cluster_id: Some("k0rdent-cli-test".into()),
        ..DeploymentState::default()
    };
    s.record_mut(&StepId::parse("prepare_deployment").unwrap())
        .status = Status::Completed;
    store.save_sync(&mut s).unwrap();
}

#[test]
fn state_show_prints_the_recorded_state() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = k0rdent_snapshot!(
        "state_show_empty",
        dir.path(),
        k0rdent(dir.path()).args(["state", "show"])
    );
    assert_eq!(code, 0);
    assert!(out.contains("No deployment state"));
    write_state(dir.path());
    let (code, out, _) = run(k0rdent(dir.path()).args(["state", "show"]));
    assert_eq!(code, 0);
    assert!(out.contains("cluster_id: k0rdent-cli-test"), "{out}");
    let (code, out, _) = run(k0rdent(dir.path()).args(["-o", "json", "state", "show"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["state"]["phases"]["prepare_deployment"]["status"],
        "completed"
    );
    assert_eq!(v["locked_by"], serde_json::Value::Null);
}

#[test]
fn state_show_on_a_corrupt_file_names_it_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deployment-state.yaml"),
        "schema_version: 1\ngeneration: [\n",
    )
    .unwrap();
    let (code, _, err) = k0rdent_snapshot!(
        "state_show_corrupt",
        dir.path(),
        k0rdent(dir.path()).args(["state", "show"])
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("deployment-state.yaml") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn state_history_reads_the_event_log_and_tolerates_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(k0rdent(dir.path()).args(["state", "history"]));
    assert_eq!(code, 0);
    assert!(out.contains("No events recorded."));
    std::fs::write(
        dir.path().join("deployment-events.jsonl"),
        "{\"at\":\"2026-11-28T10:00:00Z\",\"run_id\":\"r1\",\"event\":\"step_started\",\"step\":\"setup_network\",\"decision\":\"run\",\"attempt\":1}\n{\"at\":\"2026-11-28T10:00:01Z\",\"run_id\":\"r1\",\"ev",
    )
    .unwrap();
    let (code, out, err) = k0rdent_snapshot!(
        "state_history_torn",
        dir.path(),
        k0rdent(dir.path()).args(["state", "history"])
    );
    assert_eq!(code, 0);
    assert!(out.contains("step_started") && out.contains("setup_network"));
    assert!(err.contains("cut short"));
}

#[test]
fn state_unlock_releases_a_dead_holders_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(k0rdent(dir.path()).args(["state", "unlock"]));
    assert_eq!(code, 0);
    assert!(out.contains("not locked"));
}
