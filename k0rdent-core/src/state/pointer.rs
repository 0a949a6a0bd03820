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

/// Reads a pointer from a mapping that has a `moved_to` key.
pub(super) fn from_mapping(bytes: &[u8]) -> Result<StatePointer, super::ParseError> {
    let de = serde_yaml::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| super::ParseError::WrongType {
        key: e.path().to_string(),
        detail: e.inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ParseError, SCHEMA_VERSION, parse_state};

    #[test]
    fn a_pointer_reads_back_as_moved_and_is_newer_than_every_schema() {
        let p = StatePointer::new(
            MovedTo::Remote {
                url: "azblob://acct/states/prod".into(),
            },
            Some("k0rdent-abc".into()),
            42,
        );
        let text = p.render().unwrap();
        assert!(text.starts_with("# This deployment's state moved to azblob://acct/states/prod"));
        match parse_state(text.as_bytes()) {
            Err(ParseError::Moved(back)) => assert_eq!(*back, p),
            other => panic!("expected a pointer, got {other:?}"),
        }
        // What a build that does not know pointers checks: the schema alone.
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let found = v["schema_version"].as_u64().unwrap();
        assert!(found > u64::from(SCHEMA_VERSION));
    }

    #[test]
    fn a_directory_pointer_names_the_host_and_the_path() {
        let p = StatePointer::new(
            MovedTo::Directory {
                host: "laptop".into(),
                path: "/home/me/state".into(),
            },
            None,
            3,
        );
        let text = p.render().unwrap();
        assert!(text.contains("the local directory /home/me/state on host laptop"));
        assert!(matches!(parse_state(text.as_bytes()), Err(ParseError::Moved(b)) if *b == p));
    }
}
