//! `k0rdent config init` end to end: every preset is written by the real binary and then
//! planned against the ARM emulator (a fresh deployment: exit 2, pending changes, and no
//! configuration error); an existing file is never overwritten without `--force`; the file
//! is YAML whose comments are kept, and `--stdout`/`--config -` print the same text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use k0rdent_arm_emulator::Emulator;

fn run(mut c: Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn init(emu: &Emulator, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = common::k0rdent(emu, dir);
    c.current_dir(dir).args(["config", "init"]).args(args);
    run(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_preset_written_by_config_init_plans_with_pending_changes_and_no_error() {
    let emu = Emulator::builder().start().await.unwrap();
    for preset in ["minimal", "default", "production"] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{preset}.yaml"));
        let (code, out, err) = init(
            &emu,
            dir.path(),
            &["--preset", preset, "--config", file.to_str().unwrap()],
        );
        assert_eq!(code, 0, "{preset}: {out}\n{err}");
        assert!(
            out.contains(&format!("k0rdent plan --config ./{preset}.yaml")),
            "{preset}: the next command is not named: {out}"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&format!("--preset {preset}")), "{text}");

        let mut plan = common::k0rdent(&emu, dir.path());
        plan.current_dir(dir.path())
            .arg("plan")
            .arg("--config")
            .arg(&file)
            .arg("--state-dir")
            .arg(dir.path().join("state"));
        let (code, out, err) = run(plan);
        assert_eq!(
            code, 2,
            "{preset}: plan of a fresh deployment must exit 2\n{out}\n{err}"
        );
        assert!(!err.contains("error:"), "{preset}: {err}");
        assert!(out.contains("create_vms"), "{preset}: {out}");
    }
}

#[tokio::test]
async fn config_init_never_overwrites_an_existing_file_without_force() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("k0rdent.yaml");
    std::fs::write(&file, "# mine\n").unwrap();

    // The default path (./k0rdent.yaml) and an explicit one are both refused.
    for args in [&[][..], &["--config", file.to_str().unwrap()][..]] {
        let (code, out, err) = init(&emu, dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {out}\n{err}");
        assert!(err.contains("already exists"), "{err}");
        assert!(err.contains("hint:") && err.contains("--force"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "# mine\n");
    }

    let (code, _, err) = init(&emu, dir.path(), &["--force", "--preset", "minimal"]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("count: 1"), "{text}");

    // A file in a directory that does not exist: an error, and nothing is created.
    let deep = dir.path().join("no/such/dir/k0rdent.yaml");
    let (code, _, err) = init(&emu, dir.path(), &["--config", deep.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.path().join("no").exists());
}

#[tokio::test]
async fn the_written_file_is_yaml_whose_comments_are_kept_and_stdout_prints_the_same() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = init(&emu, dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(dir.path().join("k0rdent.yaml")).unwrap();

    let value: serde_yaml::Value = serde_yaml::from_str(&written).unwrap();
    assert_eq!(value["cluster"]["controllers"]["count"].as_u64(), Some(3));
    assert_eq!(value["cluster"]["workers"]["count"].as_u64(), Some(2));
    assert_eq!(value["azure"]["location"].as_str(), Some("westeurope"));

    // Commented: a comment before every section, defaults named in them.
    let comments = written
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
        .count();
    assert!(comments >= 30, "only {comments} comment lines:\n{written}");
    for needle in [
        "# Region, in the `name` form",
        "  # OS disk size in GB, 30 to 4095 (default 64).",
        "    # 1 to 100 (default 1); an odd number keeps etcd quorum",
        "  # owner: you@example.com",
    ] {
        assert!(written.contains(needle), "missing {needle:?}:\n{written}");
    }

    // `--stdout` and `--config -` print it (naming the default file in the comments).
    let (code, stdout, err) = init(&emu, dir.path(), &["--stdout"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, written);
    let (code, dash, _) = init(&emu, dir.path(), &["--config", "-"]);
    assert_eq!(code, 0);
    assert_eq!(dash, written);
    assert!(!dir.path().join("-").exists());
}
