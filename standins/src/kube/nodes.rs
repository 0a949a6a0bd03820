//! Nodes as a kubelet would register them, and the switches tests flip on them.

use serde_json::{Value, json};

use super::FakeKube;
use super::resources::Resource;
use super::status::ApiError;
use super::store::{Part, now_rfc3339};

/// What a test says about a node; [`NodeSpec::to_object`] turns it into the `Node` a
/// kubelet would have registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Node name (k0s uses the hostname).
    pub name: String,
    /// Whether the `Ready` condition is `True` (else `False`, reason `KubeletNotReady`).
    pub ready: bool,
    /// Roles, each becoming a `node-role.kubernetes.io/<role>` label (`control-plane`).
    pub roles: Vec<String>,
    /// `status.nodeInfo.kubeletVersion`.
    pub kubelet_version: String,
    /// The `InternalIP` address, if any.
    pub internal_ip: Option<String>,
}

impl NodeSpec {
    /// A Ready worker without roles running kubelet `v1.32.4+k0s`.
    pub fn new(name: &str) -> Self {
        NodeSpec {
            name: name.into(),
            ready: true,
            roles: Vec::new(),
            kubelet_version: "v1.32.4+k0s".into(),
            internal_ip: None,
        }
    }

    /// Sets readiness.
    #[must_use]
    pub fn ready(mut self, ready: bool) -> Self {
        self.ready = ready;
        self
    }

    /// Adds a role label.
    #[must_use]
    pub fn role(mut self, role: &str) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Sets the internal address.
    #[must_use]
    pub fn internal_ip(mut self, ip: &str) -> Self {
        self.internal_ip = Some(ip.into());
        self
    }

    /// Sets the kubelet version.
    #[must_use]
    pub fn kubelet_version(mut self, version: &str) -> Self {
        self.kubelet_version = version.into();
        self
    }

    /// The `Node` object.
    pub fn to_object(&self) -> Value {
        let mut labels = serde_json::Map::new();
        for (k, v) in [
            ("kubernetes.io/hostname", self.name.as_str()),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("beta.kubernetes.io/os", "linux"),
            ("beta.kubernetes.io/arch", "amd64"),
        ] {
            labels.insert(k.into(), json!(v));
        }
        for role in &self.roles {
            labels.insert(format!("node-role.kubernetes.io/{role}"), json!("true"));
        }
        let mut addresses = vec![json!({"type": "Hostname", "address": self.name})];
        if let Some(ip) = &self.internal_ip {
            addresses.insert(0, json!({"type": "InternalIP", "address": ip}));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {},
            "status": {
                "conditions": [ready_condition(self.ready)],
                "addresses": addresses,
                "nodeInfo": {
                    "kubeletVersion": self.kubelet_version,
                    "kubeProxyVersion": self.kubelet_version,
                    "osImage": "Ubuntu 24.04.2 LTS",
                    "kernelVersion": "6.8.0-1021-azure",
                    "containerRuntimeVersion": "containerd://1.7.27",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        })
    }
}

fn ready_condition(ready: bool) -> Value {
    let now = now_rfc3339();
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        (
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false",
        )
    };
    json!({"type": "Ready", "status": status, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now})
}

impl FakeKube {
    /// Registers a node, or replaces an existing one's labels and status (as a kubelet
    /// re-registering would).
    pub fn put_node(&self, node: &NodeSpec) -> Result<Value, ApiError> {
        let object = node.to_object();
        if self.get(Resource::Nodes, None, &node.name).is_none() {
            return self.create(Resource::Nodes, None, object);
        }
        self.merge_patch(
            Resource::Nodes,
            None,
            &node.name,
            json!({"metadata": {"labels": object["metadata"]["labels"]}}),
            Part::Main,
        )?;
        self.merge_patch(
            Resource::Nodes,
            None,
            &node.name,
            json!({"status": object["status"]}),
            Part::Status,
        )
    }

    /// Flips a node's `Ready` condition, as its kubelet (or the node controller) would.
    pub fn set_node_ready(&self, name: &str, ready: bool) -> Result<Value, ApiError> {
        let node = self
            .get(Resource::Nodes, None, name)
            .ok_or_else(|| ApiError::not_found(&Resource::Nodes.def(), name))?;
        let mut conditions: Vec<Value> = node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter(|c| c["type"] != "Ready")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        conditions.push(ready_condition(ready));
        self.merge_patch(
            Resource::Nodes,
            None,
            name,
            json!({"status": {"conditions": conditions}}),
            Part::Status,
        )
    }

    /// All nodes.
    pub fn nodes(&self) -> Vec<Value> {
        self.list(Resource::Nodes, None, "").unwrap_or_default()
    }
}
