//! The part of a kubeconfig Helm (client-go) uses to reach the API: the context named by
//! `--kube-context` (else `current-context`), its cluster's `server` and CA, its user's client
//! certificate and key (inline `*-data` or file paths), and the context's namespace.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::HelmError;

#[derive(Debug, Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: String,
    certificate_authority_data: Option<String>,
    certificate_authority: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate_data: Option<String>,
    client_certificate: Option<PathBuf>,
    client_key_data: Option<String>,
    client_key: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Context {
    cluster: String,
    user: String,
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct File {
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    current_context: String,
}

/// Where and as whom to talk to the API.
#[derive(Clone)]
pub struct Target {
    /// `https://host:port`.
    pub server: String,
    /// CA bundle, PEM.
    pub ca_pem: Vec<u8>,
    /// Client certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// Client key, PEM.
    pub key_pem: Vec<u8>,
    /// The context's namespace, if it names one.
    pub namespace: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

fn inline_or_file(
    data: Option<&String>,
    file: Option<&PathBuf>,
    base: &Path,
    what: &str,
) -> Result<Vec<u8>, HelmError> {
    if let Some(data) = data {
        return STANDARD
            .decode(data.trim())
            .map_err(|e| HelmError::Kubeconfig(format!("{what}: invalid base64: {e}")));
    }
    let file = file.ok_or_else(|| HelmError::Kubeconfig(format!("{what} is missing")))?;
    let path = if file.is_absolute() {
        file.clone()
    } else {
        base.join(file)
    };
    std::fs::read(&path)
        .map_err(|e| HelmError::Kubeconfig(format!("reading {what} {}: {e}", path.display())))
}

/// Reads `path` and resolves `context` (or the current context).
pub fn load(path: &Path, context: Option<&str>) -> Result<Target, HelmError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HelmError::Kubeconfig(format!("reading {}: {e}", path.display())))?;
    let file: File = serde_yaml::from_str(&text)
        .map_err(|e| HelmError::Kubeconfig(format!("parsing {}: {e}", path.display())))?;
    let wanted = context.unwrap_or(&file.current_context);
    if wanted.is_empty() {
        return Err(HelmError::Kubeconfig("Kubernetes cluster unreachable: invalid configuration: no configuration has been provided".into()));
    }
    let ctx = file
        .contexts
        .iter()
        .find(|c| c.name == wanted)
        .ok_or_else(|| {
            HelmError::Kubeconfig(format!(
                "Kubernetes cluster unreachable: context \"{wanted}\" does not exist"
            ))
        })?;
    let cluster = file
        .clusters
        .iter()
        .find(|c| c.name == ctx.value.cluster)
        .ok_or_else(|| {
            HelmError::Kubeconfig(format!(
                "cluster \"{}\" of context \"{wanted}\" does not exist",
                ctx.value.cluster
            ))
        })?;
    let user = file
        .users
        .iter()
        .find(|u| u.name == ctx.value.user)
        .ok_or_else(|| {
            HelmError::Kubeconfig(format!(
                "user \"{}\" of context \"{wanted}\" does not exist",
                ctx.value.user
            ))
        })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let c = &cluster.value;
    let u = &user.value;
    Ok(Target {
        server: c.server.clone(),
        ca_pem: inline_or_file(
            c.certificate_authority_data.as_ref(),
            c.certificate_authority.as_ref(),
            base,
            "certificate-authority",
        )?,
        cert_pem: inline_or_file(
            u.client_certificate_data.as_ref(),
            u.client_certificate.as_ref(),
            base,
            "client-certificate",
        )?,
        key_pem: inline_or_file(
            u.client_key_data.as_ref(),
            u.client_key.as_ref(),
            base,
            "client-key",
        )?,
        namespace: ctx.value.namespace.clone(),
    })
}
