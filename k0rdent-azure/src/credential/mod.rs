//! Azure access tokens, in the order the Azure SDKs use: a service principal (client secret or
//! federated token file, against the authority host), then `az account get-access-token`.
//!
//! Tokens are [`Secret`]s: they never print, are never logged and never reach the state file.
//! [`CachedCredential`] keeps a token until shortly before it expires and can be told to drop
//! it when ARM says it expired early.

mod aad;
mod azcli;

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k0rdent_core::Remedy;
use k0rdent_core::secret::Secret;
use tokio::sync::Mutex;

pub use aad::{ClientSecretCredential, WorkloadIdentityCredential};
pub use azcli::{AzureCliCredential, CliAccount, az_account_show};

use crate::endpoint::check_endpoint;

/// The public cloud's authority host.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// A bearer token and when it expires.
#[derive(Clone)]
pub struct AccessToken {
    /// The bearer token for the `Authorization` header.
    pub token: Secret<String>,
    /// When it stops working.
    pub expires_at: SystemTime,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.token)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no token could be had. Never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct CredentialError {
    /// Which credential failed (`service principal 1234…`, `az CLI`).
    pub source_name: String,
    /// What went wrong.
    pub message: String,
    /// The variable to set or the `az login` to run (its [`Remedy`]).
    pub remedy: Option<String>,
}

impl CredentialError {
    pub(crate) fn new(source: impl Into<String>, message: impl Into<String>) -> Self {
        CredentialError {
            source_name: source.into(),
            message: message.into(),
            remedy: None,
        }
    }

    pub(crate) fn with_remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = Some(remedy.into());
        self
    }
}

impl Remedy for CredentialError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        self.remedy.as_deref().map(Cow::Borrowed)
    }
}

/// Something that can produce ARM bearer tokens.
#[async_trait]
pub trait TokenCredential: Send + Sync + fmt::Debug {
    /// A fresh token for `scope` (e.g. `https://management.azure.com/.default`).
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError>;

    /// The tenant the tokens are for, when known.
    fn tenant_id(&self) -> Option<String> {
        None
    }

    /// A short description for messages (never secret).
    fn describe(&self) -> String;
}

/// A fixed token (tests, or a token obtained elsewhere).
#[derive(Debug, Clone)]
pub struct StaticToken {
    token: AccessToken,
}

impl StaticToken {
    /// A token valid for `lifetime`.
    pub fn new(token: Secret<String>, lifetime: Duration) -> Self {
        StaticToken {
            token: AccessToken {
                token,
                expires_at: SystemTime::now() + lifetime,
            },
        }
    }
}

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(&self, _scope: &str) -> Result<AccessToken, CredentialError> {
        Ok(self.token.clone())
    }
    fn describe(&self) -> String {
        "static token".into()
    }
}

/// Caches another credential's tokens, one per scope (ARM and storage alike), until `margin`
/// before each expires.
#[derive(Debug)]
pub struct CachedCredential {
    inner: Arc<dyn TokenCredential>,
    margin: Duration,
    cache: Mutex<std::collections::HashMap<String, AccessToken>>,
}

impl CachedCredential {
    /// Caches `inner`'s tokens, refreshing 5 minutes before expiry.
    pub fn new(inner: Arc<dyn TokenCredential>) -> Self {
        CachedCredential {
            inner,
            margin: Duration::from_secs(300),
            cache: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Refreshes this long before expiry.
    #[must_use]
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// A cached token, or a new one.
    ///
    /// # Errors
    /// The inner credential's error.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        // Held across the fetch so concurrent callers wait for one refresh instead of
        // stampeding the token endpoint.
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.get(scope)
            && t.expires_at > SystemTime::now() + self.margin
        {
            return Ok(t.clone());
        }
        tracing::debug!(credential = %self.inner.describe(), scope, "fetching an access token");
        let fresh = self.inner.get_token(scope).await?;
        cache.insert(scope.to_owned(), fresh.clone());
        Ok(fresh)
    }

    /// Drops the cached token if it is still `stale` (ARM rejected it as expired).
    pub async fn invalidate(&self, stale: &AccessToken) {
        let mut cache = self.cache.lock().await;
        cache.retain(|_, t| t.token.expose() != stale.token.expose());
    }

    /// The wrapped credential.
    pub fn inner(&self) -> &Arc<dyn TokenCredential> {
        &self.inner
    }
}

/// What selects and configures a credential; [`CredentialSettings::from_env`] reads the
/// usual variables, but anything can fill it.
#[derive(Debug, Clone, Default)]
pub struct CredentialSettings {
    /// `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `AZURE_CLIENT_SECRET`.
    pub client_secret: Option<Secret<String>>,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub federated_token_file: Option<PathBuf>,
    /// `AZURE_AUTHORITY_HOST` (default: the public cloud).
    pub authority_host: Option<String>,
    /// The `az` program (default `az` on PATH).
    pub az_command: Option<PathBuf>,
    /// The subscription (`AZURE_SUBSCRIPTION_ID`, or what the caller resolved): the `az`
    /// fallback asks for a token of its tenant.
    pub subscription_id: Option<String>,
}

impl CredentialSettings {
    /// Reads `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
    /// `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_AUTHORITY_HOST` and `AZURE_SUBSCRIPTION_ID`
    /// through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        CredentialSettings {
            tenant_id: get("AZURE_TENANT_ID"),
            client_id: get("AZURE_CLIENT_ID"),
            client_secret: get("AZURE_CLIENT_SECRET").map(Secret::new),
            federated_token_file: get("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from),
            authority_host: get("AZURE_AUTHORITY_HOST"),
            az_command: None,
            subscription_id: get("AZURE_SUBSCRIPTION_ID"),
        }
    }

    /// Reads the process environment (see [`CredentialSettings::from_lookup`]).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the credential DESIGN.md's order selects: a service principal with a client
    /// secret, else one with a federated token file, else the Azure CLI.
    ///
    /// # Errors
    /// A half-configured service principal, or an authority host that is not https (plain
    /// http is allowed only to loopback).
    pub fn build(&self) -> Result<Arc<dyn TokenCredential>, CredentialError> {
        let authority = self
            .authority_host
            .clone()
            .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned());
        let sp = self.client_secret.is_some() || self.federated_token_file.is_some();
        if sp {
            let what = if self.client_secret.is_some() {
                "AZURE_CLIENT_SECRET"
            } else {
                "AZURE_FEDERATED_TOKEN_FILE"
            };
            let (Some(tenant), Some(client)) = (&self.tenant_id, &self.client_id) else {
                let missing = if self.tenant_id.is_none() {
                    "AZURE_TENANT_ID"
                } else {
                    "AZURE_CLIENT_ID"
                };
                return Err(CredentialError::new(
                    "service principal",
                    format!("{what} is set but {missing} is not"),
                )
                .with_remedy(format!("set {missing}, or unset {what} to use `az login`")));
            };
            let url = check_endpoint(&authority).map_err(|e| {
                CredentialError::new("service principal", format!("AZURE_AUTHORITY_HOST: {e}"))
            })?;
            if let Some(secret) = &self.client_secret {
                return Ok(Arc::new(ClientSecretCredential::new(
                    url,
                    tenant,
                    client,
                    secret.clone(),
                )));
            }
            if let Some(file) = &self.federated_token_file {
                return Ok(Arc::new(WorkloadIdentityCredential::new(
                    url,
                    tenant,
                    client,
                    file.clone(),
                )));
            }
        }
        Ok(Arc::new(
            AzureCliCredential::new(
                self.az_command
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("az")),
            )
            .subscription(self.subscription_id.clone())
            .tenant(self.tenant_id.clone()),
        ))
    }
}

/// Seconds since the epoch → a time (clamped, never panics).
pub(crate) fn epoch(secs: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_pick_the_documented_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let s = CredentialSettings::from_lookup(env(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/tmp/x"),
        ]));
        assert!(s.build().unwrap().describe().contains("client secret"));
        let s = CredentialSettings::from_lookup(env(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/tmp/x"),
        ]));
        assert!(s.build().unwrap().describe().contains("federated"));
        let s = CredentialSettings::from_lookup(env(&[]));
        assert!(s.build().unwrap().describe().contains("az"));
        let s = CredentialSettings::from_lookup(env(&[("AZURE_CLIENT_SECRET", "s3cret")]));
        let e = s.build().unwrap_err();
        assert!(e.to_string().contains("AZURE_TENANT_ID"), "{e}");
        assert!(!format!("{e:?}{s:?}").contains("s3cret"));
        let s = CredentialSettings::from_lookup(env(&[
            ("AZURE_TENANT_ID", "t"),
            ("AZURE_CLIENT_ID", "c"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_AUTHORITY_HOST", "http://login.example.com"),
        ]));
        assert!(s.build().unwrap_err().to_string().contains("loopback"));
    }

    #[derive(Debug)]
    struct Counting(std::sync::atomic::AtomicU32, Duration);

    #[async_trait]
    impl TokenCredential for Counting {
        async fn get_token(&self, _: &str) -> Result<AccessToken, CredentialError> {
            let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(AccessToken {
                token: Secret::new(format!("tok-{n}")),
                expires_at: SystemTime::now() + self.1,
            })
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    #[tokio::test]
    async fn tokens_are_cached_until_the_margin_and_refreshed_after_invalidation() {
        let long = Arc::new(Counting(0.into(), Duration::from_secs(3600)));
        let c = CachedCredential::new(long.clone());
        let a = c.token("s").await.unwrap();
        let b = c.token("s").await.unwrap();
        assert_eq!(a.token.expose(), b.token.expose());
        c.invalidate(&a).await;
        let d = c.token("s").await.unwrap();
        assert_ne!(a.token.expose(), d.token.expose());
        // A token that expires within the margin is never served from the cache.
        let short = Arc::new(Counting(0.into(), Duration::from_secs(60)));
        let c = CachedCredential::new(short.clone());
        let a = c.token("s").await.unwrap();
        let b = c.token("s").await.unwrap();
        assert_ne!(a.token.expose(), b.token.expose());
        // One token per scope: ARM's and storage's do not evict each other.
        let c = CachedCredential::new(long.clone());
        let arm = c.token("arm").await.unwrap();
        let storage = c.token("storage").await.unwrap();
        assert_ne!(arm.token.expose(), storage.token.expose());
        assert_eq!(
            c.token("arm").await.unwrap().token.expose(),
            arm.token.expose()
        );
        assert_eq!(
            c.token("storage").await.unwrap().token.expose(),
            storage.token.expose()
        );
    }
}
