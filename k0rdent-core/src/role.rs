//! [`NodeRole`]: what a node does in the cluster, one type for every crate.
//!
//! The role is written into Azure tags, node records in the state, WireGuard plans and VM names
//! (`k0s-controller-1`), so all of them must spell it the same way. It lives here because the
//! Azure and SSH crates may not depend on each other, and both need it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a node does in the cluster. Serialized as `controller`, `worker` or
/// `controller+worker`, the spelling of state files, tags and VM names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NodeRole {
    /// Runs the k0s control plane and no workloads.
    #[serde(rename = "controller")]
    Controller,
    /// Runs workloads and no control plane.
    #[serde(rename = "worker")]
    Worker,
    /// A k0s controller that also runs workloads (k0sctl's `controller+worker`). The
    /// configuration does not produce it yet; node records and WireGuard plans accept it.
    #[serde(rename = "controller+worker")]
    ControllerWorker,
}

impl NodeRole {
    /// The recorded spelling: `controller`, `worker` or `controller+worker`.
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeRole::Controller => "controller",
            NodeRole::Worker => "worker",
            NodeRole::ControllerWorker => "controller+worker",
        }
    }

    /// Whether the node runs the k0s control plane.
    pub const fn is_controller(self) -> bool {
        matches!(self, NodeRole::Controller | NodeRole::ControllerWorker)
    }
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for NodeRole {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// A role that is none of `controller`, `worker` and `controller+worker`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown node role {0:?}: use controller, worker or controller+worker")]
pub struct UnknownRole(pub String);

impl FromStr for NodeRole {
    type Err = UnknownRole;

    /// Case-insensitive (`Controller` is `controller`).
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        match s.to_ascii_lowercase().as_str() {
            "controller" => Ok(NodeRole::Controller),
            "worker" => Ok(NodeRole::Worker),
            "controller+worker" => Ok(NodeRole::ControllerWorker),
            _ => Err(UnknownRole(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text_and_serde() {
        for role in [
            NodeRole::Controller,
            NodeRole::Worker,
            NodeRole::ControllerWorker,
        ] {
            assert_eq!(role.as_str().parse::<NodeRole>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
            assert_eq!(serde_json::from_str::<NodeRole>(&json).unwrap(), role);
        }
        assert_eq!("Worker".parse::<NodeRole>().unwrap(), NodeRole::Worker);
    }

    #[test]
    fn an_unknown_role_names_the_valid_ones() {
        let e = "master".parse::<NodeRole>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown node role \"master\": use controller, worker or controller+worker"
        );
        assert!(serde_json::from_str::<NodeRole>("\"master\"").is_err());
    }
}
