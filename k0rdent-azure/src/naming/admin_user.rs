//! [`AdminUserName`]: the admin account of a Linux VM (`osProfile.adminUsername`).

use serde::{Deserialize, Serialize};

/// Most characters of a Linux admin user name (the Linux VM FAQ's limit; the Compute API
/// would take 64, but the account must also be creatable on the VM).
const MAX_CHARS: usize = 32;

/// Admin user names Azure refuses for a Linux VM: the `adminUsername` disallowed values of
/// the Compute REST reference, plus `video` from the Linux VM FAQ. Compared ignoring case.
pub const RESERVED_ADMIN_USERS: &[&str] = &[
    "administrator",
    "admin",
    "user",
    "user1",
    "test",
    "user2",
    "test1",
    "user3",
    "admin1",
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin2",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test2",
    "test3",
    "user4",
    "user5",
    "video",
];

/// The admin user of a Linux VM: 1 to 32 characters of lowercase letters, digits, `_` and
/// `-`, not starting with `-`, and none of the names Azure reserves
/// ([`RESERVED_ADMIN_USERS`]).
///
/// Azure forbids upper case and a leading `-` for Linux (the `az vm create` check); the
/// character set is the portable one `useradd` and Debian's `adduser` take everywhere, so the
/// account cloud-init creates exists on every image.
///
/// ```
/// use k0rdent_azure::naming::AdminUserName;
/// assert!(AdminUserName::parse("k0rdent").is_ok());
/// assert!(AdminUserName::parse("admin").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AdminUserName(String);

/// Which part of the admin user rule a name breaks.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminUserNameError {
    #[error("\"\" is not a Linux user name: use 1 to 32 characters")]
    Empty,
    /// More than 32 characters.
    #[error(
        "{input:?} is not a Linux user name: it has {chars} characters, Azure allows at most 32 on Linux VMs"
    )]
    TooLong {
        input: String,
        /// How many characters it has.
        chars: usize,
    },
    /// A character outside lowercase letters, digits, `_` and `-`.
    #[error(
        "{input:?} is not a Linux user name (lowercase, digits, _ and -): {found:?} is not allowed"
    )]
    Character {
        input: String,
        /// The first character not allowed.
        found: char,
    },
    /// A leading `-` (it would read as an option to `useradd`).
    #[error(
        "{input:?} is not a Linux user name (lowercase, digits, _ and -): it must not start with '-'"
    )]
    LeadingHyphen { input: String },
    /// One of [`RESERVED_ADMIN_USERS`], compared ignoring case.
    #[error("{input:?} is reserved by Azure; pick another admin user")]
    Reserved { input: String },
}

impl AdminUserName {
    /// Where the rule comes from: the Compute REST reference's `adminUsername` (reserved
    /// names), the Linux VM FAQ (length, `video`) and `az vm create`'s Linux check
    /// (no upper case, no leading `-`).
    pub const RULES: &'static str = "https://learn.microsoft.com/en-us/rest/api/compute/virtual-machines/create-or-update#osprofile; \
         https://learn.microsoft.com/en-us/azure/virtual-machines/linux/faq#what-are-the-username-requirements-when-creating-a-vm-; \
         https://github.com/Azure/azure-cli/blob/dev/src/azure-cli/azure/cli/command_modules/vm/_validators.py";

    /// Checks `s` against the rule.
    ///
    /// # Errors
    /// The first part of the rule `s` breaks, in the order: empty, length, characters,
    /// leading `-`, reserved.
    pub fn parse(s: &str) -> Result<Self, AdminUserNameError> {
        if s.is_empty() {
            return Err(AdminUserNameError::Empty);
        }
        let chars = s.chars().count();
        if chars > MAX_CHARS {
            return Err(AdminUserNameError::TooLong {
                input: s.to_owned(),
                chars,
            });
        }
        if let Some(found) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
        {
            return Err(AdminUserNameError::Character {
                input: s.to_owned(),
                found,
            });
        }
        if s.starts_with('-') {
            return Err(AdminUserNameError::LeadingHyphen {
                input: s.to_owned(),
            });
        }
        if RESERVED_ADMIN_USERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(s))
        {
            return Err(AdminUserNameError::Reserved {
                input: s.to_owned(),
            });
        }
        Ok(AdminUserName(s.to_owned()))
    }

    #[allow(missing_docs)]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_name!(AdminUserName, AdminUserNameError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_names_are_accepted() {
        let longest = "u".repeat(32);
        for ok in ["k0rdent", "_svc", "1abc", "ops-team_2", longest.as_str()] {
            assert_eq!(AdminUserName::parse(ok).unwrap(), ok);
        }
    }

    #[test]
    fn every_reserved_name_is_refused() {
        for r in RESERVED_ADMIN_USERS {
            assert!(
                matches!(
                    AdminUserName::parse(r),
                    Err(AdminUserNameError::Reserved { .. })
                ),
                "{r}"
            );
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        use AdminUserNameError as E;
        assert_eq!(AdminUserName::parse(""), Err(E::Empty));
        assert!(matches!(
            AdminUserName::parse(&"u".repeat(33)),
            Err(E::TooLong { chars: 33, .. })
        ));
        assert!(matches!(
            AdminUserName::parse("Admin"),
            Err(E::Character { found: 'A', .. })
        ));
        assert!(matches!(
            AdminUserName::parse("first.last"),
            Err(E::Character { found: '.', .. })
        ));
        assert!(matches!(
            AdminUserName::parse("-abc"),
            Err(E::LeadingHyphen { .. })
        ));
        assert_eq!(
            AdminUserName::parse("admin").unwrap_err().to_string(),
            "\"admin\" is reserved by Azure; pick another admin user"
        );
    }
}
