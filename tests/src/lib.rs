//! The lab and the end-to-end suites of k0rdent-deploy.
//!
//! - [`fake_world`]: a deployment-shaped pipeline whose "infrastructure" is marker files in a
//!   directory, so separate processes (the `fake-k0rdent` binary) share one reality.
//! - [`state_writer`]: the crash-safety experiment's writer (atomic and in-place variants).

pub mod fake_world;
pub mod state_writer;
