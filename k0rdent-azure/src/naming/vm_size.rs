//! [`VmSize`]: a VM size name as the Compute API spells it (`Standard_D4s_v5`).

use serde::{Deserialize, Serialize};

/// The tier prefixes every size name of the Compute API carries.
const TIERS: [&str; 2] = ["Standard_", "Basic_"];

/// A VM size as `hardwareProfile.vmSize` takes it: the tier (`Standard_` or `Basic_`), then
/// the size name of Azure's naming convention — a family letter, then letters, digits, `_` and
/// the `-` of constrained-vCPU sizes (`Standard_E4-2ds_v5`).
///
/// This checks the shape only; whether the size exists in a location, for a subscription, is
/// for preflight to ask Azure.
///
/// ```
/// use k0rdent_azure::naming::VmSize;
/// assert!(VmSize::parse("Standard_M8-2ms").is_ok());
/// assert!(VmSize::parse("D4s_v5").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VmSize(String);

/// Which part of the size rule a text breaks.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VmSizeError {
    /// No `Standard_` or `Basic_` tier.
    #[error(
        "{input:?} is not an Azure VM size like Standard_D4s_v5: it must start with Standard_ or Basic_"
    )]
    Tier { input: String },
    /// Nothing after the tier, or it does not start with the family letter.
    #[error(
        "{input:?} is not an Azure VM size like Standard_D4s_v5: the tier must be followed by the size family letter"
    )]
    Family { input: String },
    /// A character outside letters, digits, `_` and `-`.
    #[error(
        "{input:?} is not an Azure VM size like Standard_D4s_v5: {found:?} is not allowed; sizes are letters, digits, '_' and '-'"
    )]
    Character {
        input: String,
        /// The first character not allowed.
        found: char,
    },
}

impl VmSize {
    /// Where the rule comes from: the size naming convention and the `vmSize` values of the
    /// Compute API.
    pub const RULES: &'static str = "https://learn.microsoft.com/en-us/azure/virtual-machines/vm-naming-conventions; \
         https://learn.microsoft.com/en-us/rest/api/compute/virtual-machines/create-or-update#virtualmachinesizetypes";

    /// Checks `s` against the rule.
    ///
    /// # Errors
    /// The first part of the rule `s` breaks: tier, family letter, characters.
    pub fn parse(s: &str) -> Result<Self, VmSizeError> {
        let Some(name) = TIERS.iter().find_map(|t| s.strip_prefix(t)) else {
            return Err(VmSizeError::Tier {
                input: s.to_owned(),
            });
        };
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(VmSizeError::Family {
                input: s.to_owned(),
            });
        }
        if let Some(found) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
        {
            return Err(VmSizeError::Character {
                input: s.to_owned(),
                found,
            });
        }
        Ok(VmSize(s.to_owned()))
    }

    /// The size as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the name marks an Arm64 size: a `p` right after the vCPU count
    /// (`Standard_D4pls_v6`, `Standard_E8ps_v5`), per the naming convention's additive
    /// features.
    pub fn is_arm64(&self) -> bool {
        let s = self.0.split_once('_').map_or(self.0.as_str(), |(_, n)| n);
        let rest = s.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let after_digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        rest.len() != after_digits.len() && after_digits.starts_with('p')
    }
}

text_name!(VmSize, VmSizeError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_size_names_are_accepted() {
        for ok in [
            "Standard_D2s_v5",
            "Standard_B2s",
            "Basic_A1",
            "Standard_E4-2ds_v5",
            "Standard_M416-208ms_v2",
            "Standard_NC24ads_A100_v4",
        ] {
            assert_eq!(VmSize::parse(ok).unwrap(), ok);
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        assert!(matches!(
            VmSize::parse("D4s_v5"),
            Err(VmSizeError::Tier { .. })
        ));
        assert!(matches!(VmSize::parse(""), Err(VmSizeError::Tier { .. })));
        assert!(matches!(
            VmSize::parse("standard_d4s_v5"),
            Err(VmSizeError::Tier { .. })
        ));
        assert!(matches!(
            VmSize::parse("Standard_"),
            Err(VmSizeError::Family { .. })
        ));
        assert!(matches!(
            VmSize::parse("Standard_D4s v5"),
            Err(VmSizeError::Character { found: ' ', .. })
        ));
    }

    #[test]
    fn arm64_sizes_are_recognised_by_name() {
        for s in [
            "Standard_D4pls_v6",
            "Standard_D16pls_v6",
            "Standard_E8ps_v5",
            "Standard_D2pds_v5",
        ] {
            assert!(VmSize::parse(s).unwrap().is_arm64(), "{s}");
        }
        for s in [
            "Standard_B2s",
            "Standard_DS2_v2",
            "Standard_D4_v5",
            "Standard_A4_v2",
            "Standard_D2s_v5",
        ] {
            assert!(!VmSize::parse(s).unwrap().is_arm64(), "{s}");
        }
    }
}
