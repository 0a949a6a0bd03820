//! The three PATCH flavours kubectl and client-go send, picked by `Content-Type`: JSON merge
//! patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch, the last one
//! approximated as a merge patch that merges lists of objects keyed by `type` (conditions)
//! instead of replacing them, which is the case the clients of this fake rely on.

use serde_json::{Map, Value};

use super::status::ApiError;

/// A PATCH body's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/json-patch+json`.
    Json,
}

impl PatchType {
    /// The flavour named by a request's `Content-Type`; anything else is a 415 on the real
    /// server, a 400 here.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::StrategicMerge),
            "application/json-patch+json" => Ok(PatchType::Json),
            other => Err(ApiError::bad_request(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
            ))),
        }
    }
}

/// `target` with `patch` applied.
pub fn apply_patch(target: &Value, kind: PatchType, patch: &Value) -> Result<Value, ApiError> {
    match kind {
        PatchType::Merge => Ok(merge(target, patch, false)),
        PatchType::StrategicMerge => Ok(merge(target, patch, true)),
        PatchType::Json => json_patch(target, patch),
    }
}

fn merge(target: &Value, patch: &Value, strategic: bool) -> Value {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            let mut out = t.clone();
            for (k, v) in p {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = match out.get(k) {
                        Some(existing) => merge(existing, v, strategic),
                        None => merge(&Value::Null, v, strategic),
                    };
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(p)) if strategic && keyed_by_type(p) && keyed_by_type(t) => {
            let mut out = t.clone();
            for item in p {
                match out.iter_mut().find(|e| e.get("type") == item.get("type")) {
                    Some(existing) => *existing = merge(existing, item, true),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        (_, Value::Object(p)) => merge(
            &Value::Object(Map::new()),
            &Value::Object(p.clone()),
            strategic,
        ),
        (_, p) => p.clone(),
    }
}

fn keyed_by_type(items: &[Value]) -> bool {
    items
        .iter()
        .all(|i| i.get("type").is_some_and(Value::is_string))
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn json_patch(target: &Value, patch: &Value) -> Result<Value, ApiError> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("JSON patch operation without a path"))?;
        let value = op.get("value").cloned();
        let (parent_path, last) = path
            .rsplit_once('/')
            .ok_or_else(|| ApiError::bad_request(format!("invalid JSON patch path {path:?}")))?;
        let last = unescape(last);
        let missing = || {
            ApiError::bad_request(format!(
                "the server rejected our request due to an error in our request: path {path:?} not found"
            ))
        };
        match name {
            "test" => {
                if doc.pointer(path) != value.as_ref() {
                    return Err(ApiError::bad_request(format!(
                        "the test of {path:?} failed"
                    )));
                }
            }
            "add" | "replace" | "remove" => {
                let parent = doc.pointer_mut(parent_path).ok_or_else(missing)?;
                match parent {
                    Value::Object(m) => {
                        if name != "add" && !m.contains_key(&last) {
                            return Err(missing());
                        }
                        match value {
                            Some(v) if name != "remove" => {
                                m.insert(last, v);
                            }
                            _ => {
                                m.remove(&last);
                            }
                        }
                    }
                    Value::Array(a) => {
                        let idx = if last == "-" {
                            a.len()
                        } else {
                            last.parse::<usize>().map_err(|_| missing())?
                        };
                        match (name, value) {
                            ("add", Some(v)) if idx <= a.len() => a.insert(idx, v),
                            ("replace", Some(v)) if idx < a.len() => a[idx] = v,
                            ("remove", _) if idx < a.len() => {
                                a.remove(idx);
                            }
                            _ => return Err(missing()),
                        }
                    }
                    _ => return Err(missing()),
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unsupported JSON patch operation {other:?}"
                )));
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_removes_with_null_and_replaces_lists() {
        let t = json!({"a": 1, "b": {"c": 2}, "l": [1, 2]});
        let out = apply_patch(
            &t,
            PatchType::Merge,
            &json!({"a": null, "b": {"d": 3}, "l": [3]}),
        );
        assert_eq!(out, Ok(json!({"b": {"c": 2, "d": 3}, "l": [3]})));
    }

    #[test]
    fn strategic_merge_merges_conditions_by_type() {
        let t = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}});
        let p = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let out = apply_patch(&t, PatchType::StrategicMerge, &p);
        assert_eq!(
            out,
            Ok(
                json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "X", "status": "False"}]}})
            )
        );
    }

    #[test]
    fn json_patch_applies_operations_in_order() {
        let t = json!({"spec": {"release": "a", "l": [1]}});
        let p = json!([
            {"op": "replace", "path": "/spec/release", "value": "b"},
            {"op": "add", "path": "/spec/l/-", "value": 2},
            {"op": "remove", "path": "/spec/l/0"}
        ]);
        assert_eq!(
            apply_patch(&t, PatchType::Json, &p),
            Ok(json!({"spec": {"release": "b", "l": [2]}}))
        );
        assert!(
            apply_patch(
                &t,
                PatchType::Json,
                &json!([{"op": "replace", "path": "/nope/x", "value": 1}])
            )
            .is_err()
        );
    }
}
