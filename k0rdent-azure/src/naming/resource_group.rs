//! [`ResourceGroupName`]: the `Microsoft.Resources/resourcegroups` naming rule.

use serde::{Deserialize, Serialize};

/// Most characters a resource group name may have.
const MAX_CHARS: usize = 90;

/// A resource group name as Azure documents it: 1 to 90 characters of letters, digits,
/// `_`, `-`, `.`, `(` and `)`, not ending in `.`.
///
/// Letters and digits are Unicode ones (Azure's rule is .NET's `Char.IsLetterOrDigit`); this
/// check uses Rust's `char::is_alphanumeric`, which also admits a few number forms (`²`, `Ⅻ`)
/// and combining marks .NET does not, so for such rare names ARM has the last word. Names are
/// case-insensitive in Azure; the text is kept as written.
///
/// ```
/// use k0rdent_azure::naming::ResourceGroupName;
/// assert!(ResourceGroupName::parse("k0rdent-abc(test)_1.2").is_ok());
/// assert!(ResourceGroupName::parse("k0rdent-abc.").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceGroupName(String);

/// Which part of the resource group rule a name breaks.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceGroupNameError {
    #[error("\"\" is not a valid resource group name: use 1 to 90 characters")]
    Empty,
    /// More than 90 characters.
    #[error(
        "{input:?} is not a valid resource group name: it has {chars} characters, Azure allows at most 90"
    )]
    TooLong {
        input: String,
        /// How many characters it has.
        chars: usize,
    },
    /// A character outside letters, digits, `_`, `-`, `.`, `(` and `)`.
    #[error(
        "{input:?} is not a valid resource group name: {found:?} is not allowed; use letters, digits, '_', '-', '.', '(' and ')'"
    )]
    Character {
        input: String,
        /// The first character not allowed.
        found: char,
    },
    #[error("{input:?} is not a valid resource group name: it must not end with '.'")]
    TrailingPeriod { input: String },
}

impl ResourceGroupName {
    /// Where the rule comes from (the `Microsoft.Resources` table, `resourcegroups` row).
    pub const RULES: &'static str = "https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/resource-name-rules#microsoftresources";

    /// Checks `s` against the rule.
    ///
    /// # Errors
    /// The first part of the rule `s` breaks, in the order: empty, length, characters,
    /// trailing period.
    pub fn parse(s: &str) -> Result<Self, ResourceGroupNameError> {
        if s.is_empty() {
            return Err(ResourceGroupNameError::Empty);
        }
        let chars = s.chars().count();
        if chars > MAX_CHARS {
            return Err(ResourceGroupNameError::TooLong {
                input: s.to_owned(),
                chars,
            });
        }
        if let Some(found) = s
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')')))
        {
            return Err(ResourceGroupNameError::Character {
                input: s.to_owned(),
                found,
            });
        }
        if s.ends_with('.') {
            return Err(ResourceGroupNameError::TrailingPeriod {
                input: s.to_owned(),
            });
        }
        Ok(ResourceGroupName(s.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_name!(ResourceGroupName, ResourceGroupNameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_characters_and_lengths_are_accepted() {
        let ninety = "a".repeat(90);
        for ok in [
            "k0rdent-abc-resgrp",
            "(rg)_1.2-x",
            ".starts-with-a-period",
            "grupo-ñandú",
            "グループ",
            ninety.as_str(),
        ] {
            assert_eq!(ResourceGroupName::parse(ok).unwrap(), ok);
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        use ResourceGroupNameError as E;
        assert_eq!(ResourceGroupName::parse(""), Err(E::Empty));
        assert!(matches!(
            ResourceGroupName::parse(&"a".repeat(91)),
            Err(E::TooLong { chars: 91, .. })
        ));
        assert!(matches!(
            ResourceGroupName::parse("my group"),
            Err(E::Character { found: ' ', .. })
        ));
        assert!(matches!(
            ResourceGroupName::parse("rg#1"),
            Err(E::Character { found: '#', .. })
        ));
        let e = ResourceGroupName::parse("my-group.").unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"my-group.\" is not a valid resource group name: it must not end with '.'"
        );
    }
}
