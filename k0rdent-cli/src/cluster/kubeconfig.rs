//! The kubeconfig `k0sctl kubeconfig` prints, made ours: its server set explicitly to the
//! first controller's tunnel address (k0sctl's default is the first *running* controller, so
//! it would change with the cluster's health), its cluster and context named after the
//! cluster id so it can be merged with others, and the fingerprint of the cluster CA it
//! trusts — an `install_k0s` output, so a cluster rebuilt with a new CA reruns what depends
//! on it. It holds the admin client key, so it is only ever handled as a [`Secret`].

use base64::Engine as _;
use k0rdent_core::secret::Secret;
use serde_yaml::{Mapping, Value};
use sha2::{Digest, Sha256};

/// The kubeconfig's file name in the state directory.
pub const KUBECONFIG_FILE: &str = "kubeconfig";

/// Why a kubeconfig was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    /// Not YAML, or not a `Config`.
    #[error("k0sctl printed something that is not a kubeconfig: {0}")]
    NotAKubeconfig(String),
    /// No cluster with a CA (k0sctl prints one cluster; `contexts: []` is what a failed fetch
    /// looked like in the Bash tool).
    #[error("the kubeconfig has no {0}")]
    Missing(&'static str),
    /// The CA is not base64 PEM.
    #[error("the kubeconfig's certificate-authority-data is not a PEM certificate")]
    BadCa,
}

/// The rewritten kubeconfig and what `install_k0s` records from it.
#[derive(Debug, Clone)]
pub struct Adopted {
    /// The kubeconfig to write (0600).
    pub text: Secret<String>,
    /// `https://<first controller's tunnel address>:6443`.
    pub api_url: String,
    /// `sha256:<hex>` of the CA certificate's DER bytes.
    pub ca_fingerprint: String,
}

fn first_map<'a>(
    doc: &'a mut Mapping,
    key: &'static str,
) -> Result<&'a mut Mapping, KubeconfigError> {
    doc.get_mut(key)
        .and_then(Value::as_sequence_mut)
        .and_then(|s| s.first_mut())
        .and_then(Value::as_mapping_mut)
        .ok_or(KubeconfigError::Missing(key))
}

/// `sha256:<hex>` of the first certificate in a PEM text.
///
/// # Errors
/// [`KubeconfigError::BadCa`].
pub fn pem_fingerprint(pem: &str) -> Result<String, KubeconfigError> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    if body.is_empty() {
        return Err(KubeconfigError::BadCa);
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| KubeconfigError::BadCa)?;
    let hex: String = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("sha256:{hex}"))
}

/// Rewrites `raw` (what `k0sctl kubeconfig` printed): one cluster and one context, both
/// named `cluster_id`, server `api_url`, current context set.
///
/// # Errors
/// [`KubeconfigError`] when it is not a usable kubeconfig.
pub fn adopt(
    raw: &Secret<String>,
    cluster_id: &str,
    api_url: &str,
) -> Result<Adopted, KubeconfigError> {
    let mut doc: Value = serde_yaml::from_str(raw.expose())
        .map_err(|e| KubeconfigError::NotAKubeconfig(e.to_string()))?;
    let top = doc
        .as_mapping_mut()
        .ok_or_else(|| KubeconfigError::NotAKubeconfig("not a mapping".into()))?;
    let ca_b64 = {
        let cluster = first_map(top, "clusters")?;
        cluster.insert("name".into(), cluster_id.into());
        let inner = cluster
            .get_mut("cluster")
            .and_then(Value::as_mapping_mut)
            .ok_or(KubeconfigError::Missing("cluster"))?;
        inner.insert("server".into(), api_url.into());
        inner
            .get("certificate-authority-data")
            .and_then(Value::as_str)
            .ok_or(KubeconfigError::Missing("certificate-authority-data"))?
            .to_owned()
    };
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64.trim())
        .map_err(|_| KubeconfigError::BadCa)?;
    let ca_fingerprint = pem_fingerprint(&String::from_utf8_lossy(&pem))?;
    let user = first_map(top, "users")?
        .get("name")
        .and_then(Value::as_str)
        .ok_or(KubeconfigError::Missing("user name"))?
        .to_owned();
    let context = first_map(top, "contexts")?;
    context.insert("name".into(), cluster_id.into());
    let mut ctx = Mapping::new();
    ctx.insert("cluster".into(), cluster_id.into());
    ctx.insert("user".into(), user.into());
    context.insert("context".into(), Value::Mapping(ctx));
    for key in ["clusters", "contexts"] {
        if let Some(seq) = top.get_mut(key).and_then(Value::as_sequence_mut) {
            seq.truncate(1);
        }
    }
    top.insert("current-context".into(), cluster_id.into());
    let text =
        serde_yaml::to_string(&doc).map_err(|e| KubeconfigError::NotAKubeconfig(e.to_string()))?;
    Ok(Adopted {
        text: Secret::new(text),
        api_url: api_url.to_owned(),
        ca_fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A CA as PEM (any DER bytes do for the fingerprint; these are not a real certificate).
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";

    fn raw() -> Secret<String> {
        let ca = base64::engine::general_purpose::STANDARD.encode(PEM);
        Secret::new(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://10.0.1.5:6443\n    certificate-authority-data: {ca}\n  name: k0s-cluster\ncontexts:\n- context:\n    cluster: k0s-cluster\n    user: admin\n  name: k0s-cluster\ncurrent-context: k0s-cluster\npreferences: {{}}\nusers:\n- name: admin\n  user:\n    client-certificate-data: Y2VydA==\n    client-key-data: a2V5\n"
        ))
    }

    #[test]
    fn server_names_and_fingerprint_are_ours_and_the_key_is_kept() {
        let a = adopt(&raw(), "k0rdent-abc12345", "https://172.24.24.11:6443").unwrap();
        let doc: Value = serde_yaml::from_str(a.text.expose()).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://172.24.24.11:6443"
        );
        assert_eq!(doc["clusters"][0]["name"], "k0rdent-abc12345");
        assert_eq!(doc["contexts"][0]["name"], "k0rdent-abc12345");
        assert_eq!(doc["contexts"][0]["context"]["cluster"], "k0rdent-abc12345");
        assert_eq!(doc["contexts"][0]["context"]["user"], "admin");
        assert_eq!(doc["current-context"], "k0rdent-abc12345");
        assert_eq!(doc["users"][0]["user"]["client-key-data"], "a2V5");
        // sha256 of bytes 00..09.
        assert_eq!(
            a.ca_fingerprint,
            "sha256:1f825aa2f0020ef7cf91dfa30da4668d791c5d4824fc8e41354b89ec05795ab3"
        );
        assert!(!format!("{a:?}").contains("a2V5"), "the key never prints");
    }

    #[test]
    fn what_the_bash_tool_took_for_a_failed_fetch_is_refused() {
        let empty = Secret::new(
            "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n".to_owned(),
        );
        assert_eq!(
            adopt(&empty, "c", "https://x:6443").unwrap_err(),
            KubeconfigError::Missing("clusters")
        );
        assert_eq!(
            adopt(&Secret::new("Error: no controllers".to_owned()), "c", "s").unwrap_err(),
            KubeconfigError::Missing("clusters")
        );
        assert!(matches!(
            adopt(&Secret::new("- not\n- a config".to_owned()), "c", "s"),
            Err(KubeconfigError::NotAKubeconfig(_))
        ));
    }
}
