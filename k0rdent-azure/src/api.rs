//! The api-version used per resource type (each must be one ARM accepts for that type).

/// Resource groups, resource lists, providers, subscriptions.
pub const RESOURCES: &str = "2021-04-01";
/// Virtual machines, images, usages, and compute operations.
pub const COMPUTE: &str = "2024-07-01";
/// Managed disks.
pub const DISKS: &str = "2024-03-02";
/// Resource SKUs.
pub const SKUS: &str = "2021-07-01";
/// Public IPs, NICs, VNets, NSGs and network operations.
pub const NETWORK: &str = "2024-05-01";
/// Subscriptions.
pub const SUBSCRIPTIONS: &str = "2022-12-01";

/// The api-version for a resource type (`Microsoft.Compute/virtualMachines`).
pub fn for_type(rtype: &str) -> &'static str {
    let t = rtype.to_ascii_lowercase();
    if t.starts_with("microsoft.compute/disks") {
        DISKS
    } else if t.starts_with("microsoft.compute/") {
        COMPUTE
    } else if t.starts_with("microsoft.network/") {
        NETWORK
    } else {
        RESOURCES
    }
}
