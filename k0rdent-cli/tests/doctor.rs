//! `k0rdent doctor` end to end: the real binary against the ARM emulator, with scripts
//! standing in for k0sctl, helm, kubectl and the WireGuard tools on `PATH`. Every check
//! that can pass here passes; the ones that depend on this machine (sudo, its routes) either
//! pass or say why with a remedy. A state path that is a file, a missing tool, no
//! configuration and a clock ten minutes off ARM's each fail with their remedy; the JSON form
//! lists every check; the client secret and the tokens never reach any output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use k0rdent_arm_emulator::Emulator;
use serde_json::Value;

const CHECKS: [&str; 13] = [
    "config",
    "state-dir",
    "azure-credentials",
    "azure-subscription",
    "clock",
    "k0sctl",
    "helm",
    "kubectl",
    "wg-quick",
    "wg",
    "wireguard-go",
    "sudo",
    "wireguard-network",
];

/// A temp dir with a configuration (written by `config init`) and stand-in tools in `bin/`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(emu: &Emulator) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, body) in [
            ("k0sctl", "echo 'version: v0.23.1'; echo 'commit: 0000000'"),
            ("helm", "echo v3.16.2+g13654a5"),
            (
                "kubectl",
                r#"echo '{"clientVersion": {"gitVersion": "v1.31.7"}}'"#,
            ),
            ("wg-quick", "exit 0"),
            (
                "wg",
                "echo 'wireguard-tools v1.0.20250521 - https://git.zx2c4.com/wireguard-tools/'",
            ),
            ("wireguard-go", "echo 'wireguard-go v0.0.20250522'"),
        ] {
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let s = Setup { dir };
        let mut c = common::k0rdent(emu, s.dir.path());
        c.current_dir(s.dir.path())
            .args(["config", "init", "--preset", "minimal"]);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        s
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// `k0rdent doctor --config k0rdent.yaml --state-dir state` with the stand-ins first on
    /// `PATH`, then the machine's (for `ip` and `sudo`).
    fn doctor(&self, emu: &Emulator) -> Command {
        let mut path = vec![self.bin()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut c = common::k0rdent(emu, self.dir.path());
        c.current_dir(self.dir.path())
            .env("PATH", std::env::join_paths(path).unwrap())
            .args(["doctor", "--config", "k0rdent.yaml", "--state-dir", "state"]);
        c
    }
}

fn run(mut c: Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The checks of `doctor -o json`, by name.
fn json_checks(out: &str) -> (Value, Vec<Value>) {
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let checks = v["checks"].as_array().unwrap().clone();
    (v, checks)
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))
}

/// The table row of `name`: its RESULT and DETAIL, and the hint under it if any.
fn row<'a>(table: &'a str, name: &str) -> (&'a str, &'a str, Option<&'a str>) {
    let lines: Vec<&str> = table.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name}:\n{table}"));
    let mut cols = lines[i].splitn(2, char::is_whitespace);
    cols.next();
    let rest = cols.next().unwrap().trim_start();
    let (status, detail) = rest.split_once(char::is_whitespace).unwrap();
    let hint = lines
        .get(i + 1)
        .and_then(|l| l.trim_start().strip_prefix("hint: "));
    (status, detail.trim_start(), hint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_what_it_can_against_the_emulator_and_says_why_for_the_rest() {
    let emu = Emulator::builder().start().await.unwrap();
    let s = Setup::new(&emu);
    let (code, out, err) = run(s.doctor(&emu));

    // A header row and aligned columns: every row's RESULT starts where the header's does.
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("CHECK "), "{out}");
    let result_col = header.find("RESULT").unwrap();
    let detail_col = header.find("DETAIL").unwrap();
    for name in CHECKS {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{out}"));
        assert_eq!(&line[..result_col].trim_end(), &name, "{line}");
        assert!(line[result_col..detail_col].trim_end().len() <= 4, "{line}");
    }

    let bin = s.bin();
    for (name, needle) in [
        (
            "config",
            "k0rdent.yaml: 1 controller(s) Standard_B2s".to_owned(),
        ),
        ("state-dir", "does not exist yet".to_owned()),
        (
            "azure-credentials",
            format!("token from service principal {}", emu.client_id()),
        ),
        (
            "azure-subscription",
            format!("{} \"k0rdent emulator\"", emu.subscription_id()),
        ),
        ("clock", "ARM's clock".to_owned()),
        (
            "k0sctl",
            format!("0.23.1 at {}", bin.join("k0sctl").display()),
        ),
        ("helm", format!("3.16.2 at {}", bin.join("helm").display())),
        (
            "kubectl",
            format!("1.31.7 at {}", bin.join("kubectl").display()),
        ),
        ("wg-quick", format!("at {}", bin.join("wg-quick").display())),
        (
            "wg",
            format!("1.0.20250521 at {}", bin.join("wg").display()),
        ),
        (
            "wireguard-go",
            format!("0.0.20250522 at {}", bin.join("wireguard-go").display()),
        ),
    ] {
        let (status, detail, _) = row(&out, name);
        // The minimal preset has 0 workers: the config check warns about that.
        let expected = if name == "config" { "warn" } else { "ok" };
        assert_eq!(status, expected, "{name}: {detail}\n{out}\n{err}");
        assert!(
            detail.contains(&needle),
            "{name}: {detail:?} lacks {needle:?}"
        );
    }
    // What depends on this machine passes, or says why and what to do.
    let mut failed = false;
    for name in ["sudo", "wireguard-network"] {
        let (status, detail, hint) = row(&out, name);
        assert!(matches!(status, "ok" | "warn" | "fail"), "{name}: {status}");
        if status != "ok" {
            assert!(
                !detail.is_empty() && hint.is_some(),
                "{name}: {detail}\n{out}"
            );
        }
        failed |= status == "fail";
    }
    assert!(
        !Path::new(&s.dir.path().join("state")).exists(),
        "doctor created the state dir"
    );
    let summary = out.lines().last().unwrap();
    assert!(summary.starts_with("13 checks: "), "{summary}");
    assert_eq!(code, if failed { 1 } else { 0 }, "{out}\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_form_lists_every_check_with_name_status_detail_and_remedy() {
    let emu = Emulator::builder().start().await.unwrap();
    let s = Setup::new(&emu);
    let mut c = s.doctor(&emu);
    c.args(["--output", "json"]);
    let (code, out, err) = run(c);
    assert_eq!(out.lines().count(), 1, "one JSON object:\n{out}\n{err}");
    let (v, checks) = json_checks(&out);
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS);
    for c in &checks {
        for field in ["name", "status", "detail", "remedy"] {
            assert!(c.get(field).is_some(), "{field} missing in {c}");
        }
        assert!(
            ["ok", "warn", "fail", "skip"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        if c["status"] == "fail" || c["status"] == "warn" {
            assert!(
                c["remedy"].is_string(),
                "a {} without a remedy: {c}",
                c["status"]
            );
        }
    }
    let sub = check(&checks, "azure-subscription");
    assert_eq!(sub["status"], "ok", "{sub}");
    assert!(sub["remedy"].is_null(), "{sub}");
    let passed = checks
        .iter()
        .all(|c| c["status"] == "ok" || c["status"] == "warn");
    assert_eq!(v["passed"], passed);
    assert_eq!(code, if passed { 0 } else { 1 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_path_that_is_a_file_fails_with_a_remedy() {
    let emu = Emulator::builder().start().await.unwrap();
    let s = Setup::new(&emu);
    std::fs::write(s.dir.path().join("state"), "not a directory\n").unwrap();
    let (code, out, _) = run(s.doctor(&emu));
    let (status, detail, hint) = row(&out, "state-dir");
    assert_eq!(status, "fail", "{out}");
    assert_eq!(detail, "state is a file, not a directory");
    assert!(hint.unwrap().contains("--state-dir"), "{out}");
    assert_eq!(code, 1);
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("state")).unwrap(),
        "not a directory\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_tool_fails_naming_the_tool_and_how_to_get_it() {
    let emu = Emulator::builder().start().await.unwrap();
    let s = Setup::new(&emu);
    std::fs::remove_file(s.bin().join("k0sctl")).unwrap();
    let mut c = s.doctor(&emu);
    // Only the stand-ins: a k0sctl elsewhere on this machine must not be found.
    c.env("PATH", s.bin());
    let (code, out, err) = run(c);
    let (status, detail, hint) = row(&out, "k0sctl");
    assert_eq!(status, "fail", "{out}\n{err}");
    assert_eq!(detail, "k0sctl was not found on PATH");
    let hint = hint.unwrap();
    assert!(
        hint.contains("install k0sctl") && hint.contains("tools.k0sctl"),
        "{hint}"
    );
    assert_eq!(row(&out, "helm").0, "ok", "{out}");
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configuration_doctor_says_to_run_config_init_and_what_it_skipped() {
    let emu = Emulator::builder().start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::k0rdent(&emu, dir.path());
    c.current_dir(dir.path())
        .args(["doctor", "--state-dir", "state"]);
    let (code, out, _) = run(c);
    let (status, detail, hint) = row(&out, "config");
    assert_eq!(status, "fail", "{out}");
    assert!(detail.starts_with("no configuration"), "{detail}");
    assert!(hint.unwrap().contains("k0rdent config init"), "{out}");
    let (status, detail, _) = row(&out, "wireguard-network");
    assert_eq!(
        (status, detail),
        (
            "skip",
            "skipped: no valid configuration to take the network from"
        )
    );
    // The credentials need no configuration: the environment names everything.
    assert_eq!(row(&out, "azure-credentials").0, "ok", "{out}");
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_ten_minutes_off_arms_fails_and_bad_credentials_skip_what_needs_them() {
    let emu = Emulator::builder()
        .clock_offset(chrono::TimeDelta::minutes(-10))
        .start()
        .await
        .unwrap();
    let s = Setup::new(&emu);
    let (code, out, _) = run(s.doctor(&emu));
    let (status, detail, hint) = row(&out, "clock");
    assert_eq!(status, "fail", "{out}");
    assert!(detail.contains("s ahead of ARM's clock"), "{detail}");
    let secs: i64 = detail.split(' ').next().unwrap().parse().unwrap();
    assert!((595..=605).contains(&secs), "{detail}");
    assert!(hint.unwrap().contains("clock"), "{out}");
    assert_eq!(code, 1);

    let mut c = s.doctor(&emu);
    c.env("AZURE_CLIENT_SECRET", "a-wrong-secret-value");
    let (code, out, err) = run(c);
    let (status, _, hint) = row(&out, "azure-credentials");
    assert_eq!(status, "fail", "{out}");
    assert!(hint.is_some(), "{out}");
    assert_eq!(row(&out, "azure-subscription").0, "skip");
    assert_eq!(row(&out, "clock").2, None);
    assert!(row(&out, "clock").1.starts_with("skipped: "), "{out}");
    assert!(!out.contains("a-wrong-secret-value") && !err.contains("a-wrong-secret-value"));
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_reaches_any_output() {
    let emu = Emulator::builder().start().await.unwrap();
    let s = Setup::new(&emu);
    let secret = emu.client_secret().expose().to_owned();
    let mut outputs = Vec::new();
    for extra in [&[][..], &["--output", "json"][..], &["-vvv"][..]] {
        let mut c = s.doctor(&emu);
        c.args(extra).env("RUST_LOG", "trace");
        let (_, out, err) = run(c);
        outputs.push(format!("{out}\n{err}"));
    }
    let tokens = emu.issued_tokens();
    assert!(!tokens.is_empty(), "doctor fetched no token");
    for text in &outputs {
        assert!(text.contains("azure-credentials"), "{text}");
        assert!(
            !text.contains(&secret),
            "the client secret was printed:\n{text}"
        );
        for t in &tokens {
            assert!(!text.contains(t.expose().as_str()), "a token was printed");
        }
    }
}
