//! Private keys in Azure Key Vault (`--keys keyvault://VAULT`): [`KeyVault`] reaches a vault
//! over the secrets REST API (api-version 7.4) with a bearer token for
//! [`VAULT_SCOPE`] from the same credential chain as ARM, and [`VaultKeyStore`] is one
//! cluster's keys in it, as a [`KeyStore`].
//!
//! - A key is the secret [`secret_name`]`(cluster, key)` (`[0-9a-z-]`, with a digest of the
//!   exact key name so names never collide), its value the key's bytes in base64 (content
//!   type [`CONTENT_TYPE`]), tagged with the cluster id and the key name; a secret whose
//!   tags name another key is refused, never overwritten.
//! - [`KeyStore::remove_all`] deletes every secret of the cluster and purges it, retrying
//!   while the service still reports the deletion in progress, so nothing is left behind,
//!   not even soft-deleted.
//! - The endpoint is `https://{VAULT}.vault.azure.net`, or the URL in
//!   `K0RDENT_KEYVAULT_ENDPOINT` (`{vault}` in it is replaced by the vault name; the tests'
//!   emulator serves `http://127.0.0.1:PORT/vaults/{vault}`). Tokens go over plain http only
//!   to loopback.

mod http;
mod names;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use k0rdent_core::Remedy;
use k0rdent_core::secret::Secret;
use k0rdent_core::store::{KeyStore, StoreError};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::credential::{CachedCredential, CredentialSettings};
use crate::endpoint::{EndpointError, check_endpoint};
use http::VaultHttp;

pub use http::{API_VERSION, VAULT_SCOPE, VaultError};
pub use names::secret_name;

/// The content type of a key's secret: the value is the key's bytes in base64.
pub const CONTENT_TYPE: &str = "application/octet-stream;base64";
/// The environment variable that replaces `https://{VAULT}.vault.azure.net`.
pub const ENDPOINT_ENV: &str = "K0RDENT_KEYVAULT_ENDPOINT";
const TAG_CLUSTER: &str = "k0rdent-cluster";
const TAG_KEY: &str = "k0rdent-key";
/// How long a purge waits for the service to finish a deletion.
const PURGE_PATIENCE: Duration = Duration::from_secs(60);

/// Why a vault cannot be used as given.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeyVaultConfigError {
    /// Not `keyvault://VAULT`, or not a valid vault name.
    #[error("--keys {input}: {reason}")]
    Url {
        #[allow(missing_docs)]
        input: String,
        #[allow(missing_docs)]
        reason: String,
    },
    /// The endpoint may not receive tokens.
    #[error("{ENDPOINT_ENV}: {0}")]
    Endpoint(#[from] EndpointError),
    /// The credential could not be set up, or the HTTP client.
    #[error("--keys {url}: {detail}")]
    Setup {
        #[allow(missing_docs)]
        url: String,
        #[allow(missing_docs)]
        detail: String,
    },
}

impl Remedy for KeyVaultConfigError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            KeyVaultConfigError::Url { .. } => "use --keys keyvault://VAULT, where VAULT is the \
                vault's name (3-24 letters, digits and hyphens, starting with a letter)"
                .into(),
            KeyVaultConfigError::Endpoint(_) => {
                "set K0RDENT_KEYVAULT_ENDPOINT to an https URL (plain http only to loopback)".into()
            }
            KeyVaultConfigError::Setup { .. } => "check the Azure credentials (`az login`, or \
                AZURE_TENANT_ID/AZURE_CLIENT_ID with AZURE_CLIENT_SECRET)"
                .into(),
        })
    }
}

/// A parsed `keyvault://VAULT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVaultUrl {
    /// The vault's name.
    pub vault: String,
}

impl fmt::Display for KeyVaultUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keyvault://{}", self.vault)
    }
}

impl std::str::FromStr for KeyVaultUrl {
    type Err = KeyVaultConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| KeyVaultConfigError::Url {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let vault = s
            .strip_prefix("keyvault://")
            .ok_or_else(|| bad("expected keyvault://VAULT"))?
            .trim_end_matches('/');
        let b = vault.as_bytes();
        let valid = (3..=24).contains(&b.len())
            && b[0].is_ascii_alphabetic()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && !vault.contains("--")
            && !vault.ends_with('-');
        if !valid {
            return Err(bad(
                "a vault name has 3-24 letters, digits and single hyphens, starts with a letter \
                 and does not end with a hyphen",
            ));
        }
        Ok(KeyVaultUrl {
            vault: vault.to_ascii_lowercase(),
        })
    }
}

/// A Key Vault, reachable and authorized.
#[derive(Clone)]
pub struct KeyVault {
    url: KeyVaultUrl,
    http: VaultHttp,
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVault")
            .field("url", &self.url.to_string())
            .field("endpoint", &self.http.base.as_str())
            .finish()
    }
}

impl KeyVault {
    /// The vault of `keyvault://VAULT`, at `https://VAULT.vault.azure.net` or
    /// `K0RDENT_KEYVAULT_ENDPOINT`, with bearer tokens from the ARM credential chain
    /// ([`CredentialSettings::from_lookup`]), all read through `lookup`.
    ///
    /// # Errors
    /// [`KeyVaultConfigError`]: a bad URL or endpoint, or a credential that cannot be set up.
    pub fn from_url(
        url: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<KeyVault, KeyVaultConfigError> {
        let parsed: KeyVaultUrl = url.parse()?;
        let credential = CredentialSettings::from_lookup(&lookup)
            .build()
            .map_err(|e| KeyVaultConfigError::Setup {
                url: parsed.to_string(),
                detail: e.to_string(),
            })?;
        let endpoint = match lookup(ENDPOINT_ENV).filter(|e| !e.trim().is_empty()) {
            Some(e) => e.replace("{vault}", &parsed.vault),
            None => format!("https://{}.vault.azure.net", parsed.vault),
        };
        KeyVault::new(
            parsed,
            &endpoint,
            Arc::new(CachedCredential::new(credential)),
        )
    }

    /// The vault `url` at `endpoint` (its base URL), authorized by `credential`.
    ///
    /// # Errors
    /// [`KeyVaultConfigError::Endpoint`] for an endpoint that may not receive tokens.
    pub fn new(
        url: KeyVaultUrl,
        endpoint: &str,
        credential: Arc<CachedCredential>,
    ) -> Result<KeyVault, KeyVaultConfigError> {
        let base = check_endpoint(endpoint.trim_end_matches('/'))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("k0rdent-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| KeyVaultConfigError::Setup {
                url: url.to_string(),
                detail: e.to_string(),
            })?;
        Ok(KeyVault {
            url,
            http: VaultHttp {
                http,
                base,
                credential,
            },
        })
    }

    #[allow(missing_docs)]
    pub fn url(&self) -> &KeyVaultUrl {
        &self.url
    }

    /// The keys of `cluster` in this vault.
    pub fn for_cluster(&self, cluster: &str) -> VaultKeyStore {
        VaultKeyStore {
            vault: self.clone(),
            cluster: cluster.to_owned(),
        }
    }
}

/// One cluster's private keys in a vault.
#[derive(Debug, Clone)]
pub struct VaultKeyStore {
    vault: KeyVault,
    cluster: String,
}

/// A listed secret of this cluster: its name and the key it holds.
struct Listed {
    secret: String,
    key: String,
}

impl VaultKeyStore {
    /// The cluster id the secrets belong to.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    fn store_error(&self, e: &VaultError) -> StoreError {
        StoreError::Remote {
            location: self.vault.url.to_string(),
            detail: e.to_string(),
            remedy: e.remedy().map(Cow::into_owned),
        }
    }

    /// The key name a listed item holds, if it is one of this cluster's secrets (its name is
    /// the one [`secret_name`] gives for its tags).
    fn ours(&self, item: &Value) -> Option<Listed> {
        let secret = item
            .get("id")?
            .as_str()?
            .trim_end_matches('/')
            .rsplit('/')
            .next()?
            .to_owned();
        let tags = item.get("tags")?;
        if tags.get(TAG_CLUSTER)?.as_str()? != self.cluster {
            return None;
        }
        let key = tags.get(TAG_KEY)?.as_str()?.to_owned();
        (secret_name(&self.cluster, &key) == secret).then_some(Listed { secret, key })
    }

    /// Every item of a list (`secrets` or `deletedsecrets`), following `nextLink`.
    async fn list(&self, what: &str, op: &str) -> Result<Vec<Listed>, VaultError> {
        let http = &self.vault.http;
        let mut url = http.url(what, &[("maxresults", "25")]);
        let mut out = Vec::new();
        loop {
            let page = http.send(Method::GET, url, None, op).await?;
            if let Some(items) = page.get("value").and_then(Value::as_array) {
                out.extend(items.iter().filter_map(|i| self.ours(i)));
            }
            match page.get("nextLink").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => {
                    url = url::Url::parse(next).map_err(|e| VaultError::Unexpected {
                        op: op.to_owned(),
                        detail: format!("nextLink is not a URL: {e}"),
                    })?;
                }
                _ => return Ok(out),
            }
        }
    }

    /// Every key of this cluster in the vault, by key name (what a machine fetches at start).
    ///
    /// # Errors
    /// [`StoreError::Remote`] naming the vault, with the remedy (the role on a 403).
    pub async fn fetch_all(&self) -> Result<Vec<(String, Secret<Vec<u8>>)>, StoreError> {
        let op = format!("list the keys of {}", self.cluster);
        let listed = self
            .list("secrets", &op)
            .await
            .map_err(|e| self.store_error(&e))?;
        let mut out = Vec::with_capacity(listed.len());
        for l in listed {
            if let Some(v) = self.get_secret(&l.key).await? {
                out.push((l.key, v));
            }
        }
        Ok(out)
    }

    async fn read(&self, key: &str) -> Result<Option<Secret<Vec<u8>>>, VaultError> {
        let op = format!("read key {key}");
        let http = &self.vault.http;
        let secret = secret_name(&self.cluster, key);
        let body = match http
            .send(
                Method::GET,
                http.url(&format!("secrets/{secret}"), &[]),
                None,
                &op,
            )
            .await
        {
            Ok(b) => b,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let unexpected = |detail: String| VaultError::Unexpected {
            op: op.clone(),
            detail,
        };
        let tagged = body
            .pointer(&format!("/tags/{TAG_KEY}"))
            .and_then(Value::as_str);
        if tagged != Some(key) {
            return Err(unexpected(format!(
                "secret {secret} holds {}, not this key; it was not written by this store",
                tagged.unwrap_or("an untagged value")
            )));
        }
        let value = body
            .get("value")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected(format!("secret {secret} has no value")))?;
        let bytes = if body.get("contentType").and_then(Value::as_str) == Some(CONTENT_TYPE) {
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| unexpected(format!("secret {secret} is not base64")))?
        } else {
            value.as_bytes().to_vec()
        };
        Ok(Some(Secret::new(bytes)))
    }

    async fn write(&self, key: &str, value: &[u8]) -> Result<(), VaultError> {
        let op = format!("store key {key}");
        // A secret of this name holding another key is refused, never overwritten.
        self.read(key).await?;
        let http = &self.vault.http;
        let secret = secret_name(&self.cluster, key);
        let body = json!({
            "value": base64::engine::general_purpose::STANDARD.encode(value),
            "contentType": CONTENT_TYPE,
            "tags": { TAG_CLUSTER: self.cluster, TAG_KEY: key },
        });
        let url = http.url(&format!("secrets/{secret}"), &[]);
        let started = Instant::now();
        loop {
            match http.send(Method::PUT, url.clone(), Some(&body), &op).await {
                Ok(_) => return Ok(()),
                // A soft-deleted secret of this name (an earlier, interrupted reset) holds a
                // key no VM uses any more: purge it, then write.
                Err(e) if e.inner_code() == "ObjectIsDeletedButRecoverable" => {
                    self.purge(&secret, &op).await?;
                }
                Err(e)
                    if e.inner_code() == "ObjectIsBeingDeleted"
                        && started.elapsed() < PURGE_PATIENCE =>
                {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Purges a soft-deleted secret, waiting while its deletion is still in progress (the
    /// service answers 409 `ObjectIsBeingDeleted`, or 404 before the deleted secret shows).
    async fn purge(&self, secret: &str, op: &str) -> Result<(), VaultError> {
        let http = &self.vault.http;
        let url = http.url(&format!("deletedsecrets/{secret}"), &[]);
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match http.send(Method::DELETE, url.clone(), None, op).await {
                Ok(_) => return Ok(()),
                Err(e) if e.status() == Some(409) && started.elapsed() < PURGE_PATIENCE => {}
                // Not (yet) listed as deleted: wait a little, then take it as gone (a vault
                // without soft delete removes secrets at once).
                Err(e) if e.status() == Some(404) => {
                    if started.elapsed() >= Duration::from_secs(10) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    async fn remove(&self) -> Result<usize, VaultError> {
        let op = format!("remove the keys of {}", self.cluster);
        let http = &self.vault.http;
        let live = self.list("secrets", &op).await?;
        let mut names: Vec<String> = Vec::new();
        for l in live {
            let url = http.url(&format!("secrets/{}", l.secret), &[]);
            match http.send(Method::DELETE, url, None, &op).await {
                Ok(_) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => return Err(e),
            }
            names.push(l.secret);
        }
        // Secrets deleted by an earlier, interrupted run are purged too.
        for l in self.list("deletedsecrets", &op).await? {
            if !names.contains(&l.secret) {
                names.push(l.secret);
            }
        }
        for n in &names {
            self.purge(n, &op).await?;
        }
        Ok(names.len())
    }
}

#[async_trait]
impl KeyStore for VaultKeyStore {
    async fn put_secret(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(name, value)
            .await
            .map_err(|e| self.store_error(&e))
    }

    async fn get_secret(&self, name: &str) -> Result<Option<Secret<Vec<u8>>>, StoreError> {
        self.read(name).await.map_err(|e| self.store_error(&e))
    }

    async fn remove_all(&self) -> Result<(), StoreError> {
        let n = self.remove().await.map_err(|e| self.store_error(&e))?;
        tracing::info!(vault = %self.vault.url, cluster = %self.cluster, secrets = n, "deleted and purged the cluster's keys");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn vault_urls_name_a_valid_vault() {
        let u: KeyVaultUrl = "keyvault://My-Vault1/".parse().unwrap();
        assert_eq!(u.vault, "my-vault1");
        assert_eq!(u.to_string(), "keyvault://my-vault1");
        for bad in [
            "azblob://x/y",
            "keyvault://ab",
            "keyvault://1abc",
            "keyvault://a--b",
            "keyvault://abc-",
            "keyvault://a_bc",
        ] {
            let e = bad.parse::<KeyVaultUrl>().unwrap_err();
            assert!(e.remedy().is_some(), "{bad}");
        }
    }

    #[test]
    fn plain_http_endpoints_must_be_loopback() {
        let lookup = |k: &str| match k {
            ENDPOINT_ENV => Some("http://vault.example.com/{vault}".to_owned()),
            "AZURE_TENANT_ID" => Some("t".into()),
            "AZURE_CLIENT_ID" => Some("c".into()),
            "AZURE_CLIENT_SECRET" => Some("s".into()),
            _ => None,
        };
        let e = KeyVault::from_url("keyvault://kv1", lookup).unwrap_err();
        assert!(matches!(e, KeyVaultConfigError::Endpoint(_)), "{e}");
        let lookup = |k: &str| match k {
            ENDPOINT_ENV => Some("http://127.0.0.1:9/vaults/{vault}".to_owned()),
            _ => lookup(k),
        };
        let v = KeyVault::from_url("keyvault://kv1", lookup).unwrap();
        assert_eq!(v.http.base.as_str(), "http://127.0.0.1:9/vaults/kv1");
    }
}
