//! The user documentation in `docs/` against the types it describes: every configuration key
//! (`config::doc_coverage`), every JSON event type and field, every plan reason and every exit
//! code. The lists come from the serde types themselves, through their JSON Schema
//! (`schemars`), so a new key, event or field fails a test until it is documented.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use serde_json::Value;

/// The text of `docs/<name>`.
pub(crate) fn doc(name: &str) -> String {
    let path = format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The schema `s` stands for: a `$ref` to `#/$defs/Name` followed.
fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap();
            let def = &root["$defs"][name];
            assert!(!def.is_null(), "unresolved {r}");
            resolve(root, def)
        }
        None => s,
    }
}

/// The alternatives of `s` (its `anyOf`/`oneOf`, flattened), or `s` alone.
fn alternatives<'a>(root: &'a Value, s: &'a Value) -> Vec<&'a Value> {
    let s = resolve(root, s);
    for k in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(k).and_then(Value::as_array) {
            return alts.iter().flat_map(|a| alternatives(root, a)).collect();
        }
    }
    vec![s]
}

/// Every key path of the mapping schema `s` (within `root`), dotted (`vm_sizing.controller.size`), sections
/// included; and the paths that are free-form maps (`tools`: any key, named elsewhere).
pub(crate) fn key_paths(root: &Value, s: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    fn walk(
        root: &Value,
        s: &Value,
        prefix: &str,
        keys: &mut BTreeSet<String>,
        maps: &mut BTreeSet<String>,
    ) {
        for alt in alternatives(root, s) {
            if let Some(props) = alt.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    keys.insert(path.clone());
                    walk(root, v, &path, keys, maps);
                }
            }
            if alt
                .get("additionalProperties")
                .is_some_and(Value::is_object)
            {
                maps.insert(prefix.to_owned());
            }
        }
    }
    let (mut keys, mut maps) = (BTreeSet::new(), BTreeSet::new());
    walk(root, s, "", &mut keys, &mut maps);
    (keys, maps)
}

/// The variants of an internally tagged enum's schema: each `tag` value with its other
/// fields.
pub(crate) fn tagged_variants(root: &Value, s: &Value, tag: &str) -> Vec<(String, Vec<String>)> {
    alternatives(root, s)
        .into_iter()
        .map(|alt| {
            let props = alt["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("a variant without properties: {alt}"));
            let t = &props[tag];
            let name = t["const"]
                .as_str()
                .or_else(|| t["enum"][0].as_str())
                .unwrap_or_else(|| panic!("no {tag} value in {alt}"));
            let fields = props.keys().filter(|k| *k != tag).cloned().collect();
            (name.to_owned(), fields)
        })
        .collect()
}

/// The values of a plain string enum's schema (`Decision`: `skip`, `run`, ...).
pub(crate) fn enum_values(root: &Value, s: &Value) -> Vec<String> {
    alternatives(root, s)
        .into_iter()
        .flat_map(|alt| {
            let values: Vec<Value> = match (alt.get("enum"), alt.get("const")) {
                (Some(Value::Array(v)), _) => v.clone(),
                (_, Some(c)) => vec![c.clone()],
                _ => panic!("not a string enum: {alt}"),
            };
            values
        })
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The code spans of `text` (`` `azure.location` `` → `azure.location`).
pub(crate) fn code_spans(text: &str) -> BTreeSet<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The first code span of each table row (`` | `azure.location` | ... ``).
pub(crate) fn table_keys(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect()
}

/// The sections of `text` below headings of `level` (`"###"`): heading line and body, up
/// to the next heading of that level or higher.
pub(crate) fn sections<'a>(text: &'a str, level: &str) -> Vec<(&'a str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    let depth = level.len();
    for line in text.lines() {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && hashes <= depth && line[hashes..].starts_with(' ') {
            if hashes == depth {
                out.push((line, String::new()));
            } else {
                out.push(("", String::new()));
            }
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out.into_iter().filter(|(h, _)| !h.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use k0rdent_core::event::Event;
    use k0rdent_core::plan::Plan;

    use super::*;
    use crate::exit::ExitStatus;

    fn schema_of<T: schemars::JsonSchema>() -> Value {
        serde_json::to_value(schemars::schema_for!(T)).unwrap()
    }

    /// The `### ` sections of `## <chapter>` in `docs/output.md`, by the code span that
    /// names them (`` ### `step_started` `` → `step_started`).
    fn chapter_sections(doc: &str, chapter: &str) -> Vec<(String, String)> {
        let (_, body) = sections(doc, "##")
            .into_iter()
            .find(|(h, _)| h.contains(chapter))
            .unwrap_or_else(|| panic!("docs/output.md has no `## {chapter}` chapter"));
        sections(&body, "###")
            .into_iter()
            .map(|(h, b)| {
                let name = code_spans(h).into_iter().next().unwrap_or(h).to_owned();
                (name, b)
            })
            .collect()
    }

    #[test]
    fn every_event_type_and_field_is_documented_in_output_md() {
        let schema = schema_of::<Event>();
        let variants = tagged_variants(&schema, &schema, "event");
        assert!(variants.len() > 20, "sanity: {variants:?}");
        let doc = doc("output.md");
        let documented = chapter_sections(&doc, "Events");
        let mut missing = Vec::new();
        for (event, fields) in &variants {
            let Some((_, body)) = documented.iter().find(|(n, _)| n == event) else {
                missing.push(format!("event `{event}` (a `### \\`{event}\\`` section)"));
                continue;
            };
            let spans = code_spans(body);
            for f in fields {
                if !spans.contains(f.as_str()) {
                    missing.push(format!("field `{f}` of event `{event}`"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "docs/output.md lacks:\n{}",
            missing.join("\n")
        );
        // And documents no event that does not exist.
        for (name, _) in &documented {
            assert!(
                variants.iter().any(|(e, _)| e == name),
                "docs/output.md documents an event `{name}` that Event does not have"
            );
        }
    }

    #[test]
    fn every_plan_decision_reason_and_observation_kind_is_in_output_md() {
        let schema = schema_of::<Plan>();
        let defs = &schema["$defs"];
        let doc = doc("output.md");
        let spans = code_spans(&doc);
        let mut names: Vec<String> = Vec::new();
        for (code, fields) in tagged_variants(&schema, &defs["Reason"], "code") {
            names.push(code);
            names.extend(fields);
        }
        for def in ["Decision", "ObservedKind", "Status"] {
            names.extend(enum_values(&schema, &defs[def]));
        }
        let entry = resolve(&schema, &defs["PlanEntry"]);
        names.extend(entry["properties"].as_object().unwrap().keys().cloned());
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !spans.contains(n.as_str()))
            .collect();
        assert!(missing.is_empty(), "docs/output.md lacks {missing:?}");
    }

    #[test]
    fn every_exit_code_is_in_exit_codes_md() {
        let all = [
            ExitStatus::Success,
            ExitStatus::Error,
            ExitStatus::Changes,
            ExitStatus::Blocked,
            ExitStatus::Locked,
            ExitStatus::Interrupted,
        ];
        // A new status fails to compile here until it is added above (and documented).
        for s in all {
            match s {
                ExitStatus::Success
                | ExitStatus::Error
                | ExitStatus::Changes
                | ExitStatus::Blocked
                | ExitStatus::Locked
                | ExitStatus::Interrupted => {}
            }
        }
        let doc = doc("exit-codes.md");
        let rows = table_keys(&doc);
        for s in all {
            let code = s.code().to_string();
            assert!(
                rows.contains(&code.as_str()),
                "docs/exit-codes.md has no table row for exit code {code} ({s:?})"
            );
        }
    }

    #[test]
    fn the_doc_helpers_find_what_they_are_asked_for() {
        let text = "# T\n## Events\n### `a`\nx `f` y\n### `b`\n## Other\n### `c`\n| `k.l` | x |\n";
        let events: Vec<String> = chapter_sections(text, "Events")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(events, ["a", "b"]);
        assert_eq!(table_keys(text), ["k.l"]);
        assert!(code_spans(text).contains("f"));
    }
}
