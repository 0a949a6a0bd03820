//! Reading a Bash-tool directory (randybias/k0rdent-azure-setup) as that tool wrote it:
//! `.clusterid`, `state/deployment-state.yaml`, `wireguard/<host>_privkey`,
//! `wireguard/wgk0<suffix>.conf`, `azure-resources/<id>-ssh-key` and
//! `k0sctl-config/<id>-k0sctl.yaml` (reference/upstream-bash.md §1.2, §3.2).
//!
//! Only reading and typing happens here; [`super::mapping`] decides what it means for us.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use k0rdent_core::secret::Secret;
use serde_yaml::{Mapping, Value};

/// The Bash tool's state file, relative to its directory.
pub const BASH_STATE_FILE: &str = "state/deployment-state.yaml";
/// The Bash tool's cluster id file.
pub const CLUSTER_ID_FILE: &str = ".clusterid";
/// The peer name the Bash tool gives the hub (the operator's laptop).
pub const HUB_PEER: &str = "mylaptop";

/// Why a Bash-tool directory cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BashStateError {
    /// A file the import needs is not there.
    #[error("{path} is missing: {why}")]
    Missing {
        #[allow(missing_docs)]
        path: PathBuf,
        /// Why it is needed.
        why: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        #[allow(missing_docs)]
        path: PathBuf,
        #[allow(missing_docs)]
        #[source]
        source: std::io::Error,
    },
    /// A file is there but does not hold what the Bash tool writes.
    #[error("{path}: {detail}")]
    Invalid {
        #[allow(missing_docs)]
        path: PathBuf,
        /// What is wrong (the key and value, never a private key).
        detail: String,
    },
}

/// One `wireguard_peers.<name>` entry.
#[derive(Debug, Clone)]
pub struct BashPeer {
    /// Tunnel address (`<base>.1` for the hub, `<base>.11`… for the VMs).
    pub ip: Ipv4Addr,
    /// `hub`, `controller` or `worker`.
    pub role: String,
    /// The private key the Bash tool stored in cleartext in its state.
    pub private_key: Option<Secret<String>>,
    /// The public key, base64.
    pub public_key: Option<String>,
}

/// One `vm_states.<host>` entry.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)] // fields named as the Bash tool names them
pub struct BashVm {
    pub public_ip: Option<String>,
    pub private_ip: Option<String>,
    /// An Azure provisioning state, or `Creating`, `Deleting`, `Deleted`.
    pub state: Option<String>,
}

/// The parts of `state/deployment-state.yaml` an import uses.
#[derive(Debug, Clone, Default)]
pub struct BashState {
    /// `deployment_id`: the cluster id.
    pub deployment_id: String,
    #[allow(missing_docs)]
    pub created_at: Option<DateTime<Utc>>,
    /// `source_config_file`: the YAML the deployment was started with (often relative).
    pub source_config_file: Option<String>,
    /// `config.wireguard_network`.
    pub wireguard_network: Option<String>,
    /// `config.wireguard_port` (written as a quoted string by `update_state`).
    pub wireguard_port: Option<u16>,
    /// `phases.<phase>.status`.
    pub phases: BTreeMap<String, String>,
    /// `wireguard_peers`, the hub included.
    pub peers: BTreeMap<String, BashPeer>,
    /// `vm_states`.
    pub vms: BTreeMap<String, BashVm>,
}

impl BashState {
    /// The status of a phase (`pending` when absent).
    pub fn phase(&self, name: &str) -> &str {
        self.phases.get(name).map_or("pending", String::as_str)
    }
}

/// Everything read from a Bash-tool directory.
#[derive(Debug)]
pub struct BashDir {
    /// The directory, as given.
    pub dir: PathBuf,
    /// `.clusterid`.
    pub cluster_id: String,
    #[allow(missing_docs)]
    pub state: BashState,
    /// `wireguard/<host>_privkey` contents by host (the hub is [`HUB_PEER`]).
    pub key_files: BTreeMap<String, Secret<String>>,
    /// `azure-resources/<id>-ssh-key`, if it exists.
    pub ssh_private_key: Option<Secret<Vec<u8>>>,
    /// The name of `wireguard/wgk0*.conf` without `.conf`, if the hub config was written.
    pub hub_interface: Option<String>,
    /// The roles in `k0sctl-config/<id>-k0sctl.yaml` by `ssh.address`, if it was written.
    pub k0sctl_roles: Option<BTreeMap<IpAddr, String>>,
}

/// Whether `bytes` are a Bash-tool state file: a mapping with `deployment_id` and no
/// `schema_version` (ours always has one).
pub fn is_bash_state(bytes: &[u8]) -> bool {
    match serde_yaml::from_slice::<Value>(bytes) {
        Ok(Value::Mapping(m)) => {
            m.contains_key("deployment_id") && !m.contains_key("schema_version")
        }
        _ => false,
    }
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, BashStateError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BashStateError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn text(path: &Path, bytes: Vec<u8>) -> Result<String, BashStateError> {
    String::from_utf8(bytes).map_err(|_| BashStateError::Invalid {
        path: path.to_path_buf(),
        detail: "not UTF-8 text".into(),
    })
}

fn str_of<'a>(m: &'a Mapping, key: &str) -> Option<&'a str> {
    m.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "null")
}

/// Reads the directory. Only `.clusterid` and the state file are required; the rest is read
/// when present and its absence judged by the mapping.
///
/// # Errors
/// [`BashStateError`] naming the file.
pub fn read_dir(dir: &Path) -> Result<BashDir, BashStateError> {
    let id_path = dir.join(CLUSTER_ID_FILE);
    let cluster_id = match read(&id_path)? {
        Some(b) => text(&id_path, b)?.trim().to_owned(),
        None => {
            return Err(BashStateError::Missing {
                path: id_path,
                why: "it names the deployment; is this the Bash tool's directory?".into(),
            });
        }
    };
    let state_path = dir.join(BASH_STATE_FILE);
    let Some(bytes) = read(&state_path)? else {
        return Err(BashStateError::Missing {
            path: state_path,
            why: "the Bash tool writes it when a deployment starts".into(),
        });
    };
    let state = parse_state(&state_path, &bytes)?;
    let mut key_files = BTreeMap::new();
    for name in state.peers.keys() {
        let p = dir.join("wireguard").join(format!("{name}_privkey"));
        if let Some(b) = read(&p)? {
            key_files.insert(name.clone(), Secret::new(text(&p, b)?.trim().to_owned()));
        }
    }
    let ssh_private_key = read(
        &dir.join("azure-resources")
            .join(format!("{cluster_id}-ssh-key")),
    )?
    .map(Secret::new);
    let hub_interface = hub_interface(&dir.join("wireguard"))?;
    let k0sctl_path = dir
        .join("k0sctl-config")
        .join(format!("{cluster_id}-k0sctl.yaml"));
    let k0sctl_roles = match read(&k0sctl_path)? {
        Some(b) => Some(parse_k0sctl_roles(&k0sctl_path, &b)?),
        None => None,
    };
    Ok(BashDir {
        dir: dir.to_path_buf(),
        cluster_id,
        state,
        key_files,
        ssh_private_key,
        hub_interface,
        k0sctl_roles,
    })
}

fn hub_interface(wg: &Path) -> Result<Option<String>, BashStateError> {
    let rd = match std::fs::read_dir(wg) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BashStateError::Io {
                path: wg.to_path_buf(),
                source,
            });
        }
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| {
            n.strip_suffix(".conf")
                .filter(|s| s.starts_with("wgk0"))
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    Ok(names.pop())
}

/// Parses the state file's bytes.
///
/// # Errors
/// [`BashStateError::Invalid`] naming the key.
pub fn parse_state(path: &Path, bytes: &[u8]) -> Result<BashState, BashStateError> {
    let invalid = |detail: String| BashStateError::Invalid {
        path: path.to_path_buf(),
        detail,
    };
    let value: Value =
        serde_yaml::from_slice(bytes).map_err(|e| invalid(format!("not YAML: {e}")))?;
    let Value::Mapping(map) = value else {
        return Err(invalid("not a YAML mapping".into()));
    };
    if map.contains_key("schema_version") {
        return Err(invalid(
            "has a schema_version: it is k0rdent's own state, not the Bash tool's".into(),
        ));
    }
    let deployment_id = str_of(&map, "deployment_id")
        .ok_or_else(|| invalid("deployment_id is missing".into()))?
        .to_owned();
    let mut s = BashState {
        deployment_id,
        created_at: str_of(&map, "created_at")
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        source_config_file: str_of(&map, "source_config_file").map(str::to_owned),
        ..BashState::default()
    };
    if let Some(Value::Mapping(cfg)) = map.get("config") {
        s.wireguard_network = str_of(cfg, "wireguard_network").map(str::to_owned);
        s.wireguard_port = match cfg.get("wireguard_port") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t.is_empty() || t == "null" => None,
            Some(v) => Some(
                match v {
                    Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    Value::String(t) => t.trim().parse().ok(),
                    _ => None,
                }
                .filter(|p| *p != 0)
                .ok_or_else(|| invalid("config.wireguard_port is not a port number".into()))?,
            ),
        };
    }
    if let Some(Value::Mapping(phases)) = map.get("phases") {
        for (name, rec) in phases {
            if let (Some(name), Value::Mapping(rec)) = (name.as_str(), rec) {
                let status = str_of(rec, "status").unwrap_or("pending");
                s.phases.insert(name.to_owned(), status.to_owned());
            }
        }
    }
    if let Some(Value::Mapping(peers)) = map.get("wireguard_peers") {
        for (name, peer) in peers {
            let (Some(name), Value::Mapping(peer)) = (name.as_str(), peer) else {
                continue;
            };
            let ip = str_of(peer, "ip")
                .and_then(|ip| ip.parse().ok())
                .ok_or_else(|| invalid(format!("wireguard_peers.{name}.ip is not an address")))?;
            s.peers.insert(
                name.to_owned(),
                BashPeer {
                    ip,
                    role: str_of(peer, "role").unwrap_or("worker").to_owned(),
                    private_key: str_of(peer, "private_key").map(|k| Secret::new(k.to_owned())),
                    public_key: str_of(peer, "public_key").map(str::to_owned),
                },
            );
        }
    }
    if let Some(Value::Mapping(vms)) = map.get("vm_states") {
        for (name, vm) in vms {
            if let (Some(name), Value::Mapping(vm)) = (name.as_str(), vm) {
                s.vms.insert(
                    name.to_owned(),
                    BashVm {
                        public_ip: str_of(vm, "public_ip").map(str::to_owned),
                        private_ip: str_of(vm, "private_ip").map(str::to_owned),
                        state: str_of(vm, "state").map(str::to_owned),
                    },
                );
            }
        }
    }
    Ok(s)
}

/// The roles of a k0sctl cluster file by host `ssh.address`.
///
/// # Errors
/// [`BashStateError::Invalid`] when the file has no hosts or a host lacks its address or role.
pub fn parse_k0sctl_roles(
    path: &Path,
    bytes: &[u8],
) -> Result<BTreeMap<IpAddr, String>, BashStateError> {
    let invalid = |detail: &str| BashStateError::Invalid {
        path: path.to_path_buf(),
        detail: detail.to_owned(),
    };
    let value: Value =
        serde_yaml::from_slice(bytes).map_err(|e| invalid(&format!("not YAML: {e}")))?;
    let hosts = value
        .get("spec")
        .and_then(|s| s.get("hosts"))
        .and_then(Value::as_sequence)
        .ok_or_else(|| invalid("spec.hosts is missing"))?;
    let mut roles = BTreeMap::new();
    for h in hosts {
        let addr = h
            .get("ssh")
            .and_then(|s| s.get("address"))
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| invalid("a host has no ssh.address"))?;
        let role = h
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("a host has no role"))?;
        roles.insert(addr, role.to_owned());
    }
    Ok(roles)
}

#[cfg(test)]
#[path = "bash_tests.rs"]
mod tests;
