//! Service principal tokens from the Microsoft identity platform (OAuth2 client credentials).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k0rdent_core::Secret;
use serde::Deserialize;
use url::Url;

use super::{AccessToken, CredentialError, TokenCredential};
use crate::client::transport;

const AUTHORITY_REMEDY: &str = "check AZURE_AUTHORITY_HOST (default https://login.microsoftonline.com), \
     the network, DNS and any proxy on the way";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("k0rdent-deploy/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Posts a client-credentials request. `form` holds the secret or assertion; it is never
/// logged, and errors carry only the identity platform's error code and description.
async fn request_token(
    http: &reqwest::Client,
    authority: &Url,
    tenant: &str,
    who: &str,
    form: &[(&str, &str)],
) -> Result<AccessToken, CredentialError> {
    let url = authority
        .join(&format!("{tenant}/oauth2/v2.0/token"))
        .map_err(|e| CredentialError::new(who, format!("bad authority host or tenant: {e}")))?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    tracing::debug!(host = %url.host_str().unwrap_or(""), "requesting a token");
    let mut unreachable = 0u32;
    let resp = loop {
        match http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                let endpoint = transport::origin(&url);
                let Some(cause) = transport::classify(&e) else {
                    return Err(CredentialError::new(
                        who,
                        format!("token endpoint {endpoint}: {}", transport::describe(&e)),
                    )
                    .with_remedy(AUTHORITY_REMEDY));
                };
                unreachable += 1;
                if unreachable > cause.retries() {
                    let u = transport::Unreachable {
                        what: "the token endpoint".into(),
                        endpoint,
                        cause,
                    };
                    return Err(
                        CredentialError::new(who, u.to_string()).with_remedy(AUTHORITY_REMEDY)
                    );
                }
                tokio::time::sleep(transport::quick_delay(unreachable)).await;
            }
        }
    };
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| CredentialError::new(who, format!("reading the token response: {e}")))?;
    if !status.is_success() {
        let detail = serde_json::from_slice::<TokenError>(&bytes)
            .map(|e| format!("{}: {}", e.error, first_line(&e.error_description)))
            .unwrap_or_else(|_| format!("HTTP {status}"));
        return Err(
            CredentialError::new(who, format!("token request refused: {detail}"))
                .with_remedy("check AZURE_TENANT_ID, AZURE_CLIENT_ID and the secret or token file"),
        );
    }
    let t: TokenResponse = serde_json::from_slice(&bytes)
        .map_err(|e| CredentialError::new(who, format!("unreadable token response: {e}")))?;
    let secs = match t.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    Ok(AccessToken {
        token: Secret::new(t.access_token),
        expires_at: SystemTime::now() + Duration::from_secs(secs),
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// A service principal authenticating with a client secret.
pub struct ClientSecretCredential {
    authority: Url,
    tenant: String,
    client_id: String,
    secret: Secret<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("authority", &self.authority.as_str())
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("secret", &self.secret)
            .finish()
    }
}

impl ClientSecretCredential {
    /// A credential for `client_id` in `tenant` against `authority`.
    pub fn new(authority: Url, tenant: &str, client_id: &str, secret: Secret<String>) -> Self {
        ClientSecretCredential {
            authority: with_slash(authority),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            secret,
            http: http(),
        }
    }
}

#[async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        request_token(
            &self.http,
            &self.authority,
            &self.tenant,
            &self.describe(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", self.secret.expose()),
                ("scope", scope),
            ],
        )
        .await
    }

    fn tenant_id(&self) -> Option<String> {
        Some(self.tenant.clone())
    }

    fn describe(&self) -> String {
        format!("service principal {} (client secret)", self.client_id)
    }
}

/// A service principal authenticating with a federated token file (workload identity).
/// The file is read for every token request, because CI systems rotate it.
pub struct WorkloadIdentityCredential {
    authority: Url,
    tenant: String,
    client_id: String,
    file: PathBuf,
    http: reqwest::Client,
}

impl std::fmt::Debug for WorkloadIdentityCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadIdentityCredential")
            .field("authority", &self.authority.as_str())
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("file", &self.file)
            .finish()
    }
}

impl WorkloadIdentityCredential {
    /// A credential for `client_id` in `tenant` whose assertion is in `file`.
    pub fn new(authority: Url, tenant: &str, client_id: &str, file: PathBuf) -> Self {
        WorkloadIdentityCredential {
            authority: with_slash(authority),
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            file,
            http: http(),
        }
    }
}

#[async_trait]
impl TokenCredential for WorkloadIdentityCredential {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let who = self.describe();
        let assertion = tokio::fs::read_to_string(&self.file).await.map_err(|e| {
            CredentialError::new(
                &who,
                format!(
                    "cannot read AZURE_FEDERATED_TOKEN_FILE {}: {e}",
                    self.file.display()
                ),
            )
        })?;
        let assertion = Secret::new(assertion.trim().to_owned());
        request_token(
            &self.http,
            &self.authority,
            &self.tenant,
            &who,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.expose()),
                ("scope", scope),
            ],
        )
        .await
    }

    fn tenant_id(&self) -> Option<String> {
        Some(self.tenant.clone())
    }

    fn describe(&self) -> String {
        format!(
            "service principal {} (federated token file)",
            self.client_id
        )
    }
}

fn with_slash(mut u: Url) -> Url {
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u
}
