//! What changed in the configuration since the last deploy recorded it.

use std::path::Path;

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
