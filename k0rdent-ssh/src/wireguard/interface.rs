//! The hub interface on the operator's machine: `vpn up|down` through wg-quick (sudo when not
//! root — wg-quick manages addresses, routes and link state), and wireguard-control, with the
//! backend chosen explicitly, for reading the device and updating peers in place.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k0rdent_core::Remedy;
use k0rdent_process::{Command, ProcessError, ProcessStatus};
use wireguard_control::{Backend, Device, DeviceUpdate};

pub use super::device::{DesiredPeer, DeviceSnapshot, PeerSnapshot};
use super::key::PublicKey;
use super::spec::InterfaceName;
use super::wg_tool::{self, DumpError, PeerOp};
use crate::os;

/// How long wg-quick may take to clean up after SIGTERM (it removes a half-made interface).
const WG_QUICK_GRACE: Duration = Duration::from_secs(5);

/// How to get root for wg-quick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Already root: run wg-quick directly.
    Root,
    /// `sudo -n`: never prompts. wg-quick runs in a process group of its own, in the
    /// background, where a password prompt would stop it for good; whoever may ask the user
    /// (the CLI, in the foreground) runs `sudo -v` first.
    Sudo,
}

impl Privilege {
    /// Root if this process is root, else sudo.
    pub fn detect() -> Self {
        if os::is_root() {
            Privilege::Root
        } else {
            Privilege::Sudo
        }
    }
}

/// What `up`/`down` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// It was already in the wanted state; nothing ran.
    Unchanged,
    /// wg-quick ran.
    Changed,
}

/// A failure managing the interface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VpnError {
    /// wg-quick (or sudo) failed.
    #[error("{0}")]
    Process(#[from] ProcessError),
    /// The hub config file is missing.
    #[error("the WireGuard config {0} does not exist")]
    NoConfig(PathBuf),
    /// wg-quick is not installed.
    #[error("wg-quick was not found on PATH")]
    NoWgQuick,
    /// The interface is not up.
    #[error("the WireGuard interface {0} is not up")]
    NotUp(String),
    /// Reading or updating the device failed.
    #[error("WireGuard interface {interface}: {detail}")]
    Device {
        #[allow(missing_docs)]
        interface: String,
        /// The device error, or the peer that is not configured.
        detail: String,
    },
}

impl Remedy for VpnError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            VpnError::Process(p) if p.not_installed() => {
                "install wireguard-tools (and wireguard-go where the kernel has no WireGuard)"
                    .into()
            }
            VpnError::Process(p) if p.stderr.contains("password is required") => {
                "sudo needs your password and may not ask for it here (-y, or no terminal): run \
                 `sudo -v` in this terminal first, run the command in a terminal without -y \
                 (k0rdent then asks once), or run it as root"
                    .into()
            }
            VpnError::Process(p) if p.missing_command().is_some() => format!(
                "wg-quick needs `{}`, which is not on PATH: install it (or add its directory \
                 to PATH) and run again",
                p.missing_command().unwrap_or_default()
            )
            .into(),
            VpnError::Process(_) => "see wg-quick's message above".into(),
            VpnError::NoConfig(_) => "run `k0rdent deploy --until setup_vpn` to write it".into(),
            VpnError::NoWgQuick => "install wireguard-tools".into(),
            VpnError::NotUp(_) => "run `k0rdent vpn up`".into(),
            VpnError::Device { .. } => "run `k0rdent vpn status` as root for details".into(),
        })
    }
}

/// Why a device could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No such device.
    #[error("interface {0} does not exist")]
    Missing(String),
    /// No permission (the control socket is root's).
    #[error("no permission to read interface {0} (needs root)")]
    PermissionDenied(String),
    /// The read did not finish in time.
    #[error("reading interface {0} timed out")]
    TimedOut(String),
    /// Anything else.
    #[error("reading interface {interface}: {detail}")]
    Other {
        #[allow(missing_docs)]
        interface: String,
        /// The underlying error.
        detail: String,
    },
}

/// A change applied to the live device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// The peer was missing and was added.
    Added(PublicKey),
    /// The endpoint changed.
    #[allow(missing_docs)]
    Endpoint {
        peer: PublicKey,
        from: Option<SocketAddr>,
        to: SocketAddr,
    },
}

impl std::fmt::Display for PeerChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerChange::Added(k) => write!(f, "added peer {}…", k.short()),
            PeerChange::Endpoint { peer, from, to } => match from {
                Some(from) => write!(f, "peer {}…: endpoint {from} → {to}", peer.short()),
                None => write!(f, "peer {}…: endpoint set to {to}", peer.short()),
            },
        }
    }
}

/// The hub's WireGuard interface.
#[derive(Debug, Clone)]
pub struct VpnInterface {
    name: InterfaceName,
    config: PathBuf,
    privilege: Privilege,
    timeout: Duration,
}

impl VpnInterface {
    /// The interface `name`, brought up from the wg-quick file `config` (its stem must be the
    /// name, as wg-quick requires).
    pub fn new(name: InterfaceName, config: impl Into<PathBuf>) -> Self {
        VpnInterface {
            name,
            config: config.into(),
            privilege: Privilege::detect(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets how root is obtained.
    #[must_use]
    pub fn with_privilege(mut self, p: Privilege) -> Self {
        self.privilege = p;
        self
    }

    #[allow(missing_docs)]
    pub fn name(&self) -> &InterfaceName {
        &self.name
    }

    /// The wg-quick file it is brought up from.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Whether the interface exists (no privileges needed).
    pub fn is_up(&self) -> bool {
        os::interface_exists(self.name.as_str())
    }

    /// Brings the interface up with `wg-quick up CONFIG`, unless it is up already.
    ///
    /// # Errors
    /// [`VpnError`] with wg-quick's stderr.
    pub async fn up(&self) -> Result<Transition, VpnError> {
        if self.is_up() {
            return Ok(Transition::Unchanged);
        }
        if !self.config.exists() {
            return Err(VpnError::NoConfig(self.config.clone()));
        }
        self.wg_quick("up").await?;
        Ok(Transition::Changed)
    }

    /// Takes the interface down with `wg-quick down CONFIG`, unless it is down already.
    ///
    /// # Errors
    /// [`VpnError`] with wg-quick's stderr.
    pub async fn down(&self) -> Result<Transition, VpnError> {
        if !self.is_up() {
            return Ok(Transition::Unchanged);
        }
        self.wg_quick("down").await?;
        Ok(Transition::Changed)
    }

    async fn wg_quick(&self, verb: &str) -> Result<(), VpnError> {
        let wg_quick = os::find_program("wg-quick").ok_or(VpnError::NoWgQuick)?;
        let cmd = match self.privilege {
            Privilege::Root => Command::new(wg_quick),
            Privilege::Sudo => {
                let sudo = os::find_program("sudo").ok_or_else(|| ProcessError {
                    program: "sudo".into(),
                    args: vec![],
                    status: ProcessStatus::NotStarted("not found on PATH".into()),
                    stderr: String::new(),
                })?;
                Command::new(sudo).arg("-n").arg(wg_quick)
            }
        };
        let cmd = cmd
            .arg(verb)
            .arg(&self.config)
            .timeout(self.timeout)
            .grace(WG_QUICK_GRACE);
        // `up` starts wireguard-go (userspace), which must outlive us: its own session, no
        // parent-death signal, never signalled after success.
        let cmd = if verb == "up" { cmd.daemon() } else { cmd };
        cmd.run().await?;
        tracing::info!(interface = %self.name, verb, "wg-quick done");
        Ok(())
    }

    /// Reads the device (peers, endpoints, handshakes, transfer counters) within `timeout`.
    ///
    /// # Errors
    /// [`ReadError`]; [`ReadError::PermissionDenied`] when not root.
    pub async fn read(&self, timeout: Duration) -> Result<DeviceSnapshot, ReadError> {
        read_device(self.name.as_str(), timeout).await
    }

    /// Adds missing peers and corrects endpoints in place (a node's public IP changed),
    /// without touching the link, addresses or other peers. Returns what changed.
    ///
    /// # Errors
    /// [`VpnError::NotUp`] or [`VpnError::Device`].
    pub async fn sync_peers(&self, desired: &[DesiredPeer]) -> Result<Vec<PeerChange>, VpnError> {
        let dev = self.live_device().await?;
        let mut ops = Vec::new();
        let mut changes = Vec::new();
        for d in desired {
            match dev.peer(&d.public_key) {
                None => {
                    ops.push(PeerOp::Put(d.clone()));
                    changes.push(PeerChange::Added(d.public_key.clone()));
                }
                Some(p) if p.endpoint != Some(d.endpoint) => {
                    ops.push(PeerOp::Endpoint {
                        key: d.public_key.clone(),
                        endpoint: d.endpoint,
                    });
                    changes.push(PeerChange::Endpoint {
                        peer: d.public_key.clone(),
                        from: p.endpoint,
                        to: d.endpoint,
                    });
                }
                Some(_) => {}
            }
        }
        if !ops.is_empty() {
            self.apply(&ops).await?;
        }
        Ok(changes)
    }

    /// Removes `peer` from the live interface (a node that left the deployment), leaving the
    /// link and the other peers alone. `false` when it was not a peer.
    ///
    /// # Errors
    /// [`VpnError::NotUp`] or [`VpnError::Device`].
    pub async fn remove_peer(&self, peer: &PublicKey) -> Result<bool, VpnError> {
        let dev = self.live_device().await?;
        if dev.peer(peer).is_none() {
            return Ok(false);
        }
        self.apply(&[PeerOp::Remove(peer.clone())]).await?;
        Ok(true)
    }

    /// Forces a fresh handshake with `peer` by removing and re-adding it with the same
    /// configuration: the hub then initiates at once instead of waiting for its retry timers
    /// (up to ~15 s after unanswered traffic). Used after a node's WireGuard restarted.
    ///
    /// # Errors
    /// [`VpnError::NotUp`] or [`VpnError::Device`] (also when the peer is not configured).
    pub async fn reinitiate(&self, peer: &PublicKey) -> Result<(), VpnError> {
        let dev = self.live_device().await?;
        let p = dev.peer(peer).ok_or_else(|| VpnError::Device {
            interface: self.name.to_string(),
            detail: format!("peer {}… is not configured", peer.short()),
        })?;
        self.apply(&[PeerOp::Remove(peer.clone())]).await?;
        self.apply(&[PeerOp::Restore(p.clone())]).await
    }

    async fn live_device(&self) -> Result<DeviceSnapshot, VpnError> {
        let read = match self.privilege {
            Privilege::Root => self.read(Duration::from_secs(2)).await,
            Privilege::Sudo => sudo_read(self.name.as_str(), Duration::from_secs(5)).await,
        };
        match read {
            Ok(d) => Ok(d),
            Err(ReadError::Missing(_)) => Err(VpnError::NotUp(self.name.to_string())),
            Err(e) => Err(VpnError::Device {
                interface: self.name.to_string(),
                detail: e.to_string(),
            }),
        }
    }

    /// Applies peer changes: through the device API as root, with `sudo -n wg set` otherwise.
    async fn apply(&self, ops: &[PeerOp]) -> Result<(), VpnError> {
        let name = self.name.to_string();
        if self.privilege == Privilege::Sudo {
            return Ok(wg_tool::sudo_wg_set(&name, ops, Duration::from_secs(10)).await?);
        }
        let update = ops.iter().fold(DeviceUpdate::new(), |u, op| op.add_to(u));
        let backend = os::backend_for(&name);
        // The userspace backend starts a bare wireguard-go when no socket exists: never let it.
        if backend == Backend::Userspace && os::userspace_socket(&name).is_none() {
            return Err(VpnError::NotUp(name));
        }
        let iface: wireguard_control::InterfaceName =
            name.parse().map_err(|e| VpnError::Device {
                interface: name.clone(),
                detail: format!("{e:?}"),
            })?;
        let n2 = name.clone();
        tokio::task::spawn_blocking(move || update.apply(&iface, backend))
            .await
            .map_err(|e| VpnError::Device {
                interface: n2.clone(),
                detail: e.to_string(),
            })?
            .map_err(|e| VpnError::Device {
                interface: name,
                detail: e.to_string(),
            })
    }
}

/// [`wg_tool::sudo_read`] with its failures as [`ReadError`]s.
async fn sudo_read(interface: &str, timeout: Duration) -> Result<DeviceSnapshot, ReadError> {
    wg_tool::sudo_read(interface, timeout)
        .await
        .map_err(|e| match e {
            DumpError::Missing => ReadError::Missing(interface.to_owned()),
            DumpError::Other(detail) => ReadError::Other {
                interface: interface.to_owned(),
                detail,
            },
        })
}

/// As [`read_device`]; when that is refused for want of root and `privilege` is sudo, reads
/// it with `sudo -n wg show IFACE dump` instead (sudo's credentials must be cached: it never
/// prompts). When that fails too, the refusal is what is returned.
///
/// # Errors
/// [`ReadError`].
pub async fn read_device_as(
    interface: &str,
    timeout: Duration,
    privilege: Privilege,
) -> Result<DeviceSnapshot, ReadError> {
    match read_device(interface, timeout).await {
        Err(ReadError::PermissionDenied(name)) if privilege == Privilege::Sudo => {
            match sudo_read(interface, timeout.max(Duration::from_secs(2))).await {
                Ok(d) => Ok(d),
                Err(e) => {
                    tracing::debug!(interface, error = %e, "reading the device with sudo wg failed");
                    Err(ReadError::PermissionDenied(name))
                }
            }
        }
        other => other,
    }
}

/// Reads a WireGuard device by name with the backend that serves it, within `timeout`.
///
/// # Errors
/// [`ReadError`].
pub async fn read_device(interface: &str, timeout: Duration) -> Result<DeviceSnapshot, ReadError> {
    let name = interface.to_owned();
    let backend = os::backend_for(interface);
    if backend == Backend::Userspace && os::userspace_socket(interface).is_none() {
        return Err(ReadError::Missing(name));
    }
    let iface: wireguard_control::InterfaceName =
        interface.parse().map_err(|e| ReadError::Other {
            interface: name.clone(),
            detail: format!("{e:?}"),
        })?;
    let task = tokio::task::spawn_blocking(move || Device::get(&iface, backend));
    let res = match tokio::time::timeout(timeout, task).await {
        Err(_) => return Err(ReadError::TimedOut(name)),
        Ok(Err(join)) => {
            return Err(ReadError::Other {
                interface: name,
                detail: join.to_string(),
            });
        }
        Ok(Ok(r)) => r,
    };
    match res {
        Ok(dev) => Ok(snapshot(interface, &dev)),
        Err(e) => Err(match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing(name),
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied(name),
            _ if e.raw_os_error() == Some(1) => ReadError::PermissionDenied(name),
            _ => ReadError::Other {
                interface: name,
                detail: e.to_string(),
            },
        }),
    }
}

fn snapshot(interface: &str, dev: &Device) -> DeviceSnapshot {
    DeviceSnapshot {
        interface: interface.to_owned(),
        public_key: dev.public_key.as_ref().map(PublicKey::from_wg),
        listen_port: dev.listen_port,
        peers: dev
            .peers
            .iter()
            .map(|p| PeerSnapshot {
                public_key: PublicKey::from_wg(&p.config.public_key),
                endpoint: p.config.endpoint,
                allowed_ips: p
                    .config
                    .allowed_ips
                    .iter()
                    .map(|a| format!("{}/{}", a.address, a.cidr))
                    .collect(),
                keepalive_secs: p.config.persistent_keepalive_interval.filter(|k| *k > 0),
                last_handshake: p.stats.last_handshake_time,
                rx_bytes: p.stats.rx_bytes,
                tx_bytes: p.stats.tx_bytes,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sudo_that_needs_a_password_names_what_to_do() {
        let e = VpnError::Process(ProcessError {
            program: "/usr/bin/sudo".into(),
            args: vec!["-n".into(), "wg-quick".into(), "up".into()],
            status: ProcessStatus::Exited(1),
            stderr: "sudo: a password is required".into(),
        });
        let remedy = e.remedy().unwrap();
        assert!(remedy.contains("sudo -v"), "{remedy}");
        assert!(remedy.contains("without -y"), "{remedy}");
        assert!(remedy.contains("as root"), "{remedy}");
    }
}
