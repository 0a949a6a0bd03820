//! The tunnel layer's observer (`vpn`): the hub's wg-quick file, the live interface and one
//! reply-through-the-tunnel probe per node, all concurrently, so a verdict on healthy peers
//! takes about one probe timeout (2 s) whatever the number of nodes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_core::observation::{Facts, ObserveError, Observer};
use k0rdent_core::secret::Secret;
use k0rdent_core::state::{DeploymentState, VpnHub};
use k0rdent_core::store::KeyStore;
use k0rdent_ssh::wireguard::{
    DeviceSnapshot, KeyOwner, PrivateKey, Privilege, ProbeOptions, ReadError, ResolvedNetwork,
    TunnelExpectation, TunnelProbe, TunnelReport, read_device_as, read_private_key,
};

/// The name of the tunnel layer's observer (and the key of its failures in a snapshot).
pub const VPN_OBSERVER: &str = "vpn";

/// How the hub interface looked.
#[derive(Debug, Clone)]
pub enum DeviceFact {
    /// Up and configured with the hub's key.
    Up(DeviceSnapshot),
    /// There is no such interface (never brought up, `vpn down`, or a reboot).
    Missing,
    /// The link exists but is not configured as the hub (a `wg-quick up` killed half-way):
    /// it must be taken down and brought up again.
    HalfBuilt(String),
    /// It exists but could not be read (no privileges, a dead userspace daemon).
    Unreadable(String),
}

/// What the tunnel observer saw. It holds the hub's file and private key, so it never
/// prints them (no `Debug` of the secrets).
#[derive(Clone)]
pub struct VpnFacts {
    /// The recorded WireGuard network; `None` before `prepare_deployment` recorded one.
    pub network: Option<ResolvedNetwork>,
    /// The hub's private key from `keys/` (`None`: missing or unreadable, see `key_error`).
    pub hub_key: Option<PrivateKey>,
    /// Why the hub key could not be read.
    pub key_error: Option<String>,
    /// The hub's wg-quick file as written (`None`: not written yet).
    pub hub_file: Option<Secret<String>>,
    /// The live interface.
    pub device: DeviceFact,
    /// Per node, whether it answers through the tunnel (only when the interface exists).
    pub report: Option<TunnelReport>,
    /// The machine the state names as the hub.
    pub hub: Option<VpnHub>,
}

impl std::fmt::Debug for VpnFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpnFacts")
            .field("hub_file", &self.hub_file.as_ref().map(|_| "[redacted]"))
            .field("device", &self.device)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

/// Reads the tunnel's facts: the file and key from the key store, the device, the probes.
pub struct VpnObserver {
    keys: Arc<dyn KeyStore>,
    probe: ProbeOptions,
}

impl VpnObserver {
    /// An observer reading keys and the hub file from `keys`.
    pub fn new(keys: Arc<dyn KeyStore>, probe: ProbeOptions) -> Self {
        VpnObserver { keys, probe }
    }
}

/// Classifies a read of the hub interface.
pub fn classify_device(
    read: Result<DeviceSnapshot, ReadError>,
    net: &ResolvedNetwork,
) -> DeviceFact {
    match read {
        Err(ReadError::Missing(_)) => DeviceFact::Missing,
        Err(e) => DeviceFact::Unreadable(e.to_string()),
        Ok(d) if d.public_key.as_ref() != Some(&net.hub_public_key) => {
            DeviceFact::HalfBuilt(match d.public_key {
                None => "the interface exists but has no private key (a `wg-quick up` that \
                         did not finish)"
                    .to_owned(),
                Some(_) => {
                    "the interface exists with another private key than the hub's".to_owned()
                }
            })
        }
        Ok(d) => DeviceFact::Up(d),
    }
}

#[async_trait]
impl Observer for VpnObserver {
    fn name(&self) -> &str {
        VPN_OBSERVER
    }

    /// New VMs (peers), the hub file and the interface.
    fn affected_by(&self, step: &k0rdent_core::StepId) -> bool {
        matches!(
            step.phase(),
            "prepare_deployment" | "create_vms" | "setup_vpn" | "connect_vpn"
        )
    }

    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError> {
        let Ok(net) = ResolvedNetwork::from_state(state) else {
            return Ok(Facts::new(VpnFacts {
                network: None,
                hub_key: None,
                key_error: None,
                hub_file: None,
                device: DeviceFact::Missing,
                report: None,
                hub: state.vpn_hub.clone(),
            }));
        };
        let file_name = format!("{}.conf", net.interface);
        let (key, file) = tokio::join!(
            read_private_key(&*self.keys, &KeyOwner::Hub),
            self.keys.get_secret(&file_name)
        );
        let hub_file = file
            .map_err(|e| ObserveError::new(format!("reading keys/{file_name}: {e}")))?
            .map(|s| Secret::new(String::from_utf8_lossy(s.expose()).into_owned()));
        let (hub_key, key_error) = match key {
            Ok(k) => (Some(k), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let iface = net.interface.as_str();
        let device = if k0rdent_ssh::os::interface_exists(iface) {
            classify_device(
                read_device_as(
                    iface,
                    self.probe.device_timeout.max(Duration::from_secs(1)),
                    Privilege::detect(),
                )
                .await,
                &net,
            )
        } else {
            DeviceFact::Missing
        };
        let report = match device {
            DeviceFact::Missing => None,
            _ => {
                let exp = TunnelExpectation::from_state(state)
                    .map_err(|e| ObserveError::new(e.to_string()))?;
                Some(TunnelProbe::new(self.probe).report(&exp).await)
            }
        };
        Ok(Facts::new(VpnFacts {
            network: Some(net),
            hub_key,
            key_error,
            hub_file,
            device,
            report,
            hub: state.vpn_hub.clone(),
        }))
    }
}
