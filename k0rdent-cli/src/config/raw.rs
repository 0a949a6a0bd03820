//! The configuration file as written: the Bash tool's YAML schema, every key optional here so
//! defaults and validation can name what is missing or wrong. Unknown keys are found by
//! [`super::schema`] (serde ignores them here; unit tests deny them, so a key the schema lists
//! but these types do not read fails a test instead of being silently ignored). In unit tests
//! they also derive a JSON Schema, from which `doc_coverage` lists every key that
//! `docs/configuration.md` must document.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// A scalar the Bash tool's files write either as a number or as a string ("32", 1500).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[serde(untagged)]
pub(crate) enum NumOrText {
    Num(i64),
    Text(String),
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Metadata {
    // Accepted and type-checked for compatibility; not used.
    #[allow(dead_code)]
    pub version: Option<String>,
    pub schema: Option<String>,
    pub description: Option<String>,
    pub owner: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Network {
    pub vnet_prefix: Option<String>,
    pub subnet_prefix: Option<String>,
    pub wireguard_network: Option<String>,
    pub wireguard_port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct VmSizing {
    #[serde(default)]
    pub controller: Size,
    #[serde(default)]
    pub worker: Size,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Size {
    pub size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Cluster {
    #[serde(default)]
    pub controllers: NodeGroup,
    #[serde(default)]
    pub workers: NodeGroup,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct NodeGroup {
    pub count: Option<i64>,
    pub zones: Option<Vec<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Ssh {
    pub username: Option<String>,
    // The Bash tool ignored it too (the key comment is always the cluster id).
    #[allow(dead_code)]
    pub key_comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Software {
    #[serde(default)]
    pub k0s: K0s,
    #[serde(default)]
    pub k0rdent: K0rdent,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct K0s {
    pub version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct K0rdent {
    pub version: Option<String>,
    pub registry: Option<String>,
    pub namespace: Option<String>,
    pub release_manifest: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Toggle {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
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
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Istio {
    pub version: Option<String>,
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
pub(crate) struct Mothership {
    pub namespace: Option<String>,
    pub storage_class: Option<String>,
    pub install_retries: Option<i64>,
    pub retry_delay_seconds: Option<i64>,
    // Free-form, passed through to KOF's chart later; not interpreted here.
    #[allow(dead_code)]
    #[cfg_attr(test, schemars(with = "Option<serde_json::Value>"))]
    pub collectors: Option<serde_yaml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
#[cfg_attr(test, serde(deny_unknown_fields))]
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
