//! Azure's naming rules as types that parse themselves: [`Location`], [`ResourceGroupName`],
//! [`VmSize`], [`AdminUserName`] and [`AvailabilityZone`].
//!
//! Each rule is written once, here, from Azure's documentation (each type names its source in
//! a `RULES` constant), and both [`AzureSpec::validate`](crate::spec::AzureSpec::validate) and
//! the CLI's configuration check call it. A value in hand is valid; its error says which rule
//! failed and what to use instead. Each type serializes as its text.
//!
//! Where this crate and the CLI once disagreed, the documented rule won: a resource group
//! name may not end in `.`, a location may be written in any case (it is kept in the
//! lowercase `name` form), a VM size needs its `Standard_`/`Basic_` tier and may contain the
//! `-` of constrained-vCPU sizes, and an admin user name may start with a digit but not `-`.

/// The string side of a name type `$name` whose `parse(&str) -> Result<$name, $error>` holds
/// the rule: `FromStr`, `TryFrom<String>` (so serde checks the rule too), `Display`,
/// `AsRef<str>`, comparison with `str`, and `String` from it. Defined before the modules so
/// each uses it without importing a sibling.
macro_rules! text_name {
    ($name:ident, $error:ty) => {
        impl std::str::FromStr for $name {
            type Err = $error;
            fn from_str(s: &str) -> Result<Self, $error> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(s: String) -> Result<Self, $error> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

mod admin_user;
mod location;
mod resource_group;
mod vm_size;
mod zone;

pub use admin_user::{AdminUserName, AdminUserNameError, RESERVED_ADMIN_USERS};
pub use location::{Location, LocationError};
pub use resource_group::{ResourceGroupName, ResourceGroupNameError};
pub use vm_size::{VmSize, VmSizeError};
pub use zone::{AvailabilityZone, AvailabilityZoneError};
