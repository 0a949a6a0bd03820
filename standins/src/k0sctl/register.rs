//! What a kubelet does when k0s starts it: register its `Node` and report it `Ready`, here
//! through the cluster's Kubernetes REST API (`POST /api/v1/nodes`, then `PUT` on the
//! `status` subresource with the `resourceVersion` just read, as the API conventions define
//! optimistic concurrency), authenticated by the kubeconfig named by
//! `K0RDENT_STANDIN_KUBECONFIG` (its current context: server, CA, client certificate and key
//! or a bearer token).

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use super::failure::Failure;

/// A client of the cluster's API for node objects.
#[derive(Debug, Clone)]
pub struct NodeApi {
    server: String,
    client: reqwest::blocking::Client,
    token: Option<String>,
}

fn field<'a>(v: &'a serde_yaml::Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(serde_yaml::Value::as_str)
}

/// Inline `<key>-data` (base64) or the file named by `<key>`.
fn material(v: &serde_yaml::Value, key: &str) -> Result<Option<Vec<u8>>, Failure> {
    if let Some(data) = field(v, &format!("{key}-data")) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| Failure::Api(format!("kubeconfig {key}-data is not base64: {e}")))?;
        return Ok(Some(bytes));
    }
    match field(v, key) {
        Some(path) => std::fs::read(path)
            .map(Some)
            .map_err(|e| Failure::io(format!("read {path}"), e)),
        None => Ok(None),
    }
}

/// The entry named `name` in a kubeconfig list (`clusters`, `users`, `contexts`).
pub(crate) fn named<'a>(
    doc: &'a serde_yaml::Value,
    list: &str,
    name: &str,
) -> Option<&'a serde_yaml::Value> {
    doc.get(list)?
        .as_sequence()?
        .iter()
        .find(|e| field(e, "name") == Some(name))
}

impl NodeApi {
    /// Reads the kubeconfig at `path` and prepares a TLS client for its current context.
    ///
    /// # Errors
    /// The file is unreadable or lacks a context, cluster, server or CA.
    pub fn from_kubeconfig(path: &Path) -> Result<NodeApi, Failure> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::io(format!("read {}", path.display()), e))?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| Failure::Api(format!("{}: {e}", path.display())))?;
        let bad = |what: &str| Failure::Api(format!("{}: {what}", path.display()));
        let current = field(&doc, "current-context").ok_or_else(|| bad("no current-context"))?;
        let ctx = named(&doc, "contexts", current)
            .and_then(|c| c.get("context"))
            .ok_or_else(|| bad("current context not found"))?;
        let cluster = field(ctx, "cluster")
            .and_then(|n| named(&doc, "clusters", n))
            .and_then(|c| c.get("cluster"))
            .ok_or_else(|| bad("cluster of the current context not found"))?;
        let user = field(ctx, "user")
            .and_then(|n| named(&doc, "users", n))
            .and_then(|u| u.get("user"));
        let server = field(cluster, "server")
            .ok_or_else(|| bad("no server"))?
            .trim_end_matches('/')
            .to_owned();
        let ca = material(cluster, "certificate-authority")?
            .ok_or_else(|| bad("no certificate-authority"))?;
        let ca = reqwest::Certificate::from_pem(&ca).map_err(|e| bad(&e.to_string()))?;
        let mut builder = reqwest::blocking::Client::builder()
            .tls_certs_only([ca])
            .no_proxy()
            .timeout(std::time::Duration::from_secs(20));
        let mut token = None;
        if let Some(u) = user {
            if let (Some(cert), Some(key)) = (
                material(u, "client-certificate")?,
                material(u, "client-key")?,
            ) {
                let mut pem = cert;
                pem.push(b'\n');
                pem.extend(key);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| bad(&e.to_string()))?;
                builder = builder.identity(id);
            }
            token = field(u, "token").map(str::to_owned);
        }
        let client = builder.build().map_err(|e| bad(&e.to_string()))?;
        Ok(NodeApi {
            server,
            client,
            token,
        })
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Failure> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.server))
            .header("Accept", "application/json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .map_err(|e| Failure::Api(format!("{method} {path}: {e}")))?;
        let code = resp.status().as_u16();
        let text = resp
            .text()
            .map_err(|e| Failure::Api(format!("{method} {path}: {e}")))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((code, value))
    }

    fn expect(code: u16, value: &Value, what: &str) -> Result<(), Failure> {
        if (200..300).contains(&code) {
            Ok(())
        } else {
            let msg = value
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| value.to_string(), str::to_owned);
            Err(Failure::Api(format!("{what}: HTTP {code}: {msg}")))
        }
    }

    /// Registers node `name` if absent and marks it `Ready`; `Ok(false)` when it already was.
    ///
    /// # Errors
    /// [`Failure::Api`] with the API's status and message.
    pub fn ensure_ready(
        &self,
        name: &str,
        address: &str,
        role: &str,
        version: &str,
    ) -> Result<bool, Failure> {
        let path = format!("/api/v1/nodes/{name}");
        let (code, mut node) = self.send(reqwest::Method::GET, &path, None)?;
        if code == 200 && is_ready(&node) {
            return Ok(false);
        }
        if code == 404 {
            let mut labels = json!({
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            });
            if role != "worker" {
                labels["node-role.kubernetes.io/control-plane"] = json!("true");
            }
            let new = json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": { "name": name, "labels": labels },
                "spec": {},
            });
            let (c, v) = self.send(reqwest::Method::POST, "/api/v1/nodes", Some(&new))?;
            Self::expect(c, &v, &format!("create node {name}"))?;
            node = v;
        } else {
            Self::expect(code, &node, &format!("get node {name}"))?;
        }
        let now = now_rfc3339();
        let kubelet = version.split('+').next().unwrap_or(version);
        node["status"] = json!({
            "conditions": [{
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }],
            "addresses": [
                { "type": "InternalIP", "address": address },
                { "type": "Hostname", "address": name },
            ],
            "nodeInfo": {
                "kubeletVersion": format!("{kubelet}+k0s"),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.27",
                "osImage": "Ubuntu 24.04 LTS",
                "kernelVersion": "6.8.0",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        });
        let (c, v) = self.send(reqwest::Method::PUT, &format!("{path}/status"), Some(&node))?;
        Self::expect(c, &v, &format!("update node {name} status"))?;
        Ok(true)
    }

    /// Deletes node `name` (k0sctl removes a reset worker's node); absent is fine.
    ///
    /// # Errors
    /// [`Failure::Api`] for any other refusal.
    pub fn delete_node(&self, name: &str) -> Result<(), Failure> {
        let (code, v) = self.send(
            reqwest::Method::DELETE,
            &format!("/api/v1/nodes/{name}"),
            None,
        )?;
        if code == 404 {
            return Ok(());
        }
        Self::expect(code, &v, &format!("delete node {name}"))
    }
}

fn is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// RFC 3339 UTC, seconds precision, as Kubernetes writes times.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
