//! The lab and the end-to-end suites of k0rdent-deploy. Test code: it panics loudly instead
//! of skipping when a tool or a privilege is missing.
//!
//! - [`lab`]: network namespaces as VMs, real sshd and wireguard-go.
//! - [`lab_dir`]: the directory `k0rdent-lab` works in (it deletes only what it wrote).
//! - [`lab_up`]: `k0rdent-lab up|down|status|run`, the lab as a background service.
//! - [`fake_world`]: a deployment-shaped pipeline whose "infrastructure" is marker files in a
//!   directory, so separate processes (the `fake-k0rdent` binary) share one reality.
//! - [`standins`]: the stand-in k0sctl and helm, built and wrapped with their environment.
//! - [`state_writer`]: the crash-safety experiment's writer (atomic and in-place variants).
//! - [`vpn_state`]: a state directory with a planned tunnel, for the `vpn` commands.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

pub mod fake_world;
pub mod lab;
pub mod lab_dir;
pub mod lab_up;
pub mod standins;
pub mod state_writer;
pub mod vpn_state;
