//! The configuration file as written: the Bash tool's YAML schema, every key optional here so
//! defaults and validation can name what is missing or wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// A scalar the Bash tool's files write either as a number or as a string ("32", 1500).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum NumOrText {
    Num(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Raw {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub azure: Azure,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub vm_sizing: VmSizing,
    #[serde(default)]
    pub cluster: Cluster,
    #[serde(default)]
    pub ssh: Ssh,
    #[serde(default)]
    pub software: Software,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub kof: Kof,
    #[serde(default)]
    pub azure_children: Toggle,
    #[serde(default)]
    pub azure_csi: Toggle,
    #[serde(default)]
    pub tools: BTreeMap<String, PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Metadata {
    // Accepted and type-checked for compatibility; not used.
    #[allow(dead_code)]
    pub version: Option<String>,
    pub schema: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Azure {
    pub location: Option<String>,
    pub vm_image: Option<String>,
    pub vm_priority: Option<String>,
    pub eviction_policy: Option<String>,
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    pub arm_endpoint: Option<String>,
    pub os_disk_size_gb: Option<u32>,
    pub write_concurrency: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Network {
    pub vnet_prefix: Option<String>,
    pub subnet_prefix: Option<String>,
    pub wireguard_network: Option<String>,
    pub wireguard_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct VmSizing {
    #[serde(default)]
    pub controller: Size,
    #[serde(default)]
    pub worker: Size,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Size {
    pub size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Cluster {
    #[serde(default)]
    pub controllers: NodeGroup,
    #[serde(default)]
    pub workers: NodeGroup,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NodeGroup {
    pub count: Option<i64>,
    pub zones: Option<Vec<i64>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Ssh {
    pub username: Option<String>,
    // The Bash tool ignored it too (the key comment is always the cluster id).
    #[allow(dead_code)]
    pub key_comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Software {
    #[serde(default)]
    pub k0s: K0s,
    #[serde(default)]
    pub k0rdent: K0rdent,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct K0s {
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct K0rdent {
    pub version: Option<String>,
    pub registry: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Timeouts {
    pub ssh_connect: Option<i64>,
    pub ssh_command: Option<i64>,
    pub k0s_install_wait: Option<i64>,
    pub k0rdent_install_wait: Option<i64>,
    pub wireguard_connect_wait: Option<i64>,
    pub vm_creation_minutes: Option<i64>,
    pub vm_wait_check_interval: Option<i64>,
    pub cloud_init_timeout: Option<i64>,
    pub cloud_init_check_interval: Option<i64>,
    pub verification_retries: Option<i64>,
    pub verification_retry_delay: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Toggle {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Kof {
    pub enabled: Option<bool>,
    pub version: Option<String>,
    #[serde(default)]
    pub istio: Istio,
    #[serde(default)]
    pub mothership: Mothership,
    #[serde(default)]
    pub regional: Regional,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Istio {
    pub version: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Mothership {
    pub namespace: Option<String>,
    pub storage_class: Option<String>,
    pub install_retries: Option<i64>,
    pub retry_delay_seconds: Option<i64>,
    // Free-form, passed through to KOF's chart later; not interpreted here.
    #[allow(dead_code)]
    pub collectors: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Regional {
    pub cluster_name: Option<String>,
    pub domain: Option<String>,
    pub admin_email: Option<String>,
    pub location: Option<String>,
    pub template: Option<String>,
    pub credential: Option<String>,
    pub cp_instance_size: Option<String>,
    pub worker_instance_size: Option<String>,
    pub root_volume_size: Option<NumOrText>,
}

/// Every key the schema knows, as dotted paths (`*` matches any key under `tools` and
/// `kof.mothership.collectors`). Anything else is warned about and ignored.
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "metadata",
    "metadata.version",
    "metadata.schema",
    "metadata.description",
    "metadata.owner",
    "azure",
    "azure.location",
    "azure.vm_image",
    "azure.vm_priority",
    "azure.eviction_policy",
    "azure.subscription_id",
    "azure.resource_group",
    "azure.arm_endpoint",
    "azure.os_disk_size_gb",
    "azure.write_concurrency",
    "network",
    "network.vnet_prefix",
    "network.subnet_prefix",
    "network.wireguard_network",
    "network.wireguard_port",
    "vm_sizing",
    "vm_sizing.controller",
    "vm_sizing.controller.size",
    "vm_sizing.worker",
    "vm_sizing.worker.size",
    "cluster",
    "cluster.controllers",
    "cluster.controllers.count",
    "cluster.controllers.zones",
    "cluster.workers",
    "cluster.workers.count",
    "cluster.workers.zones",
    "ssh",
    "ssh.username",
    "ssh.key_comment",
    "software",
    "software.k0s",
    "software.k0s.version",
    "software.k0rdent",
    "software.k0rdent.version",
    "software.k0rdent.registry",
    "software.k0rdent.namespace",
    "timeouts",
    "timeouts.ssh_connect",
    "timeouts.ssh_command",
    "timeouts.k0s_install_wait",
    "timeouts.k0rdent_install_wait",
    "timeouts.wireguard_connect_wait",
    "timeouts.vm_creation_minutes",
    "timeouts.vm_wait_check_interval",
    "timeouts.cloud_init_timeout",
    "timeouts.cloud_init_check_interval",
    "timeouts.verification_retries",
    "timeouts.verification_retry_delay",
    "kof",
    "kof.enabled",
    "kof.version",
    "kof.istio",
    "kof.istio.version",
    "kof.istio.namespace",
    "kof.mothership",
    "kof.mothership.namespace",
    "kof.mothership.storage_class",
    "kof.mothership.install_retries",
    "kof.mothership.retry_delay_seconds",
    "kof.mothership.collectors",
    "kof.mothership.collectors.*",
    "kof.regional",
    "kof.regional.cluster_name",
    "kof.regional.domain",
    "kof.regional.admin_email",
    "kof.regional.location",
    "kof.regional.template",
    "kof.regional.credential",
    "kof.regional.cp_instance_size",
    "kof.regional.worker_instance_size",
    "kof.regional.root_volume_size",
    "azure_children",
    "azure_children.enabled",
    "azure_csi",
    "azure_csi.enabled",
    "tools",
    "tools.*",
];

/// Dotted paths of keys in `v` that the schema does not know.
pub(crate) fn unknown_keys(v: &serde_yaml::Value) -> Vec<String> {
    fn walk(v: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
        let serde_yaml::Value::Mapping(m) = v else {
            return;
        };
        for (k, child) in m {
            let key = match k {
                serde_yaml::Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            let path = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            let wildcard = format!("{prefix}.*");
            if KNOWN_KEYS.contains(&path.as_str()) {
                if !KNOWN_KEYS.contains(&format!("{path}.*").as_str()) {
                    walk(child, &path, out);
                }
            } else if !KNOWN_KEYS.contains(&wildcard.as_str()) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}
