//! The "VPN up" gate: the hub interface exists with the expected peers, and every peer
//! answers an active probe through the tunnel (a TCP connect to its tunnel address, port 22,
//! with a short timeout). It decides within about the probe timeout and never hangs; without
//! the privileges to read the device it decides from the probes alone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use k0rdent_core::{
    Remedy,
    gate::{Gate, GateContext, GateVerdict},
    state::DeploymentState,
};
use serde::Serialize;

use super::diagnosis::{DeviceView, Expected, PeerHealth, ProbeOutcome, diagnose};
use super::interface::{DeviceSnapshot, ReadError, read_device};
use super::key::PublicKey;
use super::network::ResolvedNetwork;
use super::plan::PlanError;
use super::spec::InterfaceName;
use crate::os;

/// A peer the hub should have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct ExpectedPeer {
    pub name: String,
    pub public_key: PublicKey,
    pub tunnel_ip: Ipv4Addr,
    /// `None` until the node's public IP is known.
    pub endpoint: Option<SocketAddr>,
}

/// What the hub interface should look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct TunnelExpectation {
    pub interface: InterfaceName,
    /// The nodes' UDP port.
    pub wg_port: u16,
    pub peers: Vec<ExpectedPeer>,
}

impl TunnelExpectation {
    /// From the resolved network and the nodes' public IPs.
    pub fn from_network(net: &ResolvedNetwork, public_ips: &BTreeMap<String, IpAddr>) -> Self {
        TunnelExpectation {
            interface: net.interface.clone(),
            wg_port: net.port,
            peers: net
                .nodes
                .iter()
                .map(|n| ExpectedPeer {
                    name: n.name.clone(),
                    public_key: n.public_key.clone(),
                    tunnel_ip: n.address,
                    endpoint: public_ips.get(&n.name).map(|ip| net.endpoint(*ip)),
                })
                .collect(),
        }
    }

    /// From the recorded state (node records' tunnel addresses, keys and public IPs).
    ///
    /// # Errors
    /// [`PlanError::Inconsistent`] when WireGuard was not set up yet.
    pub fn from_state(state: &DeploymentState) -> Result<Self, PlanError> {
        let net = ResolvedNetwork::from_state(state)?;
        let ips: BTreeMap<String, IpAddr> = state
            .nodes
            .iter()
            .filter_map(|(n, r)| {
                r.public_ip
                    .as_deref()
                    .and_then(|s| s.parse().ok())
                    .map(|ip| (n.clone(), ip))
            })
            .collect();
        Ok(Self::from_network(&net, &ips))
    }

    /// A peer by node name.
    pub fn peer(&self, name: &str) -> Option<&ExpectedPeer> {
        self.peers.iter().find(|p| p.name == name)
    }
}

/// How the device looked during a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "device", rename_all = "snake_case")]
#[allow(missing_docs)] // fields named after what they hold
pub enum DeviceStatus {
    /// Read; the diagnosis used it as well as the probes.
    Read,
    /// The interface does not exist.
    Missing,
    /// Not readable (the check used the probes alone).
    Unreadable { reason: String },
}

/// The result of one check of all peers: what `vpn status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct TunnelReport {
    pub interface: String,
    #[serde(flatten)]
    pub device: DeviceStatus,
    pub peers: Vec<PeerHealth>,
    /// How long the check took, in milliseconds.
    pub elapsed_ms: u64,
}

impl TunnelReport {
    /// Whether every peer answered.
    pub fn all_alive(&self) -> bool {
        !self.peers.is_empty() && self.peers.iter().all(PeerHealth::is_alive)
    }

    /// A peer's health by name.
    pub fn peer(&self, name: &str) -> Option<&PeerHealth> {
        self.peers.iter().find(|p| p.name == name)
    }

    /// The gate verdict: pass with evidence, or fail naming each failing peer and a remedy.
    pub fn verdict(&self) -> GateVerdict {
        if self.peers.is_empty() {
            return GateVerdict::fail_with(
                format!("interface {} has no expected peers", self.interface),
                "run `k0rdent deploy --until setup_vpn`",
            );
        }
        if self.all_alive() {
            let list = self
                .peers
                .iter()
                .map(|p| match p.state {
                    super::diagnosis::PeerState::Alive { rtt_ms } => {
                        format!("{} {rtt_ms} ms", p.name)
                    }
                    _ => p.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            return GateVerdict::pass(format!(
                "all {} peers answered through {} ({list})",
                self.peers.len(),
                self.interface
            ));
        }
        let failing: Vec<&PeerHealth> = self.peers.iter().filter(|p| !p.is_alive()).collect();
        let reason = failing
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let mut remedies: Vec<Cow<'_, str>> = Vec::new();
        for r in failing.iter().filter_map(|p| p.remedy()) {
            if !remedies.contains(&r) {
                remedies.push(r);
            }
        }
        GateVerdict::fail_with(reason, remedies.join("; "))
    }
}

impl fmt::Display for TunnelReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dev = match &self.device {
            DeviceStatus::Read => "up".to_owned(),
            DeviceStatus::Missing => "missing".to_owned(),
            DeviceStatus::Unreadable { reason } => format!("up (device not readable: {reason})"),
        };
        writeln!(
            f,
            "interface {}: {dev}; {} peers, checked in {} ms",
            os::describe_interface(&self.interface),
            self.peers.len(),
            self.elapsed_ms
        )?;
        let width = self.peers.iter().map(|p| p.name.len()).max().unwrap_or(4);
        for p in &self.peers {
            let hs = p
                .last_handshake_secs
                .map_or_else(|| "-".to_owned(), super::diagnosis::human_secs);
            writeln!(
                f,
                "  {:width$}  {:15}  {:12}  handshake {:>9}  {}",
                p.name,
                p.tunnel_ip,
                p.status_word(),
                hs,
                p.reason()
            )?;
        }
        Ok(())
    }
}

/// Probe settings. Defaults: port 22, 2 s per probe, 1 s per device read, device read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// TCP port probed through the tunnel.
    pub port: u16,
    /// Timeout of each TCP probe.
    pub timeout: Duration,
    /// Timeout of each device read.
    pub device_timeout: Duration,
    /// Read the device at all (false: decide from the probes alone, as an unprivileged user).
    pub read_device: bool,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            port: 22,
            timeout: Duration::from_secs(2),
            device_timeout: Duration::from_secs(1),
            read_device: true,
        }
    }
}

/// Checks peers: device read, TCP probes (concurrently), device read again, diagnosis.
#[derive(Debug, Clone, Copy, Default)]
#[allow(missing_docs)]
pub struct TunnelProbe {
    pub options: ProbeOptions,
}

impl TunnelProbe {
    #[allow(missing_docs)]
    pub fn new(options: ProbeOptions) -> Self {
        TunnelProbe { options }
    }

    /// Checks every expected peer.
    pub async fn report(&self, exp: &TunnelExpectation) -> TunnelReport {
        self.check(exp, exp.peers.iter().collect()).await
    }

    /// Checks one peer by node name (`None` if it is not expected).
    pub async fn check_peer(&self, exp: &TunnelExpectation, name: &str) -> Option<PeerHealth> {
        let peer = exp.peer(name)?;
        self.check(exp, vec![peer]).await.peers.into_iter().next()
    }

    async fn check(&self, exp: &TunnelExpectation, peers: Vec<&ExpectedPeer>) -> TunnelReport {
        let start = Instant::now();
        let iface = exp.interface.as_str();
        let before = self.read(iface).await;
        let device = match &before {
            Err(ReadError::Missing(_)) => DeviceStatus::Missing,
            Err(e) => DeviceStatus::Unreadable {
                reason: e.to_string(),
            },
            Ok(_) => DeviceStatus::Read,
        };
        let mut probes = vec![ProbeOutcome::NoAnswer; peers.len()];
        if device != DeviceStatus::Missing {
            let mut set = tokio::task::JoinSet::new();
            for (i, p) in peers.iter().enumerate() {
                let addr = SocketAddr::new(IpAddr::V4(p.tunnel_ip), self.options.port);
                let timeout = self.options.timeout;
                set.spawn(async move { (i, probe(addr, timeout).await) });
            }
            while let Some(res) = set.join_next().await {
                if let Ok((i, outcome)) = res
                    && let Some(slot) = probes.get_mut(i)
                {
                    *slot = outcome;
                }
            }
        }
        let after = match &before {
            Ok(_) => self.read(iface).await.ok(),
            Err(_) => None,
        };
        let now = SystemTime::now();
        let health = peers
            .iter()
            .zip(&probes)
            .map(|(p, outcome)| {
                let view = match (&before, &device) {
                    (_, DeviceStatus::Missing) => DeviceView::Missing,
                    (Err(_), DeviceStatus::Unreadable { reason }) => DeviceView::Unreadable(reason),
                    (Ok(b), _) => DeviceView::Read {
                        before: b.peer(&p.public_key),
                        after: after.as_ref().and_then(|a| a.peer(&p.public_key)),
                    },
                    (Err(_), _) => DeviceView::Unreadable("unreadable"),
                };
                diagnose(
                    Expected {
                        name: &p.name,
                        tunnel_ip: p.tunnel_ip,
                        endpoint: p.endpoint,
                        wg_port: exp.wg_port,
                        probe_timeout: self.options.timeout,
                    },
                    &view,
                    outcome,
                    now,
                )
            })
            .collect();
        TunnelReport {
            interface: iface.to_owned(),
            device,
            peers: health,
            elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    async fn read(&self, iface: &str) -> Result<DeviceSnapshot, ReadError> {
        if !os::interface_exists(iface) {
            return Err(ReadError::Missing(iface.to_owned()));
        }
        if !self.options.read_device {
            return Err(ReadError::PermissionDenied(iface.to_owned()));
        }
        read_device(iface, self.options.device_timeout).await
    }
}

/// A TCP connect with a timeout, classified.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> ProbeOutcome {
    let start = Instant::now();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => ProbeOutcome::NoAnswer,
        Ok(Ok(_stream)) => ProbeOutcome::Answered(start.elapsed()),
        Ok(Err(e)) => match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ProbeOutcome::Refused(start.elapsed()),
            std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                ProbeOutcome::NoRoute(e.to_string())
            }
            std::io::ErrorKind::TimedOut => ProbeOutcome::NoAnswer,
            _ => ProbeOutcome::Failed(e.to_string()),
        },
    }
}

/// The "VPN up" gate (`vpn_up`). It reads what to expect from the recorded state at check
/// time, so a pipeline can be built before `setup_vpn` has run.
#[derive(Debug, Clone, Default)]
pub struct VpnGate {
    probe: TunnelProbe,
    fixed: Option<Arc<TunnelExpectation>>,
}

impl VpnGate {
    /// A gate that derives the expectation from the state.
    pub fn new(options: ProbeOptions) -> Self {
        VpnGate {
            probe: TunnelProbe::new(options),
            fixed: None,
        }
    }

    /// A gate with a fixed expectation (tests, `vpn status` with an explicit network).
    pub fn with_expectation(options: ProbeOptions, exp: TunnelExpectation) -> Self {
        VpnGate {
            probe: TunnelProbe::new(options),
            fixed: Some(Arc::new(exp)),
        }
    }

    /// The probe behind the gate.
    pub fn probe(&self) -> &TunnelProbe {
        &self.probe
    }

    /// Checks all peers against `state` (or the fixed expectation).
    ///
    /// # Errors
    /// [`PlanError`] when WireGuard was not set up in `state`.
    pub async fn report(&self, state: &DeploymentState) -> Result<TunnelReport, PlanError> {
        let exp = match &self.fixed {
            Some(e) => e.as_ref().clone(),
            None => TunnelExpectation::from_state(state)?,
        };
        Ok(self.probe.report(&exp).await)
    }
}

#[async_trait]
impl Gate for VpnGate {
    fn name(&self) -> &str {
        "vpn_up"
    }

    fn timeout(&self) -> Duration {
        self.probe.options.timeout + self.probe.options.device_timeout * 2 + Duration::from_secs(1)
    }

    async fn check(&self, ctx: &GateContext) -> GateVerdict {
        match self.report(&ctx.state).await {
            Ok(r) => r.verdict(),
            Err(e) => GateVerdict::from_error(&e),
        }
    }
}
