//! Node access for k0rdent-deploy: how the operator's machine reaches the nodes, and what a
//! node needs at boot to be reachable.
#![deny(missing_docs)]

pub mod node_checks;
pub mod os;
pub mod process;
pub mod ssh;
pub mod wireguard;
