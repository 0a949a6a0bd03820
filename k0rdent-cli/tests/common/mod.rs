//! Shared by the end-to-end suites that run the real `k0rdent` binary against the ARM
//! emulator.

use std::path::Path;
use std::process::{Command, Stdio};

use k0rdent_arm_emulator::Emulator;

/// The `k0rdent` binary with a clean environment (`PATH`, `HOME` = `home`, `USER`), the
/// emulator's service principal and subscription, and its ARM endpoint and authority host
/// (override them with `.env(..)` afterwards); stdin closed, stdout and stderr piped.
pub fn k0rdent(emu: &Emulator, home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_k0rdent"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("USER", "e2e")
        .env("AZURE_TENANT_ID", emu.tenant_id())
        .env("AZURE_CLIENT_ID", emu.client_id())
        .env("AZURE_CLIENT_SECRET", emu.client_secret().expose())
        .env("AZURE_AUTHORITY_HOST", emu.url())
        .env("AZURE_SUBSCRIPTION_ID", emu.subscription_id())
        .env("K0RDENT_ARM_ENDPOINT", emu.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}
