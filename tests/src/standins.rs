//! The stand-in tools (package k0rdent-standins) as the product finds them: built binaries,
//! wrapped in a script that sets the stand-in's own environment (its invocation log, lock
//! directory, timings), so a test never changes its own process environment.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built stand-in `name` (`helm`, `k0sctl`), brought up to date once per test process
/// with the test's own profile (cargo does nothing when it is current), so a test never runs
/// a stale stand-in.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // The profile the test (or bench) was built with: target/debug is `dev`'s.
        let profile = match dir.file_name().and_then(|p| p.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let st = Command::new(cargo)
            .args(["build", "-p", "k0rdent-standins", "--bin", name])
            .args(["--profile", profile])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .unwrap();
        assert!(st.success(), "building the stand-in {name}");
        built.push(name.to_owned());
    }
    assert!(path.is_file(), "no stand-in {name} at {}", path.display());
    path
}

/// Writes `<dir>/<name>`: a script running the stand-in with `env` set.
pub fn wrapper(dir: &Path, name: &str, env: &[(&str, String)]) -> PathBuf {
    let bin = binary(name);
    let mut script = String::from("#!/bin/sh\n");
    for (k, v) in env {
        script.push_str(&format!("export {k}='{v}'\n"));
    }
    script.push_str(&format!("exec '{}' \"$@\"\n", bin.display()));
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The stand-in's invocation log: one JSON object per call.
pub fn invocations(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
