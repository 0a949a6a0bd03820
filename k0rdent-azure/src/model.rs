//! The ARM JSON shapes this crate reads, as the public ARM REST reference documents them.
//! Every field is optional or defaulted: ARM adds fields freely and omits empty ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One page of a list call: `value` plus an optional `nextLink`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    /// Items on this page.
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// The absolute URL of the next page.
    #[serde(default, rename = "nextLink")]
    pub next_link: Option<String>,
}

/// A resource from `Resources - List By Resource Group` (`GenericResourceExpanded`);
/// `provisioningState`, `createdTime` and `changedTime` appear only when asked for in `$expand`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenericResource {
    /// Resource id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Type (`Microsoft.Compute/virtualMachines`).
    #[serde(default, rename = "type")]
    pub rtype: String,
    /// Location.
    #[serde(default)]
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Provisioning state (with `$expand=provisioningState`).
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// Creation time (with `$expand=createdTime`).
    #[serde(default)]
    pub created_time: Option<String>,
    /// Last change (with `$expand=changedTime`).
    #[serde(default)]
    pub changed_time: Option<String>,
    /// Who manages it (e.g. the VM owning a disk).
    #[serde(default)]
    pub managed_by: Option<String>,
}

/// A resource group.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResourceGroup {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Location.
    #[serde(default)]
    pub location: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Properties.
    #[serde(default)]
    pub properties: ProvisioningProperties,
}

/// `properties` that only matter for their provisioning state.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningProperties {
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
}

/// One instance-view status (`ProvisioningState/succeeded`, `PowerState/running`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceViewStatus {
    /// Code.
    #[serde(default)]
    pub code: String,
    /// Level (`Info`, `Warning`, `Error`).
    #[serde(default)]
    pub level: Option<String>,
    /// Human text.
    #[serde(default)]
    pub display_status: Option<String>,
    /// Detail.
    #[serde(default)]
    pub message: Option<String>,
    /// When.
    #[serde(default)]
    pub time: Option<String>,
}

/// A VM instance view (from `…/instanceView`, `$expand=instanceView` or a status-only list).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// Computer name.
    #[serde(default)]
    pub computer_name: Option<String>,
    /// Statuses.
    #[serde(default)]
    pub statuses: Vec<InstanceViewStatus>,
}

impl InstanceView {
    /// The `PowerState/<state>` value, lowercased, if reported.
    pub fn power_state(&self) -> Option<String> {
        self.statuses
            .iter()
            .find_map(|s| s.code.strip_prefix("PowerState/"))
            .map(str::to_ascii_lowercase)
    }

    /// The `ProvisioningState/<state>` value, if reported.
    pub fn provisioning_state(&self) -> Option<String> {
        self.statuses
            .iter()
            .find_map(|s| s.code.strip_prefix("ProvisioningState/"))
            .map(str::to_owned)
    }
}

/// A virtual machine (the fields we read).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VirtualMachine {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Location.
    #[serde(default)]
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Zones.
    #[serde(default)]
    pub zones: Vec<String>,
    /// Properties.
    #[serde(default)]
    pub properties: VmProperties,
}

/// `properties` of a VM.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmProperties {
    /// Azure's unique id for this VM instance (changes when the VM is re-created).
    #[serde(default)]
    pub vm_id: Option<String>,
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// Size.
    #[serde(default)]
    pub hardware_profile: Option<HardwareProfile>,
    /// Priority (`Regular`, `Spot`).
    #[serde(default)]
    pub priority: Option<String>,
    /// Instance view, when expanded or in a status-only list.
    #[serde(default)]
    pub instance_view: Option<InstanceView>,
    /// Network interfaces.
    #[serde(default)]
    pub network_profile: Option<NetworkProfile>,
    /// Storage.
    #[serde(default)]
    pub storage_profile: Option<serde_json::Value>,
    /// OS profile (custom data is never returned).
    #[serde(default)]
    pub os_profile: Option<serde_json::Value>,
}

/// `hardwareProfile`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareProfile {
    /// Size.
    #[serde(default)]
    pub vm_size: Option<String>,
}

/// `networkProfile`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    /// NIC references.
    #[serde(default)]
    pub network_interfaces: Vec<SubResource>,
}

/// A reference to another resource by id.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SubResource {
    /// Id.
    #[serde(default)]
    pub id: String,
}

/// A public IP address.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PublicIp {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Properties.
    #[serde(default)]
    pub properties: PublicIpProperties,
}

/// `properties` of a public IP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpProperties {
    /// The address (absent until allocated).
    #[serde(default)]
    pub ip_address: Option<String>,
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// The NIC ip configuration using it.
    #[serde(default)]
    pub ip_configuration: Option<SubResource>,
}

/// A network interface.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkInterface {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Properties.
    #[serde(default)]
    pub properties: NicProperties,
}

/// `properties` of a NIC.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicProperties {
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// IP configurations.
    #[serde(default)]
    pub ip_configurations: Vec<NicIpConfiguration>,
    /// The VM it is attached to.
    #[serde(default)]
    pub virtual_machine: Option<SubResource>,
}

/// One NIC IP configuration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NicIpConfiguration {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Properties.
    #[serde(default)]
    pub properties: NicIpConfigurationProperties,
}

/// `properties` of a NIC IP configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicIpConfigurationProperties {
    /// Private address.
    #[serde(default)]
    pub private_ip_address: Option<String>,
    /// Subnet.
    #[serde(default)]
    pub subnet: Option<SubResource>,
    /// Public IP.
    #[serde(default)]
    pub public_ip_address: Option<SubResource>,
}

/// A network security group.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecurityGroup {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Properties.
    #[serde(default)]
    pub properties: SecurityGroupProperties,
}

/// `properties` of an NSG.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupProperties {
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// User rules.
    #[serde(default)]
    pub security_rules: Vec<SecurityRule>,
}

/// One NSG rule.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecurityRule {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Properties.
    #[serde(default)]
    pub properties: SecurityRuleProperties,
}

/// `properties` of an NSG rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRuleProperties {
    /// `Tcp`, `Udp`, `*`, ...
    #[serde(default)]
    pub protocol: String,
    /// `Allow` or `Deny`.
    #[serde(default)]
    pub access: String,
    /// `Inbound` or `Outbound`.
    #[serde(default)]
    pub direction: String,
    /// Priority.
    #[serde(default)]
    pub priority: u32,
    /// Source prefix (`*`, `Internet`, a CIDR).
    #[serde(default)]
    pub source_address_prefix: Option<String>,
    /// Destination port or range (`22`, `*`, `1000-2000`).
    #[serde(default)]
    pub destination_port_range: Option<String>,
    /// Several destination ports.
    #[serde(default)]
    pub destination_port_ranges: Vec<String>,
}

impl SecurityRuleProperties {
    /// Whether this rule covers destination port `port`.
    pub fn covers_port(&self, port: u16) -> bool {
        let covers = |r: &str| {
            let r = r.trim();
            if r == "*" {
                return true;
            }
            match r.split_once('-') {
                Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
                    (Ok(a), Ok(b)) => (a..=b).contains(&port),
                    _ => false,
                },
                None => r.parse::<u16>() == Ok(port),
            }
        };
        self.destination_port_range.as_deref().is_some_and(covers)
            || self.destination_port_ranges.iter().any(|r| covers(r))
    }

    /// Whether it allows inbound traffic from anywhere on the internet.
    pub fn allows_internet_inbound(&self) -> bool {
        self.access.eq_ignore_ascii_case("Allow")
            && self.direction.eq_ignore_ascii_case("Inbound")
            && matches!(
                self.source_address_prefix.as_deref(),
                Some("*" | "Internet" | "0.0.0.0/0" | "Any") | None
            )
    }
}

/// A virtual network.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VirtualNetwork {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Properties.
    #[serde(default)]
    pub properties: VnetProperties,
}

/// `properties` of a VNet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VnetProperties {
    /// Provisioning state.
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// Address space.
    #[serde(default)]
    pub address_space: Option<AddressSpace>,
    /// Subnets.
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

/// `addressSpace`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpace {
    /// Prefixes.
    #[serde(default)]
    pub address_prefixes: Vec<String>,
}

/// A subnet.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Subnet {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Properties.
    #[serde(default)]
    pub properties: SubnetProperties,
}

/// `properties` of a subnet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProperties {
    /// Prefix.
    #[serde(default)]
    pub address_prefix: Option<String>,
    /// Associated NSG.
    #[serde(default)]
    pub network_security_group: Option<SubResource>,
}

/// The body of an `Azure-AsyncOperation` status URL.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// Operation id.
    #[serde(default)]
    pub id: Option<String>,
    /// Operation name.
    #[serde(default)]
    pub name: Option<String>,
    /// `InProgress`, `Succeeded`, `Failed`, `Canceled` (or an RP-specific non-terminal value).
    #[serde(default)]
    pub status: String,
    /// Start.
    #[serde(default)]
    pub start_time: Option<String>,
    /// End.
    #[serde(default)]
    pub end_time: Option<String>,
    /// Progress.
    #[serde(default)]
    pub percent_complete: Option<f64>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// The error object of an ARM error response or of a failed operation.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Machine-readable code.
    #[serde(default)]
    pub code: String,
    /// Human message.
    #[serde(default)]
    pub message: String,
    /// What it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nested errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// Extra information.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<serde_json::Value>,
}

/// An ARM error response: `{"error": {...}}` (some RPs send the object without the wrapper).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ErrorResponse {
    /// `{"error": {"code", "message", ...}}`.
    Wrapped {
        /// The error.
        error: ErrorDetail,
    },
    /// `{"code", "message"}`.
    Bare(ErrorDetail),
}

impl ErrorResponse {
    /// The error object.
    pub fn into_detail(self) -> ErrorDetail {
        match self {
            ErrorResponse::Wrapped { error } | ErrorResponse::Bare(error) => error,
        }
    }
}

/// A resource SKU from `Resource Skus - List`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSku {
    /// `virtualMachines`, `disks`, ...
    #[serde(default)]
    pub resource_type: String,
    /// Size name (`Standard_D2s_v5`).
    #[serde(default)]
    pub name: String,
    /// Quota family (`standardDSv5Family`).
    #[serde(default)]
    pub family: Option<String>,
    /// Locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// Zones per location.
    #[serde(default)]
    pub location_info: Vec<SkuLocationInfo>,
    /// Capabilities (`vCPUs`, `CpuArchitectureType`, ...).
    #[serde(default)]
    pub capabilities: Vec<SkuCapability>,
    /// Restrictions for this subscription.
    #[serde(default)]
    pub restrictions: Vec<SkuRestriction>,
}

impl ResourceSku {
    /// A capability value by name.
    pub fn capability(&self, name: &str) -> Option<&str> {
        self.capabilities
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
            .map(|c| c.value.as_str())
    }
}

/// Zones of a SKU in one location.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkuLocationInfo {
    /// Location.
    #[serde(default)]
    pub location: String,
    /// Zones.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// One SKU capability.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkuCapability {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// One SKU restriction.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuRestriction {
    /// `Location` or `Zone`.
    #[serde(default, rename = "type")]
    pub rtype: String,
    /// Locations (for `Location`).
    #[serde(default)]
    pub values: Vec<String>,
    /// Where it applies.
    #[serde(default)]
    pub restriction_info: Option<SkuRestrictionInfo>,
    /// `NotAvailableForSubscription` or `QuotaId`.
    #[serde(default)]
    pub reason_code: Option<String>,
}

/// Where a restriction applies.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkuRestrictionInfo {
    /// Locations.
    #[serde(default)]
    pub locations: Vec<String>,
    /// Zones.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// One usage from `Usage - List`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Used.
    #[serde(default)]
    pub current_value: i64,
    /// Limit.
    #[serde(default)]
    pub limit: i64,
    /// Name.
    #[serde(default)]
    pub name: UsageName,
}

/// A usage name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageName {
    /// Machine name (`cores`, `lowPriorityCores`, `standardDSv5Family`).
    #[serde(default)]
    pub value: String,
    /// Human name.
    #[serde(default)]
    pub localized_value: Option<String>,
}

/// A resource provider (`Providers - Get`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Namespace.
    #[serde(default)]
    pub namespace: String,
    /// `Registered`, `NotRegistered`, `Registering`, ...
    #[serde(default)]
    pub registration_state: Option<String>,
}

/// A VM image version reference (`Virtual Machine Images - List`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageVersionRef {
    /// Version.
    #[serde(default)]
    pub name: String,
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
}

/// A VM image (`Virtual Machine Images - Get`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmImage {
    /// Version.
    #[serde(default)]
    pub name: String,
    /// Properties.
    #[serde(default)]
    pub properties: VmImageProperties,
}

/// `properties` of a VM image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmImageProperties {
    /// `x64` or `Arm64`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// `V1` or `V2`.
    #[serde(default)]
    pub hyper_v_generation: Option<String>,
}

/// Terminal provisioning states (a missing state means succeeded).
pub fn is_terminal(state: Option<&str>) -> bool {
    match state {
        None => true,
        Some(s) => ["Succeeded", "Failed", "Canceled", "Cancelled"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(s)),
    }
}

/// Whether a provisioning state is `Succeeded` (or absent).
pub fn is_succeeded(state: Option<&str>) -> bool {
    state.is_none_or(|s| s.eq_ignore_ascii_case("Succeeded"))
}

/// Whether a provisioning state is `Failed`.
pub fn is_failed(state: Option<&str>) -> bool {
    state.is_some_and(|s| s.eq_ignore_ascii_case("Failed"))
}

/// Whether a provisioning state is `Canceled`: terminal, but not success — the resource is
/// written again, never taken as done.
pub fn is_canceled(state: Option<&str>) -> bool {
    state.is_some_and(|s| s.eq_ignore_ascii_case("Canceled") || s.eq_ignore_ascii_case("Cancelled"))
}
