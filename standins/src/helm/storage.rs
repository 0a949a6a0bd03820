//! Helm's release storage on the "secret" driver: records listed by label
//! (`owner=helm,name=<release>`), created, updated in place and deleted by name.

use serde_json::{Value, json};

use super::HelmError;
use super::client::{Api, ApiStatus};
use super::record::{self, Release};

/// Release records of one namespace (or all, for `list -A`).
pub struct Storage {
    api: Api,
    namespace: String,
}

fn api_error(context: &str, status: ApiStatus) -> HelmError {
    HelmError::Api(format!("{context}: {}", status.message))
}

impl Storage {
    /// Storage in `namespace` through `api`.
    pub fn new(api: Api, namespace: String) -> Self {
        Storage { api, namespace }
    }

    /// The namespace releases are kept in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn secrets_path(&self, all_namespaces: bool) -> String {
        if all_namespaces {
            "/api/v1/secrets".into()
        } else {
            format!("/api/v1/namespaces/{}/secrets", self.namespace)
        }
    }

    /// Every record matching `selector` (already URL-safe), lowest revision first.
    async fn query(&self, selector: &str, all_namespaces: bool) -> Result<Vec<Release>, HelmError> {
        let path = format!(
            "{}?labelSelector={selector}",
            self.secrets_path(all_namespaces)
        );
        let list = self
            .api
            .call("GET", &path, None)
            .await?
            .map_err(|s| api_error("query: failed to query with labels", s))?;
        let mut releases = Vec::new();
        for secret in list["items"].as_array().into_iter().flatten() {
            releases.push(record::from_secret(secret)?);
        }
        releases.sort_by(|a, b| {
            (a.namespace.as_str(), a.name.as_str(), a.version).cmp(&(
                b.namespace.as_str(),
                b.name.as_str(),
                b.version,
            ))
        });
        Ok(releases)
    }

    /// All revisions of release `name`.
    pub async fn history(&self, name: &str) -> Result<Vec<Release>, HelmError> {
        self.query(&format!("owner%3Dhelm%2Cname%3D{name}"), false)
            .await
    }

    /// All revisions of all releases.
    pub async fn all(&self, all_namespaces: bool) -> Result<Vec<Release>, HelmError> {
        self.query("owner%3Dhelm", all_namespaces).await
    }

    /// Stores a new revision; an existing one is Helm's "release: already exists".
    pub async fn create(&self, release: &Release) -> Result<(), HelmError> {
        let secret = record::to_secret(release, true)?;
        match self
            .api
            .call("POST", &self.secrets_path(false), Some(&secret))
            .await?
        {
            Ok(_) => Ok(()),
            Err(s) if s.reason == "AlreadyExists" => {
                Err(HelmError::Failed("release: already exists".into()))
            }
            Err(s) => Err(api_error("create: failed to create", s)),
        }
    }

    /// Rewrites a revision (status changes), unconditionally as the driver's Update does.
    pub async fn update(&self, release: &Release) -> Result<(), HelmError> {
        let secret = record::to_secret(release, false)?;
        let path = format!(
            "{}/{}",
            self.secrets_path(false),
            record::secret_name(&release.name, release.version)
        );
        self.api
            .call("PUT", &path, Some(&secret))
            .await?
            .map(|_| ())
            .map_err(|s| api_error("update: failed to update", s))
    }

    /// Deletes a revision.
    pub async fn delete(&self, release: &Release) -> Result<(), HelmError> {
        let path = format!(
            "{}/{}",
            self.secrets_path(false),
            record::secret_name(&release.name, release.version)
        );
        self.api
            .call("DELETE", &path, None)
            .await?
            .map(|_| ())
            .map_err(|s| api_error("delete: failed to delete", s))
    }

    /// `--create-namespace`: creates the namespace unless it exists.
    pub async fn ensure_namespace(&self) -> Result<(), HelmError> {
        let ns =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}});
        match self
            .api
            .call("POST", "/api/v1/namespaces", Some(&ns))
            .await?
        {
            Ok(_) => Ok(()),
            Err(s) if s.reason == "AlreadyExists" => Ok(()),
            Err(s) => Err(api_error("create namespace", s)),
        }
    }

    /// Checks the API answers, as Helm's `IsReachable` does before every action.
    pub async fn reachable(&self) -> Result<Value, HelmError> {
        self.api
            .call("GET", "/version", None)
            .await?
            .map_err(|s| HelmError::Unreachable(s.message))
    }
}
