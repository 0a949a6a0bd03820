//! The api-version used per resource type (each must be one ARM accepts for that type).

/// Resource groups, resource lists, providers, subscriptions.
pub const RESOURCES: &str = "2021-04-01";
/// Virtual machines, images, usages, and compute operations.
pub const COMPUTE: &str = "2024-07-01";
/// `Microsoft.Compute/disks` has an api-version of its own, apart from [`COMPUTE`].
pub const DISKS: &str = "2024-03-02";
/// `Resource Skus - List` has an api-version of its own, apart from [`COMPUTE`].
pub const SKUS: &str = "2021-07-01";
/// Public IPs, NICs, VNets, NSGs and network operations.
pub const NETWORK: &str = "2024-05-01";
/// `Subscriptions - Get`; no call in this crate uses it yet.
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

/// The api-version for the resource a path addresses (`…/providers/Microsoft.Compute/
/// virtualMachines/x`); resource groups and anything else get [`RESOURCES`].
pub fn for_path(path: &str) -> &'static str {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
    {
        Some(i) if segs.len() > i + 2 => for_type(&format!("{}/{}", segs[i + 1], segs[i + 2])),
        _ => RESOURCES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_get_their_type_s_api_version() {
        assert_eq!(
            for_path(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
            ),
            COMPUTE
        );
        assert_eq!(
            for_path("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d"),
            DISKS
        );
        assert_eq!(
            for_path(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkInterfaces/n"
            ),
            NETWORK
        );
        assert_eq!(for_path("/subscriptions/s/resourceGroups/g"), RESOURCES);
    }
}
