//! The lab (network namespaces as VMs, real sshd and wireguard-go) and the end-to-end
//! suites of k0rdent-deploy. Test code: it panics loudly instead of skipping when a tool or
//! a privilege is missing.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

pub mod lab;
