//! `k0rdent completions SHELL` and the hidden `k0rdent man`: generated from the arguments
//! alone, so they work without a configuration and never create a state directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

/// The binary in `cwd` with no configuration in the environment.
fn k0rdent(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_k0rdent"))
        .current_dir(cwd)
        .env_remove("K0RDENT_CONFIG")
        .env_remove("K0RDENT_STATE_DIR")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bash_completions_offer_the_commands_and_flags_and_parse_as_bash() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = k0rdent(dir.path(), &["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    for word in ["deploy", "--until", "import-bash-state", "--output"] {
        assert!(out.contains(word), "no {word} in:\n{out}");
    }
    let script = dir.path().join("k0rdent.bash");
    std::fs::write(&script, &out).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Nothing was read or written: no ./state appeared.
    assert!(!dir.path().join("state").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn every_shell_gets_a_script_without_config_or_state() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, err) = k0rdent(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("deploy"), "{shell}:\n{out}");
    }
    // Nothing was read or written: no ./state appeared.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let (code, _, err) = k0rdent(dir.path(), &["completions", "tcsh"]);
    assert_eq!(code, 1, "an unknown shell is a usage error: {err}");
    assert!(err.contains("bash"), "the shells are listed: {err}");
}

#[test]
fn the_man_page_is_roff_for_k0rdent_and_lists_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = k0rdent(dir.path(), &["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(".ie") || out.contains(".TH k0rdent"),
        "{out}"
    );
    for word in ["deploy", "plan", "completions", "Exit codes"] {
        assert!(out.contains(word), "no {word} in the man page:\n{out}");
    }
    // Hidden from --help: it is for packagers.
    let (_, help, _) = k0rdent(dir.path(), &["--help"]);
    assert!(!help.contains("\n  man "), "{help}");
    assert!(!dir.path().join("state").exists());
}

#[test]
fn in_json_mode_the_script_is_the_text_of_a_versioned_result() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = k0rdent(dir.path(), &["-o", "json", "completions", "fish"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["result"], "completions");
    assert_eq!(v["shell"], "fish");
    assert!(v["text"].as_str().unwrap().contains("deploy"));
}
