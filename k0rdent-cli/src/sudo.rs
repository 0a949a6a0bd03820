//! Getting root for `vpn up|down` without ever hanging on a password prompt.
//!
//! Every external program runs in a background process group of its own (see
//! `k0rdent-process`), where a `sudo` that asks for a password would be stopped by the
//! terminal for good. So sudo may ask only here, once, in the foreground (`sudo -v`, which
//! caches the credentials), and everything after runs `sudo -n`. Under `-y`, or without a
//! terminal that is ours, nothing asks: `sudo -n` fails with a message saying what to do.

use std::io::IsTerminal;
use std::time::Duration;

use k0rdent_process::Command;
use k0rdent_ssh::os;
use k0rdent_ssh::wireguard::Privilege;

use crate::error::CliError;

/// How long the user has to type the password.
const PROMPT_LIMIT: Duration = Duration::from_secs(300);

/// Root as is, or sudo: with `yes` or without a terminal, never prompting; otherwise after
/// validating the credentials once in the foreground.
///
/// # Errors
/// sudo is missing, or `sudo -v` failed (wrong password, no sudo rights).
pub(crate) async fn privilege(yes: bool) -> Result<Privilege, CliError> {
    if os::is_root() {
        return Ok(Privilege::Root);
    }
    let Some(sudo) = os::find_program("sudo") else {
        return Err(CliError::usage(
            "bringing the WireGuard interface up or down needs root, and sudo is not installed",
            "run the command as root",
        ));
    };
    if yes || !std::io::stdin().is_terminal() || !k0rdent_process::os::terminal_is_ours() {
        return Ok(Privilege::Sudo);
    }
    Command::new(sudo)
        .args([
            "-v",
            "-p",
            "[k0rdent] sudo password for %u (for wg-quick): ",
        ])
        .foreground()
        .timeout(PROMPT_LIMIT)
        .run()
        .await
        .map_err(|e| {
            CliError::usage(
                format!("sudo could not validate your credentials: {e}"),
                "check that you may use sudo (`sudo -l`), or run the command as root",
            )
        })?;
    Ok(Privilege::Sudo)
}
