//! One authorized Key Vault request at a time: the URL, `api-version`, the bearer token for
//! the vault scope, retries of transient failures, and errors that say which operation
//! failed, what the service answered and what to do.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use k0rdent_core::Remedy;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::credential::CachedCredential;
use crate::endpoint::same_origin;
use crate::transport::{self, SendFailure};

/// The token scope of Key Vault's data plane.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// The secrets API version every request asks for.
pub const API_VERSION: &str = "7.4";
/// Attempts of a request that fails transiently (429, 5xx, unreachable).
const ATTEMPTS: u32 = 4;

/// A Key Vault request that failed. Never holds a secret value or a token.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The vault could not be reached (nothing listens, DNS, TLS).
    #[error("{op}: {0}", op = .1)]
    Unreachable(transport::Unreachable, String),
    /// The request failed on the way (timeout, reset connection).
    #[error("{op}: {detail}")]
    Transport {
        /// What was being done (`store key ssh-admin.key`).
        op: String,
        #[allow(missing_docs)]
        detail: String,
    },
    /// No token could be had.
    #[error("{op}: {detail}")]
    Credential {
        #[allow(missing_docs)]
        op: String,
        #[allow(missing_docs)]
        detail: String,
    },
    /// The service answered with an error status.
    #[error("{op}: HTTP {status} {code}{}{}", inner.as_deref().map(|i| format!("/{i}")).unwrap_or_default(), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Status {
        #[allow(missing_docs)]
        op: String,
        #[allow(missing_docs)]
        status: u16,
        /// `error.code` (`SecretNotFound`, `Conflict`, `Forbidden`, ...).
        code: String,
        /// `error.innererror.code` (`ObjectIsDeletedButRecoverable`, `ForbiddenByRbac`).
        inner: Option<String>,
        /// The first line of the service's message.
        message: Option<String>,
    },
    /// The answer could not be read, or is not what this store wrote.
    #[error("{op}: {detail}")]
    Unexpected {
        #[allow(missing_docs)]
        op: String,
        #[allow(missing_docs)]
        detail: String,
    },
}

impl VaultError {
    /// The HTTP status, for a status error.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The inner error code (`ObjectIsBeingDeleted`, ...), for a status error.
    pub fn inner_code(&self) -> &str {
        match self {
            VaultError::Status { inner, .. } => inner.as_deref().unwrap_or(""),
            _ => "",
        }
    }

    fn is_transient(&self) -> bool {
        match self {
            VaultError::Unreachable(u, _) => u.cause.retries() > 0,
            VaultError::Transport { .. } => true,
            VaultError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            VaultError::Credential { .. } | VaultError::Unexpected { .. } => false,
        }
    }
}

impl Remedy for VaultError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            VaultError::Status { status: 403, .. } => {
                "give the signed-in identity the \"Key Vault \
                Secrets Officer\" role on the vault (`az role assignment create --role \"Key Vault \
                Secrets Officer\" --assignee <id> --scope <vault id>`; Owner or Contributor alone \
                give no access to secrets), or, on a vault that uses access policies, the secret \
                permissions get, list, set, delete, recover and purge"
                    .into()
            }
            VaultError::Status { status: 401, .. } | VaultError::Credential { .. } => {
                "check the Azure credentials (`az login`, or AZURE_TENANT_ID/AZURE_CLIENT_ID with \
                 AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE)"
                    .into()
            }
            VaultError::Status { status: 404, .. } => {
                "check the vault name in --keys keyvault://VAULT (`az keyvault list`)".into()
            }
            VaultError::Status { status: 409, .. }
                if self.inner_code() == "ObjectIsDeletedButRecoverable" =>
            {
                "the secret was deleted but not purged: purge it (`az keyvault secret purge`) or \
                 recover it (`az keyvault secret recover`), then run again"
                    .into()
            }
            VaultError::Unreachable(..) | VaultError::Transport { .. } => {
                "check the network and the vault's endpoint (K0RDENT_KEYVAULT_ENDPOINT when set), \
                 then run again"
                    .into()
            }
            _ => return None,
        })
    }
}

/// The vault's client: where it is, and how requests are authorized.
#[derive(Clone)]
pub(crate) struct VaultHttp {
    pub(crate) http: reqwest::Client,
    /// The vault's base URL (no trailing slash).
    pub(crate) base: Url,
    pub(crate) credential: Arc<CachedCredential>,
}

/// The JSON body of a successful answer (`Null` when there is none).
pub(crate) type Body = Value;

impl VaultHttp {
    /// `{base}/{path}?api-version=7.4`.
    pub(crate) fn url(&self, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{path}"));
        {
            let mut q = url.query_pairs_mut();
            q.clear().append_pair("api-version", API_VERSION);
            q.extend_pairs(query);
        }
        url
    }

    /// Sends a request, retrying transient failures (honouring `Retry-After`).
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        op: &str,
    ) -> Result<Body, VaultError> {
        if !same_origin(&url, &self.base) {
            return Err(VaultError::Unexpected {
                op: op.to_owned(),
                detail: format!(
                    "the vault pointed to another origin ({}); the token is not sent there",
                    transport::origin(&url)
                ),
            });
        }
        let mut attempt = 1;
        loop {
            match self.send_once(method.clone(), url.clone(), body, op).await {
                Ok(b) => return Ok(b),
                Err((e, retry_after)) if e.is_transient() && attempt < ATTEMPTS => {
                    let delay = retry_after
                        .unwrap_or_else(|| Duration::from_millis(500 << attempt))
                        .min(Duration::from_secs(10));
                    tracing::debug!(error = %e, attempt, ?delay, "Key Vault request failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        op: &str,
    ) -> Result<Body, (VaultError, Option<Duration>)> {
        let token = self.credential.token(VAULT_SCOPE).await.map_err(|e| {
            (
                VaultError::Credential {
                    op: op.to_owned(),
                    detail: e.to_string(),
                },
                None,
            )
        })?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.token.expose())).map_err(|_| {
                (
                    VaultError::Credential {
                        op: op.to_owned(),
                        detail: "the token is not a valid header value".into(),
                    },
                    None,
                )
            })?;
        auth.set_sensitive(true);
        let mut rb = self
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, auth);
        rb = match body {
            Some(b) => rb.json(b),
            // A write without a body still states its length.
            None if method != Method::GET => rb.header("content-length", "0"),
            None => rb,
        };
        let resp = rb.send().await.map_err(|e| {
            let err = match transport::send_failure(&e, "the key vault", &url) {
                SendFailure::Unreachable(u) => VaultError::Unreachable(u, op.to_owned()),
                SendFailure::Broken(detail) => VaultError::Transport {
                    op: op.to_owned(),
                    detail,
                },
            };
            (err, None)
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| {
            (
                VaultError::Transport {
                    op: op.to_owned(),
                    detail: transport::describe(&e),
                },
                None,
            )
        })?;
        tracing::debug!(%method, path = %url.path(), status = status.as_u16(), "Key Vault request");
        let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_client_error() || status.is_server_error() {
            return Err((status_error(op, status, &json), retry_after));
        }
        Ok(json)
    }
}

fn status_error(op: &str, status: StatusCode, json: &Value) -> VaultError {
    let text = |p: &str| json.pointer(p).and_then(Value::as_str).map(str::to_owned);
    VaultError::Status {
        op: op.to_owned(),
        status: status.as_u16(),
        code: text("/error/code").unwrap_or_else(|| status.canonical_reason().unwrap_or("").into()),
        inner: text("/error/innererror/code"),
        message: text("/error/message").and_then(|m| m.lines().next().map(str::to_owned)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_refused_caller_is_told_the_role() {
        let e = status_error(
            "store key ssh-admin.key",
            StatusCode::FORBIDDEN,
            &serde_json::json!({"error": {"code": "Forbidden", "message": "Caller is not authorized.\r\nmore", "innererror": {"code": "ForbiddenByRbac"}}}),
        );
        assert!(e.remedy().unwrap().contains("Key Vault Secrets Officer"));
        assert_eq!(
            e.to_string(),
            "store key ssh-admin.key: HTTP 403 Forbidden/ForbiddenByRbac (Caller is not authorized.)"
        );
    }
}
