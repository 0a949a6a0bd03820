//! k0sctl's `Cluster` document, decoded as strictly as k0sctl decodes it.
//!
//! k0sctl splits its `--config` into YAML documents and decodes the `Cluster` one with
//! gopkg.in/yaml.v2's `UnmarshalStrict` (`pkg/manifest/reader.go`, `cmd/flags.go`): a key
//! that is no field of the Go type, or a key given twice, fails the run. Every struct here
//! therefore denies unknown fields. The field set is the one every release of the supported
//! range knows, which is k0sctl 0.19.0's (with rig v0.18.7's connections): later releases
//! only added fields (`metadata.user`, `spec.options`, `kubeletRootDir`, `useExistingK0s`,
//! `k0sInstallPath`, rig v2's `ssh.options`, ...), so a document using one of those fails on
//! 0.19.
//!
//! `spec.k0s.config` is a `dig.Mapping` in k0sctl: any mapping is accepted at this stage.
//! k0s's own checks come later, on the first controller (`k0s config validate --config`
//! in `phase/configure_k0s.go`), and are not modelled here.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use super::k0s_version::K0sVersion;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    /// Must be `k0sctl.k0sproject.io/v1beta1`.
    #[serde(default)]
    pub api_version: String,
    /// Must be `Cluster` (or `cluster`).
    #[serde(default)]
    pub kind: String,
    /// `name` only in 0.19 (`user` came later).
    #[serde(default)]
    pub metadata: Metadata,
    /// Hosts and k0s.
    #[serde(default)]
    pub spec: Spec,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The cluster name; k0sctl defaults it to `k0s-cluster`.
    #[serde(default)]
    pub name: String,
}

/// `spec` (0.19: `hosts` and `k0s`; `options` came later).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The hosts.
    #[serde(default)]
    pub hosts: Vec<Host>,
    /// k0s settings.
    #[serde(default)]
    pub k0s: K0s,
}

/// `spec.hosts[]`: k0sctl's host fields plus rig's inlined connection.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Host {
    /// rig's Go SSH client.
    #[serde(default)]
    pub ssh: Option<Ssh>,
    /// rig's system-ssh client.
    #[serde(default, rename = "openSSH")]
    pub open_ssh: Option<OpenSsh>,
    /// WinRM (Windows workers).
    #[serde(default, rename = "winRM")]
    pub win_rm: Option<WinRm>,
    /// The machine k0sctl runs on.
    #[serde(default)]
    pub localhost: Option<Localhost>,
    /// `controller`, `worker`, `controller+worker` or `single`.
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub reset: bool,
    #[serde(default)]
    pub private_interface: String,
    /// Must be an IP address when set.
    #[serde(default)]
    pub private_address: String,
    #[serde(default)]
    pub data_dir: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub upload_binary: bool,
    #[serde(default)]
    pub k0s_binary_path: String,
    #[serde(default, rename = "k0sDownloadURL")]
    pub k0s_download_url: String,
    /// Each must have balanced quotes.
    #[serde(default)]
    pub install_flags: Vec<String>,
    #[serde(default)]
    pub files: Vec<UploadFile>,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub hostname: String,
    /// Only valid on `controller+worker`.
    #[serde(default)]
    pub no_taints: bool,
    #[serde(default)]
    pub hooks: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// rig's `SSH` (v0.18.7 fields: no `options`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Ssh {
    #[serde(default)]
    pub address: String,
    /// Defaults to `root`.
    #[serde(default)]
    pub user: String,
    /// Defaults to 22 (also when given as 0).
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub key_path: Option<String>,
    #[serde(default)]
    pub host_key: String,
    #[serde(default)]
    pub bastion: Option<Box<Ssh>>,
}

/// rig's `OpenSSH`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct OpenSsh {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub key_path: Option<String>,
    #[serde(default)]
    pub config_path: Option<String>,
    /// `-o Key=Value` options; booleans become `yes`/`no`.
    #[serde(default)]
    pub options: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    pub disable_multiplexing: bool,
}

/// rig's `WinRM`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct WinRm {
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub port: i64,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "useHTTPS")]
    pub use_https: bool,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default, rename = "useNTLM")]
    pub use_ntlm: bool,
    #[serde(default, rename = "caCertPath")]
    pub ca_cert_path: String,
    #[serde(default, rename = "certPath")]
    pub cert_path: String,
    #[serde(default, rename = "keyPath")]
    pub key_path: String,
    #[serde(default, rename = "tlsServerName")]
    pub tls_server_name: String,
    #[serde(default)]
    pub bastion: Option<Ssh>,
}

/// rig's `Localhost`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localhost {
    /// Must be true; rig defaults it to true when absent.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// k0sctl's `UploadFile` (0.19 fields).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct UploadFile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub src: String,
    #[serde(default)]
    pub dst_dir: String,
    #[serde(default)]
    pub dst: String,
    #[serde(default)]
    pub perm: serde_yaml::Value,
    #[serde(default)]
    pub dir_perm: serde_yaml::Value,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub group: String,
}

/// `spec.k0s`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct K0s {
    /// Parsed while decoding, as k0sproject/version's `UnmarshalYAML` does: a malformed
    /// version fails the decoding, an empty one means "the latest".
    #[serde(default, deserialize_with = "k0s_version")]
    pub version: Option<K0sVersion>,
    /// `stable` or `latest` when set.
    #[serde(default)]
    pub version_channel: String,
    /// Needs k0s 1.22.2+k0s.2 or later.
    #[serde(default)]
    pub dynamic_config: bool,
    /// The k0s `ClusterConfig`, any mapping.
    #[serde(default)]
    pub config: Option<serde_yaml::Mapping>,
}

/// yaml.v2 decodes any scalar into Go's `string`, so `version: 1.33` is the text `1.33`.
fn k0s_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<K0sVersion>, D::Error> {
    let text = match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::Null => return Ok(None),
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        other => {
            return Err(serde::de::Error::custom(format!(
                "cannot unmarshal {other:?} into a version"
            )));
        }
    };
    if text.is_empty() {
        return Ok(None);
    }
    K0sVersion::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}
