//! What `install_k0s` hands to k0sctl: the configuration generated from live state
//! ([`k0sctl_config`]) and the k0sctl versions that configuration is written for
//! ([`k0sctl_version`]).
//!
//! Both are pure (no I/O) so `k0rdent render k0sctl`, the phase and the tests build the same
//! document from the same recorded state.

pub mod k0sctl_config;
pub mod k0sctl_version;
pub(crate) mod network;

pub use k0sctl_config::{
    K0SCTL_API_VERSION, K0sctlCluster, K0sctlConfigError, K0sctlHost, K0sctlInput,
    new_deployment_no_taints, render_k0sctl_yaml, roles_for,
};
pub use k0sctl_version::{
    K0SCTL_VERSION_RANGE, K0sctlVersion, K0sctlVersionError, parse_k0sctl_version,
};

#[cfg(test)]
mod k0sctl_config_tests;
