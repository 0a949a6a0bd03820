//! The configuration's `timeouts.*` keys become the phases' time limits (issue #7 item 4).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use k0rdent_cli::config;
use k0rdent_cli::deployment::time_limits;

const MIN: u64 = 60;

#[test]
fn every_phase_has_a_time_limit_and_the_configured_ones_follow_the_config() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/upstream-config/minimal.yaml");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let defaults = time_limits(&config::load(&fixture).unwrap().config.timeouts);
    for phase in [
        "prepare_deployment",
        "setup_network",
        "create_vms",
        "setup_vpn",
        "connect_vpn",
        "install_k0s",
        "install_k0rdent",
        "setup_azure_children",
        "install_azure_csi",
        "install_kof_mothership",
        "install_kof_regional",
    ] {
        assert!(defaults.contains_key(phase), "{phase} has no limit");
    }
    // minimal.yaml: `vm_creation_minutes: 10`, plus 3 min for Azure's NIC reservation.
    assert_eq!(defaults["create_vms"], Duration::from_secs(13 * MIN));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k0rdent.yaml");
    assert!(text.contains("vm_creation_minutes: 10") && text.contains("k0s_install_wait: 30"));
    let text = text
        .replace("vm_creation_minutes: 10", "vm_creation_minutes: 40")
        .replace("k0s_install_wait: 30", "k0s_install_wait: 1200");
    std::fs::write(&path, text).unwrap();
    let loaded = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let limits = time_limits(&loaded.config.timeouts);
    assert_eq!(limits["create_vms"], Duration::from_secs(43 * MIN));
    assert_eq!(limits["install_k0s"], Duration::from_secs(1200 + 20 * MIN));
    assert_eq!(limits["install_k0rdent"], defaults["install_k0rdent"]);
}
