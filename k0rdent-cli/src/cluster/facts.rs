//! What the cluster layer reads, parsed from the JSON the real tools print: `kubectl get
//! nodes -o json` (a `v1` `NodeList`), `kubectl get management kcm -o json` (k0rdent's
//! cluster-scoped `Management`, `k0rdent.mirantis.com/v1beta1`) and `helm list -a -o json`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Kubernetes node as `install_k0s` judges it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct K8sNode {
    /// `metadata.name` (k0s registers the host name, our VM name).
    pub name: String,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
}

/// Why JSON from a tool could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct ParseError {
    /// Which output.
    pub what: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

fn condition(obj: &Value, kind: &str) -> Option<String> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .map(str::to_owned)
}

/// Parses a `NodeList`.
///
/// # Errors
/// [`ParseError`] when it is not a list.
pub fn parse_nodes(json: &str) -> Result<Vec<K8sNode>, ParseError> {
    let err = |detail: String| ParseError {
        what: "kubectl get nodes -o json",
        detail,
    };
    let v: Value = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
    let items = v["items"]
        .as_array()
        .ok_or_else(|| err("no items".to_owned()))?;
    Ok(items
        .iter()
        .map(|n| K8sNode {
            name: n["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            ready: condition(n, "Ready").as_deref() == Some("True"),
            kubelet_version: n
                .pointer("/status/nodeInfo/kubeletVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect())
}

/// k0rdent's `Management` object as readiness needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Management {
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// The `Ready` condition's message, for a diagnosis.
    pub message: Option<String>,
    /// `status.observedGeneration == metadata.generation`: the controller has seen the spec.
    pub observed: bool,
    /// `spec.release`: the Release the object asks for.
    pub spec_release: Option<String>,
    /// `status.release`: the Release it runs.
    pub status_release: Option<String>,
}

/// Parses one `Management` object.
///
/// # Errors
/// [`ParseError`] when it is not an object.
pub fn parse_management(json: &str) -> Result<Management, ParseError> {
    let v: Value = serde_json::from_str(json).map_err(|e| ParseError {
        what: "kubectl get management -o json",
        detail: e.to_string(),
    })?;
    let ready_cond = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned());
    let generation = v.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = v
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    Ok(Management {
        ready: ready_cond.as_ref().is_some_and(|c| c["status"] == "True"),
        message: ready_cond
            .as_ref()
            .and_then(|c| c["message"].as_str())
            .map(str::to_owned),
        observed: generation.is_some() && generation == observed,
        spec_release: v
            .pointer("/spec/release")
            .and_then(Value::as_str)
            .map(str::to_owned),
        status_release: v
            .pointer("/status/release")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The `Release` name k0rdent gives a kcm version: `kcm-` and the version with `.` and `+`
/// turned into `-` (`1.4.0` → `kcm-1-4-0`).
pub fn release_name(version: &str) -> String {
    format!(
        "kcm-{}",
        version.trim_start_matches('v').replace(['.', '+'], "-")
    )
}

/// One release as `helm list -o json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmRelease {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub namespace: String,
    /// Helm prints it as a string.
    pub revision: String,
    /// `deployed`, `failed`, `pending-install`, `pending-upgrade`, `pending-rollback`,
    /// `superseded`, `uninstalling`, `uninstalled`, `unknown`.
    pub status: String,
    /// `kcm-1.4.0`.
    pub chart: String,
    #[allow(missing_docs)]
    #[serde(default)]
    pub app_version: String,
}

/// Parses `helm list -o json`.
///
/// # Errors
/// [`ParseError`] when it is not a list of releases.
pub fn parse_helm_list(json: &str) -> Result<Vec<HelmRelease>, ParseError> {
    serde_json::from_str(json.trim()).map_err(|e| ParseError {
        what: "helm list -o json",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_ready_only_with_a_true_ready_condition() {
        let list = r#"{"apiVersion":"v1","kind":"NodeList","metadata":{"resourceVersion":"9"},"items":[
          {"metadata":{"name":"k0s-worker-1","labels":{}},"status":{"conditions":[
            {"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True","reason":"KubeletReady"}],
            "nodeInfo":{"kubeletVersion":"v1.33.2+k0s"}}},
          {"metadata":{"name":"k0s-worker-2"},"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}}]}"#;
        let n = parse_nodes(list).unwrap();
        assert_eq!(n.len(), 2);
        assert!(n[0].ready && !n[1].ready);
        assert_eq!(n[0].kubelet_version, "v1.33.2+k0s");
        assert!(parse_nodes(r#"{"kind":"Status"}"#).is_err());
    }

    #[test]
    fn management_readiness_needs_ready_observed_and_the_release() {
        let m = parse_management(r#"{"apiVersion":"k0rdent.mirantis.com/v1beta1","kind":"Management",
          "metadata":{"name":"kcm","generation":2},"spec":{"release":"kcm-1-4-0"},
          "status":{"observedGeneration":1,"release":"kcm-1-3-0","conditions":[{"type":"Ready","status":"True"}]}}"#).unwrap();
        assert!(m.ready && !m.observed);
        assert_eq!(m.status_release.as_deref(), Some("kcm-1-3-0"));
        assert_eq!(release_name("1.4.0"), "kcm-1-4-0");
        assert_eq!(release_name("v1.1.0+rc.1"), "kcm-1-1-0-rc-1");
    }

    #[test]
    fn helm_lists_parse_with_string_revisions() {
        let l = parse_helm_list(r#"[{"name":"kcm","namespace":"kcm-system","revision":"3","updated":"2025-01-01 00:00:00.0 +0000 UTC","status":"pending-install","chart":"kcm-1.4.0","app_version":"1.4.0"}]"#).unwrap();
        assert_eq!(l[0].status, "pending-install");
        assert_eq!(l[0].revision, "3");
        assert_eq!(parse_helm_list("[]\n").unwrap(), vec![]);
    }
}
