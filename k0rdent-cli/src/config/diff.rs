//! What changed in the configuration since the last deploy recorded it.

use std::path::Path;

use k0rdent_core::state::ConfigRecord;
use serde_json::Value;

use super::Loaded;

fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    // A duration as an older state recorded it reads as the text it is recorded as now.
    if let Some(text) = super::duration_text::from_record(v) {
        out.push((prefix.to_owned(), Value::String(text).to_string()));
        return;
    }
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

/// Whether `recorded` (as the state wrote it, possibly relative in old states) names the file
/// at `now`.
fn same_file(recorded: &str, now: &Path) -> bool {
    if Path::new(recorded) == now {
        return true;
    }
    match (std::fs::canonicalize(recorded), std::fs::canonicalize(now)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What changed since the last deploy recorded its configuration: a line if the file is another
/// one, and if the content differs a line saying so — what `plan` will show — followed by one
/// line per setting whose value differs.
pub fn changes(recorded: &ConfigRecord, loaded: &Loaded) -> Vec<String> {
    let mut out = Vec::new();
    let now = loaded.path.display().to_string();
    if !same_file(&recorded.path, &loaded.path) {
        out.push(format!(
            "note: using the configuration {now}; the last deploy used {}",
            recorded.path
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
    let mut settings = Vec::new();
    for (k, v) in &new {
        match old.get(k) {
            Some(o) if o == v => {}
            Some(o) => settings.push(format!("note:   {k}: {o} -> {v}")),
            None => settings.push(format!("note:   {k}: (unset) -> {v}")),
        }
    }
    for (k, o) in &old {
        if !new.contains_key(k) {
            settings.push(format!("note:   {k}: {o} -> (unset)"));
        }
    }
    if settings.is_empty() {
        out.push(format!(
            "note: the configuration {now} changed since the last deploy, but no setting differs \
             (comments or formatting only); nothing is planned for it"
        ));
    } else {
        out.push(format!(
            "note: the configuration {now} changed since the last deploy ({} setting{}); `k0rdent \
             plan` shows the steps these changes rerun or replace, and `k0rdent deploy` applies \
             them:",
            settings.len(),
            if settings.len() == 1 { "" } else { "s" }
        ));
        out.extend(settings);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as an older release wrote it: the same configuration, its durations as
    /// serde's `{secs, nanos}`, with another file digest (a comment changed).
    #[test]
    fn durations_recorded_the_old_way_are_no_change_and_new_records_read_30s() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k0rdent.yaml");
        let text = include_str!("../../../tests/fixtures/lab-3x2.yaml");
        std::fs::write(&path, text).unwrap();
        let loaded = super::super::load(&path).unwrap();
        let snapshot = serde_json::to_value(&loaded.config).unwrap();
        let connect = &snapshot["timeouts"]["ssh_connect"];
        assert!(connect.is_string(), "recorded as text: {connect}");
        assert!(!snapshot.to_string().contains("nanos"), "{snapshot}");

        let mut old = snapshot.clone();
        for (_, v) in old["timeouts"].as_object_mut().unwrap().iter_mut() {
            if let Some(s) = v.as_str() {
                let secs: u64 = match s.strip_suffix('s').and_then(|n| n.parse().ok()) {
                    Some(n) => n,
                    None if s.ends_with('m') => s[..s.len() - 1].parse::<u64>().unwrap() * 60,
                    None => s[..s.len() - 1].parse::<u64>().unwrap() * 3600,
                };
                *v = serde_json::json!({"secs": secs, "nanos": 0});
            }
        }
        assert!(old.to_string().contains("nanos"));
        std::fs::write(&path, format!("# a comment\n{text}")).unwrap();
        let reloaded = super::super::load(&path).unwrap();
        let record = ConfigRecord {
            path: path.display().to_string(),
            fingerprint: Some(loaded.fingerprint.clone()),
            snapshot: old,
            recorded_at: None,
        };
        let notes = changes(&record, &reloaded);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("no setting differs"), "{notes:?}");
    }
}
