//! The pointer `k0rdent state migrate` leaves where a deployment's state used to be.
//!
//! A pointer takes the state document's place (`deployment-state.yaml`, or the state blob)
//! and names where the deployment went. Its `schema_version` is [`POINTER_SCHEMA_VERSION`],
//! far above any real schema: a build from before pointers existed refuses it as "newer than
//! this build understands" instead of reading an empty deployment, and a build that knows
//! pointers recognises the `moved_to` key whatever the version says, and follows it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The `schema_version` a pointer is written with. Builds that know pointers recognise them
/// by their `moved_to` key; the number only has to be newer than every real schema, so older
/// builds refuse the file.
pub const POINTER_SCHEMA_VERSION: u32 = 1000;

/// Where a deployment's state went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MovedTo {
    /// A remote store, by its `--state` URL (`azblob://ACCOUNT/CONTAINER/PATH`).
    Remote {
        /// The `--state` URL (never with a secret in it).
        url: String,
    },
    /// A local state directory on one machine: another machine cannot follow it.
    Directory {
        /// The machine the directory is on.
        host: String,
        /// The directory (absolute).
        path: PathBuf,
    },
}

impl std::fmt::Display for MovedTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MovedTo::Remote { url } => f.write_str(url),
            MovedTo::Directory { host, path } => {
                write!(f, "the local directory {} on host {host}", path.display())
            }
        }
    }
}

/// The document that replaces a moved deployment's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatePointer {
    /// Always [`POINTER_SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// Where the deployment is now.
    pub moved_to: MovedTo,
    /// The deployment's cluster id, to recognise it there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// The generation the state had when it moved.
    pub generation: u64,
    /// When it moved.
    pub moved_at: DateTime<Utc>,
}

impl StatePointer {
    /// A pointer to `to` for a deployment moved now at `generation`.
    pub fn new(to: MovedTo, cluster_id: Option<String>, generation: u64) -> Self {
        StatePointer {
            schema_version: POINTER_SCHEMA_VERSION,
            moved_to: to,
            cluster_id,
            generation,
            moved_at: Utc::now(),
        }
    }

    /// The document: a comment for whoever opens the file, then the YAML.
    ///
    /// # Errors
    /// [`EmitError`](super::yaml::EmitError) (not for pointers built by [`StatePointer::new`]).
    pub fn render(&self) -> Result<String, super::yaml::EmitError> {
        let body = super::yaml::to_string(self)?;
        Ok(format!(
            "# This deployment's state moved to {} (`k0rdent state migrate`).\n\
             # k0rdent follows this pointer; builds older than the pointer refuse it as a\n\
             # newer schema. To move the state back, run `k0rdent state migrate --to ...`.\n\
             {body}",
            self.moved_to
        ))
    }
}
