//! The k0sctl `Cluster` document (`k0sctl.k0sproject.io/v1beta1`) that `install_k0s` applies,
//! built from recorded state on every run.
//!
//! Roles come in per host from the state and are rendered as given: k0sctl refuses a role
//! change, and a deployment imported from the Bash tool keeps that tool's roles. Only a new
//! deployment asks [`roles_for`].
//!
//! # How the hosts are reached: `openSSH`, not `ssh`
//!
//! A v1beta1 host inlines rig's `Connection`, one of `ssh`, `openSSH`, `winRM` or
//! `localhost`. Read in k0sproject/rig (v0.18.7 to v0.21.11, used by k0sctl 0.19 to 0.31, and
//! v2.1.1, used by 0.32):
//!
//! - rig's own Go client (`ssh:`) verifies host keys in `wrapCallback`
//!   (`pkg/ssh/hostkey/callbacks.go`, v2 `protocol/ssh/hostkey/callbacks.go`): a key that is
//!   not in the known-hosts file is *appended to it and accepted*, whatever
//!   `StrictHostKeyChecking` says; a mismatch is accepted when the user's `~/.ssh/config`
//!   sets `StrictHostKeyChecking no` for the address (`isPermissive`); `SSH_KNOWN_HOSTS` picks
//!   the file, and an empty `SSH_KNOWN_HOSTS` turns checking off. Its `ssh.options` map only
//!   exists in rig v2 (k0sctl 0.32), so k0sctl 0.19 to 0.31 reject it as an unknown field.
//! - `openSSH:` runs the system `ssh` with `-o Key=Value` for each entry of `options`
//!   (`OpenSSHOptions.ToArgs` in `openssh.go`, v2 `sshconfig.OptionArguments.ToArgs`), with
//!   `-F configPath` and `-i keyPath`. OpenSSH itself refuses unknown and changed keys under
//!   `StrictHostKeyChecking yes`, and command-line options win over any config file. Both rig
//!   lines default `StrictHostKeyChecking` to *no* (`DefaultOpenSSHOptions`) unless the key
//!   is set with exactly that spelling (`SetIfUnset` compares map keys case-sensitively), so
//!   the spelling below matters.
//!
//! So every host gets `openSSH` with `configPath: /dev/null` (no user or system ssh config can
//! add a proxy, a second known-hosts file or relax checking), `keyPath` = the admin key in
//! `keys/`, and options `StrictHostKeyChecking yes`, `UserKnownHostsFile` = the pinned file,
//! `GlobalKnownHostsFile /dev/null`, `UpdateHostKeys no` (ssh would otherwise rewrite the
//! pinned file), `IdentitiesOnly yes` and `BatchMode yes` (a prompt would hang the phase).
//! `SSH_KNOWN_HOSTS` is still worth setting for the run: it is what rig's Go client would read.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use k0rdent_core::role::NodeRole;
use serde::Serialize;

use super::network::{K0sConfig, K0sConfigSpec, bash_tool_network};

/// The `apiVersion` of the document; k0sctl accepts no other.
pub const K0SCTL_API_VERSION: &str = "k0sctl.k0sproject.io/v1beta1";

/// What the generator needs from the recorded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K0sctlInput {
    /// The deployment's cluster id: `metadata.name`, which k0sctl also uses as the kubeconfig's
    /// cluster and context name.
    pub cluster_id: String,
    /// `software.k0s.version`, e.g. `v1.33.2+k0s.0`.
    pub k0s_version: String,
    /// The pinned `known_hosts` file, with every node's host key under its tunnel address.
    pub known_hosts_path: PathBuf,
    /// The nodes in their recorded order (controllers first: k0sctl initialises the cluster on
    /// the first controller).
    pub hosts: Vec<K0sctlHost>,
}

/// One node as k0sctl sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K0sctlHost {
    /// The node's name, for error messages; k0sctl learns the hostname from the node itself.
    pub name: String,
    /// The recorded role; never recomputed here.
    pub role: NodeRole,
    /// The node's WireGuard tunnel address, the only one SSH reaches.
    pub ssh_address: IpAddr,
    /// The NIC's VNet address, for k0s's API, etcd peer and kubelet addresses. `None` renders
    /// no `privateAddress`, as the Bash tool did: adding one to a cluster it installed changes
    /// the controllers' k0s configuration (k0sctl derives `spec.api.sans` and etcd's
    /// `peerAddress` from it) and so restarts them.
    pub private_address: Option<IpAddr>,
    /// The admin user on the VM.
    pub user: String,
    /// The admin private key in the state directory's `keys/`.
    pub key_path: PathBuf,
    /// Let workloads run on a `controller+worker` without tolerations. k0sctl refuses it on
    /// any other role.
    pub no_taints: bool,
    /// The node leaves the cluster: k0sctl drains it, deletes its Kubernetes node, makes a
    /// controller leave etcd, and resets k0s on it (`reset: true`).
    pub reset: bool,
}

/// The roles of a NEW deployment's nodes, controllers first: controllers `controller`,
/// workers `worker`; with no workers the controllers are `controller+worker` (otherwise
/// nothing could schedule). Record them; later runs render the recorded roles.
pub fn roles_for(controllers: u32, workers: u32) -> Vec<NodeRole> {
    let controller = if workers == 0 {
        NodeRole::ControllerWorker
    } else {
        NodeRole::Controller
    };
    let mut roles = vec![controller; controllers as usize];
    roles.extend(std::iter::repeat_n(NodeRole::Worker, workers as usize));
    roles
}

/// Whether a NEW deployment's node of `role` gets `noTaints: true`: exactly the
/// `controller+worker` nodes [`roles_for`] makes, which exist only when there are no workers
/// and must take the workloads. Record it with the role.
pub fn new_deployment_no_taints(role: NodeRole) -> bool {
    role == NodeRole::ControllerWorker
}

/// The generated document, serialized in k0sctl's field spelling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct K0sctlCluster {
    /// [`K0SCTL_API_VERSION`].
    pub api_version: String,
    /// `Cluster`.
    pub kind: String,
    /// The cluster's name.
    pub metadata: Metadata,
    /// Hosts and k0s.
    pub spec: Spec,
}

/// `metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// The cluster id.
    pub name: String,
}

/// `spec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    /// One entry per node.
    pub hosts: Vec<Host>,
    /// Version and configuration of k0s.
    pub k0s: K0s,
}

/// `spec.hosts[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// How k0sctl reaches the node (see the module docs for why `openSSH`).
    #[serde(rename = "openSSH")]
    pub open_ssh: OpenSsh,
    /// `controller`, `worker` or `controller+worker`.
    pub role: NodeRole,
    /// The VNet address, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_address: Option<IpAddr>,
    /// Only rendered when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_taints: bool,
    /// Only rendered when true: k0sctl resets the host during `apply`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

/// `spec.hosts[].openSSH`: rig's system-ssh connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenSsh {
    /// The tunnel address.
    pub address: IpAddr,
    /// The admin user.
    pub user: String,
    /// The admin key (`ssh -i`).
    pub key_path: String,
    /// `/dev/null` (`ssh -F /dev/null`): no ssh config file is read.
    pub config_path: String,
    /// `-o Key=Value` options, sorted so the document is stable.
    pub options: BTreeMap<String, SshOption>,
    /// `true`: no ssh control master. rig's default keeps one per host under
    /// `~/.ssh/ctrl-%C` for 10 minutes (`ControlPersist=600`), which fails where the
    /// operator has no `~/.ssh` and outlives a k0sctl that was killed; one connection per
    /// command costs little over the tunnel.
    pub disable_multiplexing: bool,
}

/// An `openSSH.options` value: rig turns booleans into `yes`/`no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SshOption {
    /// `yes` or `no`.
    Flag(bool),
    /// Passed as written.
    Text(String),
}

/// `spec.k0s`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct K0s {
    /// The k0s release to install.
    pub version: String,
    /// `false`, as the Bash tool set it: the configuration stays in the file k0sctl writes
    /// on each controller.
    pub dynamic_config: bool,
    /// The k0s `ClusterConfig`: the Bash tool's network settings.
    pub config: K0sConfig,
}

/// Why no document could be built; each names what to fix in the recorded state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum K0sctlConfigError {
    /// No nodes are recorded.
    #[error("no nodes to install k0s on: create the VMs first")]
    NoHosts,
    /// k0sctl needs a controller to initialise the cluster.
    #[error("no controller among the recorded nodes: k0sctl needs at least one")]
    NoController,
    /// k0sctl refuses to reset every controller in an `apply` (that is `k0sctl reset`).
    #[error("every controller would leave the cluster: at least one must stay")]
    AllControllersReset,
    /// k0sctl rejects `noTaints` on this role.
    #[error("node {node}: noTaints is only valid on a controller+worker, not on a {role}")]
    NoTaintsOnRole {
        /// The node.
        node: String,
        /// Its recorded role.
        role: NodeRole,
    },
    /// k0sctl rejects two hosts with one connection.
    #[error("nodes {first} and {second} share the tunnel address {address}")]
    DuplicateAddress {
        /// The earlier node.
        first: String,
        /// The later node.
        second: String,
        /// The shared address.
        address: IpAddr,
    },
    /// A path k0sctl or ssh could not take as written.
    #[error("{what} {path:?} cannot be passed to ssh: {reason}")]
    UnusablePath {
        /// Which path.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// The document could not be serialized (not expected for these types).
    #[error("cannot write the k0sctl configuration as YAML: {0}")]
    Yaml(String),
}

impl K0sctlInput {
    /// The input without the hosts that leave the cluster: what stays installed, so what
    /// `install_k0s` is judged against and fingerprinted by.
    #[must_use]
    pub fn staying(&self) -> K0sctlInput {
        K0sctlInput {
            hosts: self.hosts.iter().filter(|h| !h.reset).cloned().collect(),
            ..self.clone()
        }
    }

    /// The hosts `apply` resets (`reset: true`).
    pub fn leaving(&self) -> impl Iterator<Item = &K0sctlHost> {
        self.hosts.iter().filter(|h| h.reset)
    }

    /// Builds the document.
    ///
    /// # Errors
    /// [`K0sctlConfigError`] when k0sctl would refuse the hosts (none, no controller, a shared
    /// address, `noTaints` on a role other than `controller+worker`) or a path cannot be given
    /// to ssh.
    pub fn cluster(&self) -> Result<K0sctlCluster, K0sctlConfigError> {
        if self.hosts.is_empty() {
            return Err(K0sctlConfigError::NoHosts);
        }
        if !self.hosts.iter().any(|h| h.role.is_controller()) {
            return Err(K0sctlConfigError::NoController);
        }
        if !self
            .hosts
            .iter()
            .any(|h| h.role.is_controller() && !h.reset)
        {
            return Err(K0sctlConfigError::AllControllersReset);
        }
        let known_hosts = ssh_option_path("the known_hosts file", &self.known_hosts_path)?;
        let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
        let mut hosts = Vec::with_capacity(self.hosts.len());
        for h in &self.hosts {
            if let Some(first) = seen.insert(h.ssh_address, &h.name) {
                return Err(K0sctlConfigError::DuplicateAddress {
                    first: first.to_owned(),
                    second: h.name.clone(),
                    address: h.ssh_address,
                });
            }
            if h.no_taints && h.role != NodeRole::ControllerWorker {
                return Err(K0sctlConfigError::NoTaintsOnRole {
                    node: h.name.clone(),
                    role: h.role,
                });
            }
            hosts.push(Host {
                open_ssh: OpenSsh {
                    address: h.ssh_address,
                    user: h.user.clone(),
                    key_path: utf8_path("the admin key", &h.key_path)?.to_owned(),
                    config_path: "/dev/null".into(),
                    options: strict_options(&known_hosts),
                    disable_multiplexing: true,
                },
                role: h.role,
                private_address: h.private_address,
                no_taints: h.no_taints,
                reset: h.reset,
            });
        }
        Ok(K0sctlCluster {
            api_version: K0SCTL_API_VERSION.into(),
            kind: "Cluster".into(),
            metadata: Metadata {
                name: self.cluster_id.clone(),
            },
            spec: Spec {
                hosts,
                k0s: K0s {
                    version: self.k0s_version.clone(),
                    dynamic_config: false,
                    config: K0sConfig {
                        spec: K0sConfigSpec {
                            network: bash_tool_network(),
                        },
                    },
                },
            },
        })
    }
}

/// The document as YAML, as written to `<state-dir>/k0sctl.yaml` and given to `k0sctl apply`.
///
/// # Errors
/// As [`K0sctlInput::cluster`].
pub fn render_k0sctl_yaml(input: &K0sctlInput) -> Result<String, K0sctlConfigError> {
    let cluster = input.cluster()?;
    serde_yaml::to_string(&cluster).map_err(|e| K0sctlConfigError::Yaml(e.to_string()))
}

fn strict_options(known_hosts: &str) -> BTreeMap<String, SshOption> {
    BTreeMap::from([
        // Exactly this spelling: rig's default `StrictHostKeyChecking: false` is only
        // replaced by an identical key.
        ("StrictHostKeyChecking".into(), SshOption::Flag(true)),
        (
            "UserKnownHostsFile".into(),
            SshOption::Text(known_hosts.into()),
        ),
        (
            "GlobalKnownHostsFile".into(),
            SshOption::Text("/dev/null".into()),
        ),
        ("UpdateHostKeys".into(), SshOption::Flag(false)),
        ("IdentitiesOnly".into(), SshOption::Flag(true)),
        ("BatchMode".into(), SshOption::Flag(true)),
    ])
}

fn utf8_path<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, K0sctlConfigError> {
    let unusable = |reason| K0sctlConfigError::UnusablePath {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let s = path.to_str().ok_or_else(|| unusable("it is not UTF-8"))?;
    if s.chars().any(char::is_control) {
        return Err(unusable("it contains a control character"));
    }
    if s.contains('$') {
        // k0sctl runs envsubst over the whole file before decoding it (cmd/flags.go).
        return Err(unusable(
            "it contains '$', which k0sctl replaces with environment variables",
        ));
    }
    if !path.is_absolute() {
        return Err(unusable("it is relative, and k0sctl may run elsewhere"));
    }
    Ok(s)
}

/// A path as the value of an ssh `-o` option: ssh splits the value into words (double quotes
/// group them) and expands `%` tokens in `UserKnownHostsFile`, so `%` is doubled and a path
/// with spaces (macOS's `Application Support`) is quoted.
fn ssh_option_path(what: &'static str, path: &Path) -> Result<String, K0sctlConfigError> {
    let s = utf8_path(what, path)?;
    if s.contains('"') {
        return Err(K0sctlConfigError::UnusablePath {
            what,
            path: path.to_path_buf(),
            reason: "it contains a double quote",
        });
    }
    let escaped = s.replace('%', "%%");
    Ok(if escaped.contains(char::is_whitespace) {
        format!("\"{escaped}\"")
    } else {
        escaped
    })
}
