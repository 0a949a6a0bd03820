//! The hook a VM backend (the lab) implements to turn emulated VMs into something real.

use std::net::IpAddr;

use async_trait::async_trait;
use k0rdent_core::secret::Secret;

use super::inbound_rules::InboundRules;

/// A VM the emulator is creating, as the backend sees it.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default)]
pub struct BackendVm {
    /// VM name (also the computer name).
    pub name: String,
    /// Azure's `vmId` for this instance.
    pub vm_id: String,
    pub admin_user: String,
    /// Authorized SSH public keys.
    pub ssh_public_keys: Vec<String>,
    /// The decoded custom data (cloud-init).
    pub custom_data: Secret<Vec<u8>>,
    /// The public IP the emulator allocated (the backend may replace it).
    pub public_ip: Option<IpAddr>,
    /// The private IP of its NIC.
    pub private_ip: Option<IpAddr>,
    /// The address prefix of the NIC's subnet (`10.0.1.0/24`), as the VM learns it from
    /// Azure's DHCP; the subnet's first address is its gateway.
    pub subnet_prefix: Option<String>,
    pub size: String,
    /// ARM's zone string (`"1"`); `None` for a regional VM.
    pub zone: Option<String>,
    /// The inbound security rules in effect for its NIC (its subnet's NSG, then its own),
    /// as they were when the VM was created; no NSG at all lets everything in.
    pub inbound: InboundRules,
}

/// What a backend hook reports when it cannot do what the emulated operation asks; its text
/// becomes the operation's error message.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// Called as emulated VMs are created, deleted, started and deallocated. The emulator's
/// operation completes only after the hook returns; an error makes it end `Failed`.
#[async_trait]
pub trait VmBackend: Send + Sync {
    /// A VM was created. Returning an address makes it the VM's public IP.
    async fn create(&self, vm: &BackendVm) -> Result<Option<IpAddr>, BackendError>;
    /// A VM was deleted.
    async fn delete(&self, name: &str) -> Result<(), BackendError>;
    /// A stopped or deallocated VM was started.
    async fn start(&self, name: &str) -> Result<(), BackendError>;
    /// A VM was deallocated (or powered off).
    async fn deallocate(&self, name: &str) -> Result<(), BackendError>;
    /// The inbound rules in effect for a VM's NIC changed (an NSG, one of its rules, the
    /// subnet's or the NIC's association), as Azure applies them to a running VM within
    /// seconds. `rules` are the ones in effect now. Nothing waits for it: an error is logged.
    async fn inbound_changed(&self, name: &str, rules: &InboundRules) -> Result<(), BackendError> {
        let _ = (name, rules);
        Ok(())
    }
}
