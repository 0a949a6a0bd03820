//! Service principal tokens from the Microsoft identity platform (OAuth2 client credentials).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k0rdent_core::secret::Secret;
use serde::Deserialize;
use url::Url;

use super::{AccessToken, CredentialError, TokenCredential};
use crate::transport;

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

/// What to fix when the token endpoint refuses a request, by the OAuth 2.0 `error` code
/// (RFC 6749 §5.2; Entra's AADSTS numbers are documented as subject to change). `proof` is the
/// variable holding the secret or the assertion.
fn refused_remedy(error: &str, proof: &str, tenant: &str, client_id: &str) -> String {
    match error {
        // Client authentication failed: the secret or assertion is wrong or expired.
        "invalid_client" | "invalid_grant" => format!(
            "{proof} was not accepted for application {client_id} (AZURE_CLIENT_ID): \
             set it to a current credential of that application"
        ),
        // Entra: the application is not in this tenant.
        "unauthorized_client" => format!(
            "AZURE_CLIENT_ID {client_id} is not an application in tenant {tenant}: \
             check AZURE_CLIENT_ID and AZURE_TENANT_ID"
        ),
        // Entra: e.g. the tenant does not exist.
        "invalid_request" => format!("check AZURE_TENANT_ID ({tenant}) and AZURE_AUTHORITY_HOST"),
        _ => format!("check AZURE_TENANT_ID, AZURE_CLIENT_ID and {proof}"),
    }
}

/// Posts a client-credentials request. `form` holds the secret or assertion (from the
/// variable `proof`); it is never logged, and errors carry only the identity platform's error
/// code and description, with a remedy naming the variable to fix.
async fn request_token(
    http: &reqwest::Client,
    authority: &Url,
    (tenant, client_id, proof): (&str, &str, &str),
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
        let parsed = serde_json::from_slice::<TokenError>(&bytes).ok();
        let detail = parsed
            .as_ref()
            .map(|e| format!("{}: {}", e.error, first_line(&e.error_description)))
            .unwrap_or_else(|| format!("HTTP {status}"));
        let code = parsed.as_ref().map_or("", |e| e.error.as_str());
        return Err(
            CredentialError::new(who, format!("token request refused: {detail}"))
                .with_remedy(refused_remedy(code, proof, tenant, client_id)),
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
            (&self.tenant, &self.client_id, "AZURE_CLIENT_SECRET"),
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
            (&self.tenant, &self.client_id, "AZURE_FEDERATED_TOKEN_FILE"),
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

#[cfg(test)]
mod tests {
    use super::refused_remedy;

    #[test]
    fn a_refusal_names_the_variable_to_fix() {
        let r = |code| refused_remedy(code, "AZURE_CLIENT_SECRET", "t-1", "c-1");
        assert!(r("invalid_client").starts_with("AZURE_CLIENT_SECRET was not accepted"));
        assert!(r("unauthorized_client").starts_with("AZURE_CLIENT_ID c-1"));
        assert!(r("invalid_request").contains("AZURE_TENANT_ID (t-1)"));
        assert!(
            refused_remedy("invalid_client", "AZURE_FEDERATED_TOKEN_FILE", "t", "c")
                .starts_with("AZURE_FEDERATED_TOKEN_FILE")
        );
        assert!(r("server_error").contains("AZURE_CLIENT_SECRET"));
    }
}
