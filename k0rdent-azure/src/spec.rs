//! The typed inputs of the Azure provider. The CLI fills them from the configuration; nothing in
//! this crate reads configuration files or the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

pub use k0rdent_core::role::NodeRole;
use k0rdent_core::secret::Secret;

use crate::naming::{AdminUserName, AvailabilityZone, Location, ResourceGroupName, VmSize};

/// ARM write concurrency when the configuration does not say.
pub const DEFAULT_WRITE_CONCURRENCY: usize = 10;

/// Largest custom data Azure accepts, decoded: "The maximum length of the binary array is
/// 65535 bytes" (the Compute REST reference of `osProfile.customData`).
pub const MAX_CUSTOM_DATA: usize = 65_535;

/// Everything the Azure half of a deployment needs.
#[derive(Debug, Clone)]
pub struct AzureSpec {
    /// The deployment's cluster id (`k0rdent-xxxxxxxx`); every name and tag derives from it.
    pub cluster_id: String,
    /// Azure location (region), e.g. `westeurope`; [`AzureSpec::validate`] checks it is a
    /// [`Location`].
    pub location: String,
    /// Resource group name; `None` = `<cluster id>-resgrp`. Checked as a
    /// [`ResourceGroupName`].
    pub resource_group: Option<String>,
    /// Address space of the virtual network (e.g. `10.0.0.0/16`).
    pub vnet_cidr: Ipv4Cidr,
    /// Address prefix of the subnet, inside `vnet_cidr` (e.g. `10.0.1.0/24`).
    pub subnet_cidr: Ipv4Cidr,
    /// The deployment's WireGuard UDP port: the only inbound port the NSG opens.
    pub wireguard_port: u16,
    /// Value of the `owner` tag (the deployer identity).
    pub owner: String,
    /// Extra tags put on every resource (ours win on a clash).
    pub extra_tags: BTreeMap<String, String>,
    /// The VMs, in the order they should be listed.
    pub vms: Vec<VmSpec>,
    /// At most this many ARM write requests (PUT/PATCH/POST/DELETE) in flight at once.
    pub write_concurrency: usize,
    /// The deployment was made by the Bash tool and imported (`k0rdent import-bash-state`).
    /// The Azure CLI tagged only the resource group, so resources inside the group without a
    /// cluster-id tag are accepted as this deployment's; and what exists is adopted as it is:
    /// no tags are written onto it and its NSG's extra rules (TCP 22) are left in place.
    pub imported: bool,
}

/// One VM, with its own NIC, public IP and OS disk; [`VmSpec::validate`] checks it.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// VM name, also the computer name and the Kubernetes node name (`k0s-controller-1`).
    pub name: String,
    /// What the node does; its `role` tag and node record say so.
    pub role: NodeRole,
    /// VM size, e.g. `Standard_D2s_v5`; checked as a [`VmSize`].
    pub size: String,
    /// Availability zone (1–3), or `None` for a regional VM.
    pub zone: Option<u8>,
    /// Spot VMs are created with a max price of -1: never evicted for price, only for capacity.
    pub priority: Priority,
    /// What Azure does on a Spot eviction (only for Spot).
    pub eviction_policy: EvictionPolicy,
    /// Marketplace image; preflight checks that it exists and suits `size`.
    pub image: ImageRef,
    /// Admin user name; checked as an [`AdminUserName`].
    pub admin_user: String,
    /// The admin user's SSH public key (OpenSSH format).
    pub ssh_public_key: String,
    /// Cloud-init custom data. Azure cannot change it later; it may hold private keys.
    pub custom_data: Secret<Vec<u8>>,
    /// OS disk size in GB.
    pub os_disk_size_gb: u32,
    /// OS disk storage type (`StandardSSD_LRS`, `Premium_LRS`, ...).
    pub os_disk_type: String,
    /// Set for a VM another tool created (the Bash tool's `az vm create`): its resources keep
    /// the names they were given, and its custom data cannot be compared with ours (ARM never
    /// returns custom data), so it is never replaced to change it.
    pub adopted: Option<AdoptedVm>,
}

/// The names the Azure CLI gave an adopted VM's resources (`az vm create` defaults), which
/// differ from ours (`<vm>-pip`, `<vm>-nic`). Its OS disk is auto-named and never addressed:
/// a VM created again gets ours (`<vm>-osdisk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptedVm {
    /// Its public IP resource (`<vm>PublicIP` for `az vm create`).
    pub public_ip: String,
    /// Its NIC (`<vm>VMNic` for `az vm create`).
    pub nic: String,
}

/// Node attribute (`nodes.<vm>.attributes` in the state) naming an adopted VM's public IP
/// resource; written by `k0rdent import-bash-state`, read back with
/// [`AdoptedVm::from_attributes`].
pub const ADOPTED_PUBLIC_IP_ATTR: &str = "azure_public_ip_name";
/// Node attribute naming an adopted VM's NIC (see [`ADOPTED_PUBLIC_IP_ATTR`]).
pub const ADOPTED_NIC_ATTR: &str = "azure_nic_name";
/// Setting (`settings.<key>` in the state) naming the tool whose deployment was imported
/// (`k0rdent-azure-setup`); its presence makes [`AzureSpec::imported`] true.
pub const IMPORTED_FROM_SETTING: &str = "imported_from";

impl AdoptedVm {
    /// The adopted names recorded in a node's attributes, if both are there.
    pub fn from_attributes(attrs: &BTreeMap<String, serde_json::Value>) -> Option<Self> {
        let get = |k: &str| attrs.get(k).and_then(serde_json::Value::as_str);
        Some(AdoptedVm {
            public_ip: get(ADOPTED_PUBLIC_IP_ATTR)?.to_owned(),
            nic: get(ADOPTED_NIC_ATTR)?.to_owned(),
        })
    }

    /// The names `az vm create` gives the NIC and public IP of `vm` when none are passed.
    pub fn az_cli_defaults(vm: &str) -> Self {
        AdoptedVm {
            public_ip: format!("{vm}PublicIP"),
            nic: format!("{vm}VMNic"),
        }
    }
}

/// Whether a VM is billed as usual or as Spot (ARM's `properties.priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Priority {
    /// Pay as you go.
    Regular,
    /// Spot: cheaper, can be evicted.
    Spot,
}

impl Priority {
    /// The value of ARM's `priority` property.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Regular => "Regular",
            Priority::Spot => "Spot",
        }
    }
}

impl FromStr for Priority {
    type Err = SpecError;
    /// Case-insensitive (`spot`, `Spot`, `SPOT`).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_lowercase().as_str() {
            "regular" => Ok(Priority::Regular),
            "spot" => Ok(Priority::Spot),
            _ => Err(SpecError::new(
                "vm_priority",
                format!("{s:?} must be Regular or Spot"),
            )),
        }
    }
}

/// What happens to an evicted Spot VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum EvictionPolicy {
    /// Stop and deallocate (disks kept; `deploy` starts it again).
    Deallocate,
    /// Delete the VM and its disks.
    Delete,
}

impl EvictionPolicy {
    /// The value of ARM's `evictionPolicy` property.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionPolicy::Deallocate => "Deallocate",
            EvictionPolicy::Delete => "Delete",
        }
    }
}

impl FromStr for EvictionPolicy {
    type Err = SpecError;
    /// Case-insensitive (`delete`, `Delete`, `DELETE`).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_lowercase().as_str() {
            "deallocate" => Ok(EvictionPolicy::Deallocate),
            "delete" => Ok(EvictionPolicy::Delete),
            _ => Err(SpecError::new(
                "vm_eviction_policy",
                format!("{s:?} must be Deallocate or Delete"),
            )),
        }
    }
}

/// A marketplace image, `publisher:offer:sku:version` (`Debian:debian-12:12-gen2:latest`).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ImageRef {
    pub publisher: String,
    pub offer: String,
    pub sku: String,
    /// Version (`latest` or a version number).
    pub version: String,
}

impl FromStr for ImageRef {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let parts: Vec<&str> = s.split(':').collect();
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if parts.len() != 4 || !parts.iter().all(|p| valid(p)) {
            return Err(SpecError::new(
                "vm_image",
                format!(
                    "{s:?} is not an image reference; use publisher:offer:sku:version, \
                     e.g. Debian:debian-12:12-gen2:latest"
                ),
            ));
        }
        Ok(ImageRef {
            publisher: parts[0].to_owned(),
            offer: parts[1].to_owned(),
            sku: parts[2].to_owned(),
            version: parts[3].to_owned(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.publisher, self.offer, self.sku, self.version
        )
    }
}

/// An IPv4 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Cidr {
    /// The network address; its host bits are always zero.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains(&self, other: &Ipv4Cidr) -> bool {
        other.len >= self.len
            && (u32::from(other.addr) & Self::mask(self.len)) == u32::from(self.addr)
    }
}

/// Text that is not an IPv4 network in CIDR notation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/`.
    #[error("{0:?} is not in CIDR notation (e.g. 10.0.0.0/16)")]
    NotCidr(String),
    /// The part before the `/` is not an IPv4 address.
    #[error("{text:?}: {addr:?} is not an IPv4 address")]
    Address {
        /// The whole text.
        text: String,
        /// The address part.
        addr: String,
    },
    /// The prefix length is not 0–32.
    #[error("{0:?}: prefix length must be 0–32")]
    PrefixLength(String),
    /// Bits below the prefix are set, so the text names a host, not a network.
    #[error("{text:?} has host bits set; the network is {network}")]
    HostBits {
        /// The whole text.
        text: String,
        /// The network the prefix length gives.
        network: String,
    },
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| CidrError::NotCidr(s.to_owned()))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| CidrError::Address {
            text: s.to_owned(),
            addr: a.to_owned(),
        })?;
        let len: u8 = l
            .parse()
            .ok()
            .filter(|n| *n <= 32)
            .ok_or_else(|| CidrError::PrefixLength(s.to_owned()))?;
        if u32::from(addr) & !Self::mask(len) != 0 {
            return Err(CidrError::HostBits {
                text: s.to_owned(),
                network: format!(
                    "{}/{len}",
                    Ipv4Addr::from(u32::from(addr) & Self::mask(len))
                ),
            });
        }
        Ok(Ipv4Cidr { addr, len })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl serde::Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A spec value that cannot work, naming the key and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SpecError {
    /// The offending key (as the configuration names it where possible).
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl SpecError {
    #[allow(missing_docs)]
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            key: key.into(),
            message: message.into(),
        }
    }
}

fn valid_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && !s.ends_with('-')
}

impl AzureSpec {
    /// The resource group name.
    pub fn resource_group(&self) -> String {
        self.resource_group
            .clone()
            .unwrap_or_else(|| format!("{}-resgrp", self.cluster_id))
    }

    /// Checks everything that can be checked without Azure.
    ///
    /// # Errors
    /// The first problem found, naming the key.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !valid_name(&self.cluster_id, 40) {
            return Err(SpecError::new(
                "cluster_id",
                format!(
                    "{:?} must be lowercase letters, digits and '-', at most 40 characters",
                    self.cluster_id
                ),
            ));
        }
        Location::parse(&self.location)
            .map_err(|e| SpecError::new("azure.location", e.to_string()))?;
        ResourceGroupName::parse(&self.resource_group())
            .map_err(|e| SpecError::new("azure.resource_group", e.to_string()))?;
        if !self.vnet_cidr.contains(&self.subnet_cidr) {
            return Err(SpecError::new(
                "network.subnet_prefix",
                format!(
                    "{} is not inside the VNet address space {}",
                    self.subnet_cidr, self.vnet_cidr
                ),
            ));
        }
        if self.subnet_cidr.prefix_len() > 29 {
            return Err(SpecError::new(
                "network.subnet_prefix",
                format!(
                    "{} is too small: Azure subnets need at least a /29",
                    self.subnet_cidr
                ),
            ));
        }
        if self.wireguard_port == 0 {
            return Err(SpecError::new(
                "wireguard_port",
                "port 0 cannot be opened; choose 1–65535",
            ));
        }
        if self.write_concurrency == 0 {
            return Err(SpecError::new(
                "azure.write_concurrency",
                "must be at least 1",
            ));
        }
        if self.vms.is_empty() {
            return Err(SpecError::new("cluster", "no VMs to create"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for vm in &self.vms {
            vm.validate()?;
            if !seen.insert(vm.name.as_str()) {
                return Err(SpecError::new(
                    "cluster",
                    format!("VM name {:?} appears twice", vm.name),
                ));
            }
        }
        Ok(())
    }
}

impl VmSpec {
    /// Checks this VM's values.
    ///
    /// # Errors
    /// The first problem found, naming the key.
    pub fn validate(&self) -> Result<(), SpecError> {
        // Linux computer names: at most 64 characters; our suffixes (-osdisk) must fit in 80.
        if !valid_name(&self.name, 56) {
            return Err(SpecError::new(
                "cluster",
                format!(
                    "VM name {:?} must be lowercase letters, digits and '-', at most 56 characters",
                    self.name
                ),
            ));
        }
        if let Some(z) = self.zone {
            AvailabilityZone::new(i64::from(z))
                .map_err(|e| SpecError::new("zones", format!("VM {}: {e}", self.name)))?;
        }
        VmSize::parse(&self.size)
            .map_err(|e| SpecError::new("vm_sizing", format!("VM {}: {e}", self.name)))?;
        AdminUserName::parse(&self.admin_user)
            .map_err(|e| SpecError::new("admin_user", e.to_string()))?;
        let key = self.ssh_public_key.trim();
        if !(key.starts_with("ssh-") || key.starts_with("ecdsa-")) || key.split(' ').count() < 2 {
            return Err(SpecError::new(
                "ssh_public_key",
                format!("VM {}: not an OpenSSH public key", self.name),
            ));
        }
        if self.custom_data.expose().len() > MAX_CUSTOM_DATA {
            return Err(SpecError::new(
                "custom_data",
                format!(
                    "VM {}: custom data is {} bytes; Azure accepts at most {MAX_CUSTOM_DATA} \
                     (decoded)",
                    self.name,
                    self.custom_data.expose().len()
                ),
            ));
        }
        if self.os_disk_size_gb < 30 {
            return Err(SpecError::new(
                "os_disk_size_gb",
                format!("VM {}: at least 30 GB", self.name),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_and_containment() {
        let v: Ipv4Cidr = "10.0.0.0/16".parse().unwrap();
        let s: Ipv4Cidr = "10.0.1.0/24".parse().unwrap();
        assert!(v.contains(&s));
        assert!(!s.contains(&v));
        assert!(!v.contains(&"10.1.0.0/24".parse().unwrap()));
        assert!(
            "10.0.1.1/24"
                .parse::<Ipv4Cidr>()
                .unwrap_err()
                .to_string()
                .contains("host bits")
        );
        assert!("10.0.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.0/33".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn enums_parse_case_insensitively() {
        assert_eq!("spot".parse::<Priority>().unwrap(), Priority::Spot);
        assert_eq!("Regular".parse::<Priority>().unwrap(), Priority::Regular);
        assert_eq!(
            "DEALLOCATE".parse::<EvictionPolicy>().unwrap(),
            EvictionPolicy::Deallocate
        );
        let e = "cheap".parse::<Priority>().unwrap_err();
        assert_eq!(e.key, "vm_priority");
    }

    fn vm() -> VmSpec {
        VmSpec {
            name: "k0s-worker-1".into(),
            role: NodeRole::Worker,
            size: "Standard_D2s_v5".into(),
            zone: Some(1),
            priority: Priority::Regular,
            eviction_policy: EvictionPolicy::Deallocate,
            image: "Debian:debian-12:12-gen2:latest".parse().unwrap(),
            admin_user: "k0rdent".into(),
            ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq1 test".into(),
            custom_data: Secret::new(b"#cloud-config\n".to_vec()),
            os_disk_size_gb: 64,
            os_disk_type: "StandardSSD_LRS".into(),
            adopted: None,
        }
    }

    #[test]
    fn custom_data_may_be_65535_bytes_not_65536() {
        let mut v = vm();
        v.custom_data = Secret::new(vec![b'#'; 65_535]);
        assert!(v.validate().is_ok());
        v.custom_data = Secret::new(vec![b'#'; 65_536]);
        let e = v.validate().unwrap_err();
        assert_eq!(e.key, "custom_data");
        assert!(e.message.contains("65535"), "{e}");
    }

    #[test]
    fn every_admin_user_name_azure_reserves_is_refused() {
        for name in [
            "guest",
            "test1",
            "support_388945a0",
            "user5",
            "root",
            "admin",
        ] {
            let mut v = vm();
            v.admin_user = name.into();
            let e = v.validate().unwrap_err();
            assert_eq!(e.key, "admin_user", "{name}");
            assert!(e.message.contains("reserved by Azure"), "{name}: {e}");
        }
        let mut v = vm();
        v.admin_user = "k0rdent".into();
        assert!(v.validate().is_ok());
    }

    #[test]
    fn image_references_need_four_parts() {
        let i: ImageRef = "Debian:debian-12:12-gen2:latest".parse().unwrap();
        assert_eq!(i.to_string(), "Debian:debian-12:12-gen2:latest");
        assert!("Debian:debian-12:latest".parse::<ImageRef>().is_err());
        assert!("a:b:c:d e".parse::<ImageRef>().is_err());
    }
}
