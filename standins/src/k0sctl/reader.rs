//! Reading `k0sctl apply --config`'s input: one document, decoded into [`super::config`]'s
//! strict types, then checked by [`super::rules`].

use serde::Deserialize;

use super::config::Cluster;
use super::rules;

/// Why k0sctl would stop before connecting to any host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The YAML does not decode into k0sctl's types (syntax, an unknown or repeated field, a
    /// wrong type, a malformed k0s version).
    #[error("failed to unmarshal the k0sctl configuration: {0}")]
    Decode(String),
    /// Not exactly one document.
    #[error("the k0sctl configuration must be one Cluster document: {0}")]
    NoCluster(String),
    /// A rule of k0sctl's `Validate()` methods fails.
    #[error("configuration validation failed: {0}")]
    Invalid(String),
}

/// Reads and validates a k0sctl configuration as `k0sctl apply --config` does before it
/// connects, after its `envsubst` pass (not done here).
///
/// The input must be one YAML document, the `Cluster`: k0sctl 0.19 decodes the whole input as
/// one `Cluster`, later releases pick the `Cluster` among several documents (and merge
/// `ClusterConfig` ones), so only a single document means the same to the whole range.
///
/// # Errors
/// [`ConfigError`] with k0sctl's reason.
pub fn read_cluster(text: &str) -> Result<Cluster, ConfigError> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value =
            serde_yaml::Value::deserialize(doc).map_err(|e| ConfigError::Decode(e.to_string()))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let value = match docs.len() {
        1 => docs.remove(0),
        n => {
            return Err(ConfigError::NoCluster(format!(
                "expected exactly one document, got {n}"
            )));
        }
    };
    let cluster: Cluster =
        serde_yaml::from_value(value).map_err(|e| ConfigError::Decode(e.to_string()))?;
    rules::validate(&cluster).map_err(ConfigError::Invalid)?;
    Ok(cluster)
}
