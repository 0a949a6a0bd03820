//! `--output json` as a consumer reads it: every line on stdout is one JSON object with the
//! output's `schema` version, every event carries `at` (RFC 3339, UTC) — live from `deploy`
//! and `plan` against the ARM emulator, and from the event log through `state history` —
//! and an error object is versioned too (docs/output.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k0rdent_arm_emulator::Emulator;
use k0rdent_cli::json_line::SCHEMA;
use serde_json::Value;

const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");

/// Runs `k0rdent ARGS -o json --state-dir ..` with `K0RDENT_CONFIG` set: exit code and stdout's lines.
fn run_json(emu: &Emulator, dir: &Path, args: &[&str]) -> (i32, Vec<Value>) {
    let out = common::k0rdent(emu, dir)
        .env("K0RDENT_CONFIG", dir.join("k0rdent.yaml"))
        .args(args)
        .args(["-o", "json", "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    (out.status.code().unwrap_or(-1), lines)
}

/// Every line has `schema`; events (and only events or event records) have `at`, an RFC
/// 3339 time in UTC, not before `since`. Returns the event names.
fn check_lines(lines: &[Value], since: DateTime<Utc>) -> Vec<String> {
    assert!(!lines.is_empty(), "no output at all");
    let mut events = Vec::new();
    for l in lines {
        assert_eq!(l["schema"], u64::from(SCHEMA), "no schema version: {l}");
        if let Some(event) = l["event"].as_str() {
            let at = l["at"]
                .as_str()
                .unwrap_or_else(|| panic!("an event without `at`: {l}"));
            assert!(at.ends_with('Z'), "not UTC: {at}");
            let at: DateTime<Utc> = at.parse().unwrap_or_else(|e| panic!("{at}: {e}"));
            assert!(at >= since - chrono::Duration::seconds(1), "{at} < {since}");
            events.push(event.to_owned());
        } else {
            assert!(
                l.get("result").is_some() || l.get("error").is_some(),
                "neither an event, a result nor an error: {l}"
            );
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_line_carries_the_schema_and_every_event_its_time() {
    let emu = Emulator::builder()
        .latency(Duration::from_millis(1))
        .operation_duration(Duration::from_millis(50))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k0rdent.yaml"), CONFIG).unwrap();
    let since = Utc::now();

    // Live events while planning: observers, the plan, then the result.
    let (code, lines) = run_json(&emu, dir.path(), &["plan"]);
    assert_eq!(code, 2, "a fresh deployment has pending changes: {lines:?}");
    let events = check_lines(&lines, since);
    assert!(events.iter().any(|e| e == "observed"), "{events:?}");
    assert_eq!(lines.last().unwrap()["result"], "plan");

    // A run: its events on stdout, and the same events recorded in the log.
    let (code, lines) = run_json(
        &emu,
        dir.path(),
        &["deploy", "-y", "--until", "prepare_deployment"],
    );
    assert_eq!(code, 0, "{lines:?}");
    let live = check_lines(&lines, since);
    for e in ["run_started", "observed", "planned", "run_finished"] {
        assert!(live.iter().any(|l| l == e), "no {e} in {live:?}");
    }
    assert_eq!(lines.last().unwrap()["result"], "deploy");

    let (code, lines) = run_json(&emu, dir.path(), &["state", "history"]);
    assert_eq!(code, 0);
    let recorded = check_lines(&lines, since);
    assert!(recorded.iter().any(|e| e == "run_finished"), "{recorded:?}");
    assert!(lines.iter().all(|l| l["run_id"].is_string()), "{lines:?}");

    // An error is a versioned line too.
    let missing = dir.path().join("missing");
    std::fs::create_dir(&missing).unwrap();
    let (code, lines) = run_json(&emu, &missing, &["plan"]);
    assert_eq!(code, 1);
    check_lines(&lines, since);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["exit_code"], 1);
    assert!(lines[0]["error"].is_string());
}
