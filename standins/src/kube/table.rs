//! Server-side printing: `meta.k8s.io/v1` `Table` responses, sent when `Accept` asks for
//! `as=Table`, with the columns the real API server prints (`kubectl get nodes` shows
//! NAME STATUS ROLES AGE VERSION computed here, not by kubectl).

use serde_json::{Value, json};

use super::resources::Resource;

/// How much of each object a row embeds (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter; unknown values fall back to the default.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn column(name: &str, kind: &str, format: &str, description: &str, priority: u8) -> Value {
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

/// Kubernetes' `HumanDuration`: `45s`, `5m10s`, `3h`, `2d5h`, `400d`, `3y20d`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 192 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        format!("{}y{}d", d / 365, d % 365)
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_duration((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
}

fn node_status(node: &Value) -> String {
    let mut status = match condition(node, "Ready").and_then(|c| c["status"].as_str()) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    status
}

fn node_roles(node: &Value) -> String {
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_string());
                }
            } else if k == "kubernetes.io/role"
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.push(v.to_string());
            }
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn node_address(node: &Value, kind: &str) -> String {
    node.pointer("/status/addresses")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|x| x["type"] == kind))
        .and_then(|x| x["address"].as_str())
        .unwrap_or("<none>")
        .to_string()
}

fn columns_and_cells(r: Resource, objects: &[Value]) -> (Vec<Value>, Vec<Vec<Value>>) {
    let name = column(
        "Name",
        "string",
        "name",
        "Name must be unique within a namespace.",
        0,
    );
    let age_col = column(
        "Age",
        "string",
        "",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
        0,
    );
    let cols = match r {
        Resource::Nodes => vec![
            name,
            column("Status", "string", "", "The status of the node", 0),
            column("Roles", "string", "", "The roles of the node", 0),
            age_col,
            column(
                "Version",
                "string",
                "",
                "Kubelet Version reported by the node.",
                0,
            ),
            column(
                "Internal-IP",
                "string",
                "",
                "List of internal IPs for the node.",
                1,
            ),
            column(
                "External-IP",
                "string",
                "",
                "List of external IPs for the node.",
                1,
            ),
            column(
                "OS-Image",
                "string",
                "",
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
                1,
            ),
            column(
                "Kernel-Version",
                "string",
                "",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
                1,
            ),
            column(
                "Container-Runtime",
                "string",
                "",
                "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
                1,
            ),
        ],
        Resource::Namespaces => vec![
            name,
            column("Status", "string", "", "The status of the namespace", 0),
            age_col,
        ],
        Resource::Secrets => vec![
            name,
            column("Type", "string", "", "The type of the secret", 0),
            column(
                "Data",
                "string",
                "",
                "The number of entries in the secret",
                0,
            ),
            age_col,
        ],
        Resource::Managements => vec![
            name,
            column(
                "Ready",
                "string",
                "",
                "Overall readiness of the Management resource",
                0,
            ),
            column("Release", "string", "", "Current release", 0),
            age_col,
        ],
        Resource::Releases => vec![
            name,
            column("KCM", "string", "", "Version of KCM Template", 0),
            column("Ready", "string", "", "Readiness of the Release", 0),
            age_col,
        ],
    };
    let ready = |o: &Value| {
        condition(o, "Ready")
            .and_then(|c| c["status"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let rows = objects
        .iter()
        .map(|o| {
            let n = json!(str_at(o, "/metadata/name"));
            match r {
                Resource::Nodes => vec![
                    n,
                    json!(node_status(o)),
                    json!(node_roles(o)),
                    json!(age(o)),
                    json!(str_at(o, "/status/nodeInfo/kubeletVersion")),
                    json!(node_address(o, "InternalIP")),
                    json!(node_address(o, "ExternalIP")),
                    json!(str_at(o, "/status/nodeInfo/osImage")),
                    json!(str_at(o, "/status/nodeInfo/kernelVersion")),
                    json!(str_at(o, "/status/nodeInfo/containerRuntimeVersion")),
                ],
                Resource::Namespaces => vec![n, json!(str_at(o, "/status/phase")), json!(age(o))],
                Resource::Secrets => {
                    let data = o
                        .get("data")
                        .and_then(Value::as_object)
                        .map_or(0, |d| d.len());
                    vec![n, json!(str_at(o, "/type")), json!(data), json!(age(o))]
                }
                Resource::Managements => vec![
                    n,
                    json!(ready(o)),
                    json!(str_at(o, "/spec/release")),
                    json!(age(o)),
                ],
                Resource::Releases => vec![
                    n,
                    json!(str_at(o, "/spec/kcm/template")),
                    json!(ready(o)),
                    json!(age(o)),
                ],
            }
        })
        .collect();
    (cols, rows)
}

/// A `Table` (in `meta.k8s.io/<table_version>`) of `objects` of resource `r`.
pub fn table(
    r: Resource,
    objects: &[Value],
    resource_version: &str,
    include: IncludeObject,
    table_version: &str,
) -> Value {
    let (columns, cells) = columns_and_cells(r, objects);
    let rows: Vec<Value> = objects
        .iter()
        .zip(cells)
        .map(|(o, cells)| {
            let object = match include {
                IncludeObject::None => Value::Null,
                IncludeObject::Object => o.clone(),
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o.get("metadata").cloned().unwrap_or(json!({})),
                }),
            };
            let mut row = json!({"cells": cells});
            if !object.is_null() {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": format!("meta.k8s.io/{table_version}"),
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(310), "5m10s");
        assert_eq!(human_duration(3600 * 3), "3h");
        assert_eq!(human_duration(86400 * 2 + 3600 * 5), "2d5h");
        assert_eq!(human_duration(86400 * 400), "400d");
    }

    #[test]
    fn node_rows_show_readiness_and_roles() {
        let node = json!({"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "true"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let t = table(Resource::Nodes, &[node], "1", IncludeObject::None, "v1");
        assert_eq!(t["rows"][0]["cells"][1], "NotReady,SchedulingDisabled");
        assert_eq!(t["rows"][0]["cells"][2], "control-plane");
    }
}
