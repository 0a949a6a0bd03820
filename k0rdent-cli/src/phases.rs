//! The names of the pipeline's phases, on their own so that the arguments (`--until`'s help
//! and completion) and the deployment can both use them.

/// The pipeline's phases in the order they run (what `--until` accepts).
pub const PHASES: &[&str] = &[
    "prepare_deployment",
    "setup_network",
    "create_vms",
    "setup_vpn",
    "connect_vpn",
    "install_k0s",
    "install_k0rdent",
    "remove_nodes",
    "setup_azure_children",
    "install_azure_csi",
    "install_kof_mothership",
    "install_kof_regional",
];
