//! The `timeouts` section: every limit a positive number of seconds (or minutes), with the
//! Bash tool's defaults.

use super::checks::Checks;
use crate::config::{Timeouts, raw};

pub(super) fn limits(c: &mut Checks, t: raw::Timeouts) -> Timeouts {
    let verification_retries = match t.verification_retries {
        Some(n) if n < 1 => {
            c.error(
                "timeouts.verification_retries",
                format!("must be at least 1, found {n}"),
            );
            3
        }
        Some(n) => u32::try_from(n).unwrap_or(3),
        None => 3,
    };
    Timeouts {
        ssh_connect: c.seconds("timeouts.ssh_connect", t.ssh_connect, 30, 1),
        ssh_command: c.seconds("timeouts.ssh_command", t.ssh_command, 300, 1),
        k0s_install_wait: c.seconds("timeouts.k0s_install_wait", t.k0s_install_wait, 600, 1),
        k0rdent_install_wait: c.seconds(
            "timeouts.k0rdent_install_wait",
            t.k0rdent_install_wait,
            1500,
            1,
        ),
        wireguard_connect_wait: c.seconds(
            "timeouts.wireguard_connect_wait",
            t.wireguard_connect_wait,
            5,
            1,
        ),
        vm_creation: c.seconds(
            "timeouts.vm_creation_minutes",
            t.vm_creation_minutes,
            15,
            60,
        ),
        vm_wait_check_interval: c.seconds(
            "timeouts.vm_wait_check_interval",
            t.vm_wait_check_interval,
            30,
            1,
        ),
        cloud_init: c.seconds("timeouts.cloud_init_timeout", t.cloud_init_timeout, 900, 1),
        cloud_init_check_interval: c.seconds(
            "timeouts.cloud_init_check_interval",
            t.cloud_init_check_interval,
            15,
            1,
        ),
        verification_retries,
        verification_retry_delay: c.seconds(
            "timeouts.verification_retry_delay",
            t.verification_retry_delay,
            10,
            1,
        ),
    }
}
