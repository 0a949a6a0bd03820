//! The Azure identity a deployment lives in, recorded on first use and checked on every run,
//! so a wrong subscription can never make everything look absent and rebuild elsewhere.

use k0rdent_core::state::CloudIdentity;

use crate::client::ArmClient;

/// The identity this client and location address.
pub fn current_identity(client: &ArmClient, location: &str) -> CloudIdentity {
    CloudIdentity {
        subscription_id: client.subscription_id().to_owned(),
        tenant_id: client.tenant_id(),
        arm_endpoint: client.endpoint(),
        location: normalize_location(location),
    }
}

/// `West Europe` → `westeurope`.
pub fn normalize_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// A run addresses another Azure identity than the one the deployment was recorded in.
/// Its text is one line naming what differs, both values, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this deployment lives in {}; refusing to look for it elsewhere \
     (set AZURE_SUBSCRIPTION_ID/K0RDENT_ARM_ENDPOINT/azure.location back, or use another --state-dir)",
    .differences.join(", ")
)]
pub struct IdentityMismatch {
    /// Each difference, e.g. `subscription sub-a (this run: sub-b)`.
    pub differences: Vec<String>,
}

/// Refuses a run against another identity than the recorded one. The tenant is compared only
/// when both are known.
///
/// # Errors
/// [`IdentityMismatch`] naming every difference.
pub fn check_identity(
    recorded: &CloudIdentity,
    current: &CloudIdentity,
) -> Result<(), IdentityMismatch> {
    let mut diffs = Vec::new();
    if !recorded
        .subscription_id
        .eq_ignore_ascii_case(&current.subscription_id)
    {
        diffs.push(format!(
            "subscription {} (this run: {})",
            recorded.subscription_id, current.subscription_id
        ));
    }
    if let (Some(a), Some(b)) = (&recorded.tenant_id, &current.tenant_id)
        && !a.eq_ignore_ascii_case(b)
    {
        diffs.push(format!("tenant {a} (this run: {b})"));
    }
    let ep = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
    if ep(&recorded.arm_endpoint) != ep(&current.arm_endpoint) {
        diffs.push(format!(
            "ARM endpoint {} (this run: {})",
            recorded.arm_endpoint, current.arm_endpoint
        ));
    }
    if normalize_location(&recorded.location) != normalize_location(&current.location) {
        diffs.push(format!(
            "location {} (this run: {})",
            recorded.location, current.location
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(IdentityMismatch { differences: diffs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sub: &str, tenant: Option<&str>, loc: &str) -> CloudIdentity {
        CloudIdentity {
            subscription_id: sub.into(),
            tenant_id: tenant.map(Into::into),
            arm_endpoint: "https://management.azure.com".into(),
            location: loc.into(),
        }
    }

    #[test]
    fn another_subscription_or_location_is_refused() {
        let a = id("sub-a", Some("t"), "westeurope");
        assert!(check_identity(&a, &id("SUB-A", None, "West Europe")).is_ok());
        let e = check_identity(&a, &id("sub-b", Some("t"), "westeurope"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("subscription sub-a (this run: sub-b)"), "{e}");
        assert!(check_identity(&a, &id("sub-a", Some("u"), "westeurope")).is_err());
        assert!(check_identity(&a, &id("sub-a", Some("t"), "eastus")).is_err());
    }
}
