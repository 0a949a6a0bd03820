//! The deployment configuration: the Bash tool's YAML schema, loaded as is (every upstream
//! example loads), validated up front with one-line errors naming the file, the line and the
//! key. Unknown keys are errors with a "did you mean".

mod diff;
#[cfg(test)]
mod doc_coverage;
pub mod duration_text;
mod lines;
pub mod presets;
mod raw;
mod schema;
mod validate;

pub use diff::changes;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use k0rdent_azure::naming::{AdminUserName, Location, ResourceGroupName, VmSize};
use k0rdent_core::fingerprint::Digest;
use k0rdent_core::role::NodeRole;
use serde::Serialize;

/// One problem with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`cluster.controllers.zones`), if the problem has one.
    pub key: Option<String>,
    /// Line in the file, when the problem is at a place in it (not for a missing key).
    pub line: Option<usize>,
    /// What is wrong and what is expected.
    pub message: String,
}

/// Why a configuration cannot be used. Displays one line per problem.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    /// The problems (at least one).
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.path.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if let Some(key) = &p.key {
                write!(f, ": {key}")?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(path: &Path, key: Option<&str>, line: Option<usize>, message: String) -> Self {
        ConfigError {
            path: path.to_path_buf(),
            problems: vec![Problem {
                key: key.map(str::to_owned),
                line,
                message,
            }],
        }
    }
}

pub use k0rdent_azure::spec::{EvictionPolicy as Eviction, ImageRef as Image, Priority};

/// Whether an image is for arm64 (by the Debian/Ubuntu SKU naming convention).
pub fn is_arm64(image: &Image) -> bool {
    let sku = image.sku.to_ascii_lowercase();
    sku.contains("arm64") || sku.contains("aarch64")
}

/// The `azure` section; `location` is its one required key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AzureSettings {
    /// Region, in the lowercase `name` form.
    pub location: Location,
    /// `azure.vm_image` (default `Debian:debian-12:12-gen2:latest`).
    pub image: Image,
    /// `azure.vm_priority` (default `Regular`).
    pub priority: Priority,
    /// For Spot VMs only (default `Deallocate`).
    pub eviction_policy: Eviction,
    /// Subscription (else from the environment or `az`).
    pub subscription_id: Option<String>,
    /// Resource group name (else derived from the cluster id).
    pub resource_group: Option<ResourceGroupName>,
    /// ARM endpoint (else `K0RDENT_ARM_ENDPOINT` or the public cloud).
    pub arm_endpoint: Option<String>,
    /// 30 to 4095 (default 64).
    pub os_disk_size_gb: u32,
    /// ARM write requests in flight at most.
    pub write_concurrency: usize,
}

/// The `network` section: three networks that must not overlap each other or k0s's pod and
/// service networks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSettings {
    /// The VNet address space.
    pub vnet: Ipv4Net,
    /// The subnet, inside the VNet.
    pub subnet: Ipv4Net,
    /// The WireGuard tunnel network.
    pub wireguard: Ipv4Net,
    /// A fixed WireGuard UDP port (else one is chosen once per deployment).
    pub wireguard_port: Option<u16>,
}

/// `cluster.controllers` or `cluster.workers`, with the role's `vm_sizing` size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeGroup {
    /// 1 to 100 controllers, 0 to 100 workers (default 1).
    pub count: u32,
    /// Availability zones, rotated over the nodes (empty: no zone).
    pub zones: Vec<u8>,
    /// `vm_sizing.<role>.size` (default `Standard_D2s_v5`).
    pub size: VmSize,
}

/// The `software` section (`software.k0s.version`, `software.k0rdent.*`).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Software {
    /// k0s version (`v1.33.2+k0s.0`).
    pub k0s_version: String,
    pub k0rdent_version: String,
    pub k0rdent_registry: String,
    pub k0rdent_namespace: String,
    /// `software.k0rdent.release_manifest`: the manifest (URL or file) with the `Release`
    /// object of `k0rdent_version`, applied to upgrade a running k0rdent.
    pub k0rdent_release_manifest: String,
}

/// The `timeouts` section with the Bash tool's defaults, in seconds in the file (minutes for
/// `vm_creation_minutes`). Only `vm_creation`, `wireguard_connect_wait`, `k0s_install_wait`
/// and `k0rdent_install_wait` set a phase's time limit ([`crate::deployment::time_limits`]);
/// the rest are checked and shown, not used yet.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    #[serde(serialize_with = "duration_text::serialize")]
    pub ssh_connect: Duration,
    #[serde(serialize_with = "duration_text::serialize")]
    pub ssh_command: Duration,
    #[serde(serialize_with = "duration_text::serialize")]
    pub k0s_install_wait: Duration,
    /// Waiting for k0rdent (helm `--timeout`).
    #[serde(serialize_with = "duration_text::serialize")]
    pub k0rdent_install_wait: Duration,
    /// Waiting for the tunnel.
    #[serde(serialize_with = "duration_text::serialize")]
    pub wireguard_connect_wait: Duration,
    /// `timeouts.vm_creation_minutes`: one VM's creation.
    #[serde(serialize_with = "duration_text::serialize")]
    pub vm_creation: Duration,
    #[serde(serialize_with = "duration_text::serialize")]
    pub vm_wait_check_interval: Duration,
    /// `timeouts.cloud_init_timeout`: cloud-init finishing after VM creation.
    #[serde(serialize_with = "duration_text::serialize")]
    pub cloud_init: Duration,
    #[serde(serialize_with = "duration_text::serialize")]
    pub cloud_init_check_interval: Duration,
    pub verification_retries: u32,
    /// Pause between verification attempts.
    #[serde(serialize_with = "duration_text::serialize")]
    pub verification_retry_delay: Duration,
}

/// The `kof` section: settings of the optional KOF phases, which this build plans but does
/// not run yet.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kof {
    /// Whether the KOF phases run.
    pub enabled: bool,
    pub version: String,
    pub istio_version: String,
    pub istio_namespace: String,
    pub mothership_namespace: String,
    pub storage_class: String,
    /// Helm install attempts for the mothership.
    pub install_retries: u32,
    /// Pause between those attempts.
    #[serde(serialize_with = "duration_text::serialize")]
    pub retry_delay: Duration,
    /// Regional cluster name ("" = derived from the cluster id).
    pub regional_cluster_name: String,
    pub regional_domain: String,
    /// Admin e-mail for certificates.
    pub admin_email: String,
    /// Defaults to `azure.location`.
    pub regional_location: String,
    /// The k0rdent cluster template of the regional cluster (default `azure-standalone-cp-1-0-8`).
    pub template: String,
    /// The k0rdent credential the regional cluster uses (default `azure-cluster-credential`).
    pub credential: String,
    pub cp_instance_size: String,
    pub worker_instance_size: String,
    /// Root volume size in GB.
    pub root_volume_size: u32,
}

/// A validated configuration: every section checked, its defaults filled in.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Owner tag value, if set.
    pub owner: Option<String>,
    pub description: Option<String>,
    pub azure: AzureSettings,
    pub network: NetworkSettings,
    /// `cluster.controllers`, sized by `vm_sizing.controller.size`.
    pub controllers: NodeGroup,
    /// `cluster.workers`, sized by `vm_sizing.worker.size`.
    pub workers: NodeGroup,
    /// Admin user on the VMs.
    pub ssh_user: AdminUserName,
    pub software: Software,
    pub timeouts: Timeouts,
    pub kof: Kof,
    /// Whether child clusters on Azure are set up.
    pub azure_children: bool,
    /// Whether the Azure CSI driver is installed.
    pub azure_csi: bool,
    /// External tool paths (`tools.k0sctl`, `tools.helm`, `tools.kubectl`).
    pub tools: BTreeMap<String, PathBuf>,
}

/// A planned node: name, role, zone and size.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodePlan {
    /// `k0s-controller-1`, `k0s-worker-1`, ...
    pub name: String,
    /// What the node does.
    pub role: NodeRole,
    /// Zone, rotating through the group's zones.
    pub zone: Option<u8>,
    pub size: VmSize,
}

impl Config {
    /// The nodes in order: controllers, then workers; zones rotate per role.
    pub fn nodes(&self) -> Vec<NodePlan> {
        let mut v = Vec::new();
        for (group, role) in [
            (&self.controllers, NodeRole::Controller),
            (&self.workers, NodeRole::Worker),
        ] {
            for i in 0..group.count as usize {
                v.push(NodePlan {
                    name: format!("k0s-{role}-{}", i + 1),
                    role,
                    zone: (!group.zones.is_empty()).then(|| group.zones[i % group.zones.len()]),
                    size: group.size.clone(),
                });
            }
        }
        v
    }
}

/// A loaded configuration with what the state records about it.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    /// Digest of the file's bytes.
    pub fingerprint: Digest,
    /// Warnings (unusual but accepted values).
    pub warnings: Vec<String>,
}

/// Reads, parses and validates a configuration file.
///
/// # Errors
/// [`ConfigError`] with one problem per bad key, each with its line when the key is in the file.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::one(
            path,
            None,
            None,
            format!("cannot read the configuration: {e}; check --config"),
        )
    })?;
    let (config, warnings) = parse(path, &bytes)?;
    Ok(Loaded {
        path: path.to_path_buf(),
        config,
        fingerprint: Digest::of_bytes(&bytes),
        warnings,
    })
}

/// Parses and validates configuration bytes (`path` is only used in messages).
///
/// # Errors
/// [`ConfigError`] as for [`load`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<(Config, Vec<String>), ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ConfigError::one(path, None, None, format!("not UTF-8 text: {e}")))?;
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        ConfigError::one(
            path,
            None,
            line,
            format!("not valid YAML: {}", strip_location(&e.to_string())),
        )
    })?;
    let value = match value {
        serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
        serde_yaml::Value::Mapping(m) => serde_yaml::Value::Mapping(m),
        _ => {
            return Err(ConfigError::one(
                path,
                None,
                Some(1),
                "the configuration must be a YAML mapping of sections (metadata, azure, network, ...)".into(),
            ));
        }
    };
    let mut problems: Vec<Problem> = schema::unknown_keys(&value)
        .into_iter()
        .map(|u| {
            let parts: Vec<&str> = u.path.iter().map(String::as_str).collect();
            Problem {
                key: Some(u.dotted()),
                line: lines::line_of(text, &parts),
                message: u.message(),
            }
        })
        .collect();
    let de = serde_yaml::Deserializer::from_str(text);
    let raw: raw::Raw = match serde_path_to_error::deserialize(de) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.inner().location().map(|l| l.line());
            let key = e.path().to_string();
            let msg = strip_location(&e.inner().to_string());
            let msg = msg.strip_prefix(&format!("{key}: ")).unwrap_or(&msg);
            problems.push(Problem {
                key: Some(key),
                line,
                message: plain_types(msg),
            });
            return Err(ConfigError {
                path: path.to_path_buf(),
                problems,
            });
        }
    };
    match validate::validate(path, raw) {
        Ok(ok) if problems.is_empty() => Ok(ok),
        Ok(_) => Err(ConfigError {
            path: path.to_path_buf(),
            problems,
        }),
        Err(e) => {
            problems.extend(e.problems.into_iter().map(|mut p| {
                if p.line.is_none()
                    && let Some(key) = &p.key
                {
                    p.line = lines::line_of(text, &key.split('.').collect::<Vec<_>>());
                }
                p
            }));
            Err(ConfigError {
                path: path.to_path_buf(),
                problems,
            })
        }
    }
}

/// Says "an integer" rather than "i64" and "a mapping" rather than "struct Azure".
fn plain_types(msg: &str) -> String {
    let mut out = msg.to_owned();
    for (rust, plain) in [
        ("expected i64", "expected an integer"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a port number"),
        ("expected usize", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
    ] {
        out = out.replace(rust, plain);
    }
    if let Some(i) = out.find("expected struct ") {
        out.replace_range(i.., "expected a mapping of keys");
    }
    out
}

/// serde_yaml appends " at line L column C"; the line is reported separately.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
