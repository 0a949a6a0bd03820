//! Every error is one line plus a remedy, in text (`error:` then `hint:`) and in JSON
//! (`error`, `remedy`): a state path that is a file, a state directory on a read-only mount
//! (which holds as root, unlike a directory without write permission), a key file that
//! exists but this user may not read (which a backup would not fix), and a missing tool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn fake() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fake-k0rdent"));
    c.env_remove("RUST_LOG")
        .env_remove("K0RDENT_STATE_DIR")
        .stdin(Stdio::null());
    c
}

/// The `error:` line and the `hint:` line, after checking there are exactly those two on
/// stderr and nothing on stdout.
fn one_error(o: &Output) -> (String, String) {
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert_eq!(out, "", "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "one error line and one hint:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(lines[1].starts_with("hint: "), "{err}");
    (lines[0].to_owned(), lines[1].to_owned())
}

/// The JSON form of the same failure: one object with the same message and the remedy.
fn json_error(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["exit_code"], 1, "{v}");
    v
}

#[test]
fn a_state_path_that_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state");
    std::fs::write(&file, "not a directory").unwrap();
    for cmd in [&["plan"][..], &["deploy"], &["state", "show"]] {
        let o = fake()
            .args(cmd)
            .arg("--state-dir")
            .arg(&file)
            .output()
            .unwrap();
        let (error, hint) = one_error(&o);
        assert!(error.contains(&file.display().to_string()), "{error}");
        assert!(
            hint.contains("pass --state-dir with a directory"),
            "{cmd:?}: {hint}"
        );
        let o = fake()
            .args(cmd)
            .args(["-o", "json", "--state-dir"])
            .arg(&file)
            .output()
            .unwrap();
        let v = json_error(&o);
        assert!(v["remedy"].as_str().unwrap().contains("--state-dir"), "{v}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a directory");
}

#[test]
fn a_state_directory_on_a_read_only_mount() {
    k0rdent_tests::lab::require_root();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // A read-only tmpfs over the state directory, in a mount namespace of the command's own:
    // nothing to unmount afterwards, and root cannot write there either.
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o ro,size=1m tmpfs '{0}' && exec '{1}' deploy --state-dir '{0}'",
            state.display(),
            env!("CARGO_BIN_EXE_fake-k0rdent")
        ))
        .env("FAKE_WORLD_DIR", dir.path().join("world"))
        .env_remove("K0RDENT_STATE_DIR")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (error, hint) = one_error(&o);
    assert!(error.contains("Read-only file system"), "{error}");
    assert!(hint.contains("read-only file system"), "{hint}");
    assert!(hint.contains("--state-dir"), "{hint}");
}

#[tokio::test]
async fn a_key_that_exists_but_may_not_be_read() {
    k0rdent_tests::lab::require_root();
    let dir = tempfile::tempdir().unwrap();
    let state = k0rdent_tests::vpn_state::state_for_nobody(dir.path()).await;
    let keys = state.join("keys");
    let hub_key = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().contains("hub"))
        .unwrap_or_else(|| panic!("no hub key in {}", keys.display()));
    // Root's now: `nobody` may not read it.
    let chown = Command::new("chown")
        .args(["root:root"])
        .arg(&hub_key)
        .status()
        .unwrap();
    assert!(chown.success());
    let vpn_up = |json: bool| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_fake-k0rdent"))
            .args(["vpn", "up", "-y", "--state-dir"])
            .arg(&state)
            .env("HOME", dir.path())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        if json {
            c.args(["-o", "json"]);
        }
        c.output().unwrap()
    };
    let (error, hint) = one_error(&vpn_up(false));
    assert!(error.contains("Permission denied"), "{error}");
    assert!(
        hint.contains("exists but this user may not read it") && !hint.contains("backup"),
        "{hint}"
    );
    let v = json_error(&vpn_up(true));
    assert!(
        v["remedy"].as_str().unwrap().contains("may not read it"),
        "{v}"
    );
}

/// wg-quick is found in the system directories whatever PATH says (sudo's secure_path has
/// them too), but a PATH without coreutils leaves wg-quick itself without `readlink`: the
/// remedy names the command wg-quick lacks instead of "see the message above".
#[tokio::test]
async fn a_missing_tool_names_it_and_where_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = k0rdent_tests::vpn_state::state_for_nobody(dir.path()).await;
    let empty = dir.path().join("empty-bin");
    std::fs::create_dir(&empty).unwrap();
    let o = fake()
        .args(["vpn", "up", "-y", "--state-dir"])
        .arg(&state)
        .env("PATH", &empty)
        .output()
        .unwrap();
    let (error, hint) = one_error(&o);
    assert!(error.contains("wg-quick"), "{error}");
    assert!(
        hint.contains("wg-quick needs `readlink`, which is not on PATH: install it"),
        "{hint}"
    );
    assert!(!Path::new("/sys/class/net/wgk0sudo0001").exists());
}
