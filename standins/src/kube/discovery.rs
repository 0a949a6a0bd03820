//! Discovery documents: the legacy ones (`APIVersions`, `APIGroupList`, `APIGroup`,
//! `APIResourceList`) and the aggregated `APIGroupDiscoveryList` kubectl 1.30+ asks for
//! first, in the `apidiscovery.k8s.io` version its `Accept` header names.

use serde_json::{Value, json};

use super::resources::{Resource, in_group, named_groups};

/// The media type parameters of aggregated discovery, as client-go checks them on the
/// response's `Content-Type`.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// `/api` (legacy): the core group's versions.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_entry(group: &str, version: &str) -> Value {
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
}

/// `/apis` (legacy): every named group.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = named_groups()
        .into_iter()
        .map(|(g, v)| group_entry(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: one named group, if served.
pub fn api_group(group: &str) -> Option<Value> {
    named_groups()
        .into_iter()
        .find(|(g, _)| *g == group)
        .map(|(g, v)| {
            let mut entry = group_entry(g, v);
            entry["kind"] = json!("APIGroup");
            entry["apiVersion"] = json!("v1");
            entry
        })
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources of one group version, if served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources = in_group(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for r in resources {
        let d = r.def();
        entries.push(json!({
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": r.verbs(),
            "shortNames": d.short_names,
        }));
        if d.status_subresource {
            entries.push(json!({
                "name": format!("{}/status", d.plural),
                "singularName": "",
                "namespaced": d.namespaced,
                "kind": d.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list =
        json!({"kind": "APIResourceList", "groupVersion": group_version, "resources": entries});
    if !group.is_empty() {
        list["apiVersion"] = json!("v1");
    }
    Some(list)
}

fn discovery_resource(r: Resource) -> Value {
    let d = r.def();
    let kind = json!({"group": d.group, "version": d.version, "kind": d.kind});
    let mut entry = json!({
        "resource": d.plural,
        "responseKind": kind,
        "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": d.singular,
        "verbs": r.verbs(),
    });
    if !d.short_names.is_empty() {
        entry["shortNames"] = json!(d.short_names);
    }
    if d.status_subresource {
        entry["subresources"] = json!([{"subresource": "status", "responseKind": kind, "verbs": ["get", "patch", "update"]}]);
    }
    entry
}

fn discovery_group(name: Option<&str>, version: &str, group: &str) -> Value {
    let resources: Vec<Value> = in_group(group, version)
        .into_iter()
        .map(discovery_resource)
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if let Some(name) = name {
        metadata["name"] = json!(name);
    }
    json!({
        "metadata": metadata,
        "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
    })
}

/// Aggregated discovery for `/api` (`legacy == true`, the core group) or `/apis`, in
/// `apidiscovery.k8s.io/<discovery_version>`.
pub fn aggregated(legacy: bool, discovery_version: &str) -> Value {
    let items: Vec<Value> = if legacy {
        vec![discovery_group(None, "v1", "")]
    } else {
        named_groups()
            .into_iter()
            .map(|(g, v)| discovery_group(Some(g), v, g))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{discovery_version}"),
        "metadata": {},
        "items": items,
    })
}
