//! What a whole-pipeline run said, in a form that can be an insta snapshot: the JSON events
//! reduced to what decides the run (the plan's decisions, the steps started and how they
//! ended, the gates), and [`FILTERS`] for what differs between runs (addresses, keys,
//! durations, ids).

use serde_json::Value;

/// Regex → replacement pairs for `insta::with_settings!({filters => ...})`: tunnel, VNet and
/// lab addresses, WireGuard keys, fingerprints, run ids, durations, timestamps and the
/// slot's directory and interface names.
pub const FILTERS: &[(&str, &str)] = &[
    (
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[time]",
    ),
    (r"/run/k0rdent-lab/s\d\d/[^\s'`]*", "[lab-dir]"),
    (r"\bwgk0[0-9a-z]{8}\b", "[hub]"),
    (r"wireguard_port=\d+", "wireguard_port=[port]"),
    (r"\b(\d{1,3}\.){3}\d{1,3}(/\d\d?)?(:\d+)?\b", "[ip]"),
    (r"[A-Za-z0-9+/]{43}=", "[key]"),
    (r"\b[0-9a-f]{32,64}\b", "[hex]"),
    (
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[uuid]",
    ),
    (r"\bk0rdent-[0-9a-z]{8}\b", "[cluster]"),
    (r"\b\d+(\.\d+)?\s?(ms|s|m)\b", "[t]"),
];

/// The decisive events of a `--output json` run's stdout, one per line: every planned
/// decision (`plan: STEP DECISION: why` for those that do or block work), then in order each step started, completed (with
/// whether its outputs changed), failed, blocked, interrupted or confirmed, each gate passed
/// or failed, each drift, and the result's kind and exit-relevant fields. Observations,
/// progress, pending operations, waits and retries vary from run to run and are left out.
pub fn decisive_events(stdout: &str) -> String {
    let mut out = Vec::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            out.push(format!("not JSON: {line}"));
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        match v["event"].as_str() {
            Some("planned") => {
                for e in v["plan"]["entries"].as_array().into_iter().flatten() {
                    let decision = e["decision"].as_str().unwrap_or("?");
                    let why = match decision {
                        "skip" | "disabled" => String::new(),
                        _ => format!(": {}", e["message"].as_str().unwrap_or("")),
                    };
                    out.push(format!(
                        "plan: {} {decision}{why}",
                        e["step"].as_str().unwrap_or("?")
                    ));
                }
            }
            Some("step_started") => out.push(format!(
                "started: {} ({})",
                s("step"),
                v["decision"].as_str().unwrap_or("?")
            )),
            Some("step_completed") => out.push(format!(
                "completed: {} (outputs changed: {})",
                s("step"),
                v["outputs_changed"]
            )),
            Some("step_failed") => out.push(format!("failed: {}: {}", s("step"), s("error"))),
            Some("step_blocked") => out.push(format!("blocked: {}: {}", s("step"), s("reason"))),
            Some("step_interrupted") => {
                out.push(format!("interrupted: {}: {}", s("step"), s("reason")));
            }
            Some("step_confirmed") => {
                out.push(format!("confirmed: {}: {}", s("step"), s("change")));
            }
            Some("gate_passed") => out.push(format!("gate passed: {} {}", s("step"), s("gate"))),
            Some("gate_failed") => out.push(format!(
                "gate failed: {} {}: {}",
                s("step"),
                s("gate"),
                s("reason")
            )),
            Some("drift") => out.push(format!("drift: {}: {}", s("step"), s("detail"))),
            Some(_) => {}
            None => out.push(format!(
                "result: {} {}",
                v["result"].as_str().unwrap_or("?"),
                v["outcome"].as_str().unwrap_or("")
            )),
        }
    }
    out.join("\n")
}

/// insta settings with [`FILTERS`]: `transcript::settings().bind(|| insta::assert_snapshot!(..))`.
pub fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    for (re, with) in FILTERS {
        settings.add_filter(re, *with);
    }
    settings
}

/// The steps a run started, in order, from its [`decisive_events`].
pub fn started(events: &str) -> Vec<&str> {
    events
        .lines()
        .filter_map(|l| l.strip_prefix("started: "))
        .filter_map(|l| l.split(' ').next())
        .collect()
}
