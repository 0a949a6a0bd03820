//! The `ssh` section: the admin user the VMs are created with (Azure's rule for it is the
//! library's [`AdminUserName`]).

use k0rdent_azure::naming::AdminUserName;

use super::checks::Checks;
use crate::config::raw;

/// `ssh.username` (default `k0rdent`), `None` when Azure would refuse it.
pub(super) fn admin_user(c: &mut Checks, s: raw::Ssh) -> Option<AdminUserName> {
    let user = c.text("ssh.username", s.username, "k0rdent");
    AdminUserName::parse(&user)
        .map_err(|e| c.error("ssh.username", e.to_string()))
        .ok()
}
