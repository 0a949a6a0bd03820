//! [`Location`]: an Azure region in the `name` form ARM lists (`westeurope`).

use serde::{Deserialize, Serialize};

/// An Azure location (region) in the form ARM's List Locations calls its `name`: letters and
/// digits, kept lowercase (`westeurope`, `eastus2`).
///
/// ARM asks resource providers to ignore capitalization in a location, so `WestEurope` is
/// accepted and kept as `westeurope`: the form ARM returns, records compare with, and this
/// tool records. A display name with spaces (`West Europe`) is refused with the form to use
/// instead, although ARM would take it: every recorded location stays in one spelling.
///
/// ```
/// use k0rdent_azure::naming::Location;
/// assert_eq!(Location::parse("WestEurope")?.as_str(), "westeurope");
/// assert!(Location::parse("West Europe").is_err());
/// # Ok::<(), k0rdent_azure::naming::LocationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Location(String);

/// Why a text is not a location name.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// Empty, or a character other than a letter or digit (a space, a hyphen, ...).
    #[error("{input:?} is not an Azure location name like westeurope")]
    NotAName { input: String },
}

impl Location {
    /// Where the rule comes from: the `name` of ARM's List Locations (`eastus`, not
    /// `East US`), and the resource provider contract's "ignore whitespace and capitalization
    /// when accepting geo regions" for the case.
    pub const RULES: &'static str = "https://learn.microsoft.com/en-us/rest/api/resources/subscriptions/list-locations; \
         https://github.com/Azure/azure-resource-manager-rpc/blob/master/v1.0/resource-api-reference.md";

    /// Checks `s` and keeps it lowercase.
    ///
    /// # Errors
    /// [`LocationError::NotAName`] for an empty text or one with anything but ASCII letters
    /// and digits.
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(LocationError::NotAName {
                input: s.to_owned(),
            });
        }
        Ok(Location(s.to_ascii_lowercase()))
    }

    /// The lowercase name (`westeurope`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_name!(Location, LocationError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_letters_and_digits_in_any_case_kept_lowercase() {
        for (input, kept) in [
            ("westeurope", "westeurope"),
            ("eastus2", "eastus2"),
            ("WestEurope", "westeurope"),
            ("SOUTHEASTASIA", "southeastasia"),
        ] {
            assert_eq!(Location::parse(input).unwrap(), kept);
        }
        for bad in [
            "",
            "West Europe",
            "west-europe",
            "westeurope ",
            "west_europe",
            "é",
        ] {
            let e = Location::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("{bad:?} is not an Azure location name like westeurope")
            );
        }
    }

    #[test]
    fn serde_checks_the_rule_and_writes_the_name() {
        let l: Location = serde_json::from_str("\"NorthEurope\"").unwrap();
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"northeurope\"");
        assert!(serde_json::from_str::<Location>("\"North Europe\"").is_err());
    }
}
