//! The ARM JSON shapes this crate reads, as the public ARM REST reference documents them.
//! Every field is optional or defaulted: ARM adds fields freely and omits empty ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// Structs under `#[allow(missing_docs)]` mirror ARM's JSON field for field (snake_case of the
// property name); a field carries a doc only where ARM's name does not say it all.

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
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenericResource {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// Type (`Microsoft.Compute/virtualMachines`).
    #[serde(default, rename = "type")]
    pub rtype: String,
    #[serde(default)]
    pub location: Option<String>,
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

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResourceGroup {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: ProvisioningProperties,
}

/// `properties` that only matter for their provisioning state.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisioningProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
}

/// One instance-view status (`ProvisioningState/succeeded`, `PowerState/running`).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InstanceViewStatus {
    /// `<kind>/<value>`, e.g. `PowerState/running`; see [`InstanceView::power_state`].
    #[serde(default)]
    pub code: String,
    /// Level (`Info`, `Warning`, `Error`).
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub display_status: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub time: Option<String>,
}

/// A VM instance view (from `…/instanceView`, `$expand=instanceView` or a status-only list).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    #[serde(default)]
    pub computer_name: Option<String>,
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
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VirtualMachine {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub properties: VmProperties,
}

/// `properties` of a VM.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmProperties {
    /// Azure's unique id for this VM instance (changes when the VM is re-created).
    #[serde(default)]
    pub vm_id: Option<String>,
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub hardware_profile: Option<HardwareProfile>,
    /// Priority (`Regular`, `Spot`).
    #[serde(default)]
    pub priority: Option<String>,
    /// Instance view, when expanded or in a status-only list.
    #[serde(default)]
    pub instance_view: Option<InstanceView>,
    #[serde(default)]
    pub network_profile: Option<NetworkProfile>,
    #[serde(default)]
    pub storage_profile: Option<serde_json::Value>,
    /// OS profile (custom data is never returned).
    #[serde(default)]
    pub os_profile: Option<serde_json::Value>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HardwareProfile {
    #[serde(default)]
    pub vm_size: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkProfile {
    #[serde(default)]
    pub network_interfaces: Vec<SubResource>,
}

/// A reference to another resource by id.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct SubResource {
    #[serde(default)]
    pub id: String,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PublicIp {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: PublicIpProperties,
}

/// `properties` of a public IP.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicIpProperties {
    /// The address (absent until allocated).
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// The NIC ip configuration using it.
    #[serde(default)]
    pub ip_configuration: Option<SubResource>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkInterface {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: NicProperties,
}

/// `properties` of a NIC.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub ip_configurations: Vec<NicIpConfiguration>,
    /// The VM it is attached to.
    #[serde(default)]
    pub virtual_machine: Option<SubResource>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NicIpConfiguration {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub properties: NicIpConfigurationProperties,
}

/// `properties` of a NIC IP configuration.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NicIpConfigurationProperties {
    #[serde(default)]
    pub private_ip_address: Option<String>,
    #[serde(default)]
    pub subnet: Option<SubResource>,
    #[serde(default)]
    pub public_ip_address: Option<SubResource>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecurityGroup {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: SecurityGroupProperties,
}

/// `properties` of an NSG.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    /// The group's own rules; ARM's built-in `defaultSecurityRules` are not read.
    #[serde(default)]
    pub security_rules: Vec<SecurityRule>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecurityRule {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub properties: SecurityRuleProperties,
}

/// `properties` of an NSG rule.
#[allow(missing_docs)]
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
    /// 100 to 4096; of the rules that match, the lowest number decides.
    #[serde(default)]
    pub priority: u32,
    /// Source prefix (`*`, `Internet`, a CIDR).
    #[serde(default)]
    pub source_address_prefix: Option<String>,
    /// Destination port or range (`22`, `*`, `1000-2000`).
    #[serde(default)]
    pub destination_port_range: Option<String>,
    /// Used instead of `destination_port_range` when a rule lists several ports.
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

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VirtualNetwork {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: VnetProperties,
}

/// `properties` of a VNet.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VnetProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub address_space: Option<AddressSpace>,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpace {
    #[serde(default)]
    pub address_prefixes: Vec<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Subnet {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub properties: SubnetProperties,
}

/// `properties` of a subnet.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProperties {
    #[serde(default)]
    pub address_prefix: Option<String>,
    #[serde(default)]
    pub network_security_group: Option<SubResource>,
}

/// The body of an `Azure-AsyncOperation` status URL.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// `InProgress`, `Succeeded`, `Failed`, `Canceled` (or an RP-specific non-terminal value).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    /// 0 to 100, when the resource provider reports it.
    #[serde(default)]
    pub percent_complete: Option<f64>,
    /// Present when the operation did not succeed.
    #[serde(default)]
    pub error: Option<ErrorDetail>,
}

/// The error object of an ARM error response or of a failed operation.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Machine-readable (`ResourceNotFound`, `QuotaExceeded`, ...); parsed as
    /// [`crate::client::ArmErrorCode`].
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    /// What it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Nested errors; ARM often puts the specific cause in the first one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// Raw JSON: its shape varies by resource provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<serde_json::Value>,
}

/// An ARM error response: `{"error": {...}}` (some RPs send the object without the wrapper).
#[allow(missing_docs)]
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ErrorResponse {
    /// `{"error": {"code", "message", ...}}`.
    Wrapped { error: ErrorDetail },
    /// `{"code", "message"}`.
    Bare(ErrorDetail),
}

impl ErrorResponse {
    /// The error object, whichever of the two shapes ARM sent.
    pub fn into_detail(self) -> ErrorDetail {
        match self {
            ErrorResponse::Wrapped { error } | ErrorResponse::Bare(error) => error,
        }
    }
}

/// A resource SKU from `Resource Skus - List`.
#[allow(missing_docs)]
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
    #[serde(default)]
    pub locations: Vec<String>,
    /// Per location, the zones the size is offered in.
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
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkuLocationInfo {
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub zones: Vec<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkuCapability {
    #[serde(default)]
    pub name: String,
    /// Always a string, numbers included (`"4"` for `vCPUs`).
    #[serde(default)]
    pub value: String,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuRestriction {
    /// `Location` or `Zone`.
    #[serde(default, rename = "type")]
    pub rtype: String,
    /// The restricted locations, when `rtype` is `Location`.
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub restriction_info: Option<SkuRestrictionInfo>,
    /// `NotAvailableForSubscription` or `QuotaId`.
    #[serde(default)]
    pub reason_code: Option<String>,
}

/// Where a restriction applies.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SkuRestrictionInfo {
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default)]
    pub zones: Vec<String>,
}

/// One usage from `Usage - List`: `current_value` of `limit`, in the unit `name` counts
/// (vCPUs for core quotas).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(default)]
    pub current_value: i64,
    #[serde(default)]
    pub limit: i64,
    #[serde(default)]
    pub name: UsageName,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageName {
    /// Machine name (`cores`, `lowPriorityCores`, `standardDSv5Family`).
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub localized_value: Option<String>,
}

/// A resource provider (`Providers - Get`).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    #[serde(default)]
    pub namespace: String,
    /// `Registered`, `NotRegistered`, `Registering`, ...
    #[serde(default)]
    pub registration_state: Option<String>,
}

/// A VM image version reference (`Virtual Machine Images - List`).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageVersionRef {
    /// The version (`0.20240211.1630`): ARM puts it in `name`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub id: Option<String>,
}

/// A VM image (`Virtual Machine Images - Get`).
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmImage {
    /// The version (`0.20240211.1630`): ARM puts it in `name`.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub properties: VmImageProperties,
}

/// `properties` of a VM image.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmImageProperties {
    /// `x64` or `Arm64`; preflight compares it with the size's `CpuArchitectureType`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// `V1` or `V2`; preflight checks that the size lists it in `HyperVGenerations`.
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
