//! What changed in the configuration since the deployment last ran.

use k0rdent_core::state::ConfigRecord;
use serde_json::Value;

use super::Loaded;

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&p, child, out);
            }
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// One line per setting whose value differs from the recorded snapshot (and one if the file
/// itself is another one).
pub fn changes(recorded: &ConfigRecord, loaded: &Loaded) -> Vec<String> {
    let mut out = Vec::new();
    let now = loaded.path.display().to_string();
    if recorded.path != now {
        out.push(format!(
            "note: configuration file changed: {} (last run: {})",
            now, recorded.path
        ));
    }
    if recorded.fingerprint.as_ref() == Some(&loaded.fingerprint) || recorded.snapshot.is_null() {
        return out;
    }
    let mut old = Vec::new();
    leaves("", &recorded.snapshot, &mut old);
    let mut new = Vec::new();
    leaves(
        "",
        &serde_json::to_value(&loaded.config).unwrap_or_default(),
        &mut new,
    );
    let old: std::collections::BTreeMap<_, _> = old.into_iter().collect();
    let new: std::collections::BTreeMap<_, _> = new.into_iter().collect();
    for (k, v) in &new {
        match old.get(k) {
            Some(o) if o == v => {}
            Some(o) => out.push(format!(
                "note: configuration changed since the last run: {k}: {o} -> {v}"
            )),
            None => out.push(format!(
                "note: configuration changed since the last run: {k}: (unset) -> {v}"
            )),
        }
    }
    for (k, o) in &old {
        if !new.contains_key(k) {
            out.push(format!(
                "note: configuration changed since the last run: {k}: {o} -> (unset)"
            ));
        }
    }
    out
}
