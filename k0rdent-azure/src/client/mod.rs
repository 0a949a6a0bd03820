//! [`ArmClient`]: authenticated ARM REST requests with retries, paging and operation polling.
//!
//! Every request carries a fresh `x-ms-client-request-id` and the client's one
//! `x-ms-correlation-request-id` (one per run), so a run can be found in the Activity Log.
//! Request bodies and headers are never logged; a debug line per request records the method,
//! path, status, attempt and request ids.

mod error;
mod lro;
mod ops;
mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderValue};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use url::Url;

pub use error::{ArmError, ArmErrorCode, ComeBackLater, nic_reservation_wait};
pub use lro::{Accepted, PollKind, PollStatus, PollTarget};
pub use retry::{RetryConfig, retry_after, retryable};

use crate::credential::{CachedCredential, TokenCredential};
use crate::endpoint;
use crate::model::{ErrorDetail, ErrorResponse, Page};
use crate::spec::DEFAULT_WRITE_CONCURRENCY;
use crate::transport;

/// The public cloud's ARM endpoint.
pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";

/// A random GUID-shaped id (for request ids).
pub fn new_guid() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// Percent-encodes a query component (spaces as `%20`; `$`, `'`, `,` kept as ARM writes them).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$',:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why an [`ArmClient`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The endpoint may not receive credentials.
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    /// Not a subscription id (a GUID's characters).
    #[error("{0:?} is not a subscription id; set AZURE_SUBSCRIPTION_ID or azure.subscription_id")]
    Subscription(String),
    /// The HTTP client could not be set up (TLS backend).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Builds an [`ArmClient`]; [`ArmClient::builder`] starts one.
#[must_use]
pub struct ArmClientBuilder {
    endpoint: String,
    subscription: String,
    credential: Arc<dyn TokenCredential>,
    scope: Option<String>,
    retry: RetryConfig,
    write_concurrency: usize,
    correlation_id: Option<String>,
    timeout: Duration,
}

impl ArmClientBuilder {
    /// Retry bounds for 429/5xx and transport failures.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// At most this many writes in flight at once (default 10).
    pub fn write_concurrency(mut self, n: usize) -> Self {
        self.write_concurrency = n.max(1);
        self
    }

    /// The token scope (default `<endpoint>/.default`).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The correlation id sent with every request (default: a new one).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Per-request timeout (default 60 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`BuildError`]: an endpoint that is not a URL or is plain http to a non-loopback host,
    /// a malformed subscription id, or an HTTP client that cannot be set up.
    pub fn build(self) -> Result<ArmClient, BuildError> {
        let endpoint = endpoint::check_endpoint(&self.endpoint)?;
        if self.subscription.trim().is_empty()
            || !self
                .subscription
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(BuildError::Subscription(self.subscription));
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("k0rdent-deploy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError::Http)?;
        let origin = endpoint.origin().ascii_serialization();
        Ok(ArmClient {
            inner: Arc::new(Inner {
                scope: self.scope.unwrap_or_else(|| format!("{origin}/.default")),
                endpoint,
                subscription: self.subscription,
                credential: CachedCredential::new(self.credential),
                correlation_id: self.correlation_id.unwrap_or_else(new_guid),
                retry: self.retry,
                writes: Semaphore::new(self.write_concurrency),
                http,
            }),
        })
    }
}

struct Inner {
    endpoint: Url,
    subscription: String,
    scope: String,
    credential: CachedCredential,
    correlation_id: String,
    retry: RetryConfig,
    writes: Semaphore,
    http: reqwest::Client,
}

/// An authenticated ARM client for one subscription. Cheap to clone.
#[derive(Clone)]
pub struct ArmClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("subscription", &self.inner.subscription)
            .field("credential", &self.inner.credential.inner().describe())
            .finish()
    }
}

pub(crate) fn path_of(url: &Url) -> String {
    url.path().to_owned()
}

impl ArmClient {
    /// Starts a client for `subscription` at `endpoint` (e.g. [`DEFAULT_ARM_ENDPOINT`]).
    pub fn builder(
        endpoint: &str,
        subscription: &str,
        credential: Arc<dyn TokenCredential>,
    ) -> ArmClientBuilder {
        ArmClientBuilder {
            endpoint: endpoint.to_owned(),
            subscription: subscription.to_owned(),
            credential,
            scope: None,
            retry: RetryConfig::default(),
            write_concurrency: DEFAULT_WRITE_CONCURRENCY,
            correlation_id: None,
            timeout: Duration::from_secs(60),
        }
    }

    #[allow(missing_docs)]
    pub fn subscription_id(&self) -> &str {
        &self.inner.subscription
    }

    /// The ARM endpoint, normalized (no trailing slash).
    pub fn endpoint(&self) -> String {
        self.inner
            .endpoint
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The correlation id of this client's requests.
    pub fn correlation_id(&self) -> &str {
        &self.inner.correlation_id
    }

    /// The tenant of the credential, when known.
    pub fn tenant_id(&self) -> Option<String> {
        self.inner.credential.inner().tenant_id()
    }

    /// The URL of `path` with `api-version` and extra query parameters.
    pub fn url(&self, path: &str, api_version: &str, query: &[(&str, &str)]) -> Url {
        let mut url = self.inner.endpoint.clone();
        url.set_path(path);
        let mut q = format!("api-version={}", encode_query(api_version));
        for (k, v) in query {
            q.push('&');
            q.push_str(&encode_query(k));
            q.push('=');
            q.push_str(&encode_query(v));
        }
        url.set_query(Some(&q));
        url
    }

    /// Checks that a URL from a response (nextLink, operation URL) is on our endpoint, so the
    /// bearer token never goes elsewhere.
    pub(crate) fn own_url(&self, s: &str) -> Result<Url, ArmError> {
        let url = Url::parse(s).map_err(|_| ArmError::ForeignUrl { url: s.to_owned() })?;
        if endpoint::same_origin(&url, &self.inner.endpoint) {
            Ok(url)
        } else {
            Err(ArmError::ForeignUrl {
                url: url.origin().ascii_serialization(),
            })
        }
    }

    async fn auth_header(&self) -> Result<(HeaderValue, crate::credential::AccessToken), ArmError> {
        let token = self.inner.credential.token(&self.inner.scope).await?;
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", token.token.expose())).map_err(|_| {
                ArmError::Credential(crate::credential::CredentialError::new(
                    self.inner.credential.inner().describe(),
                    "the token is not a valid header value",
                ))
            })?;
        v.set_sensitive(true);
        Ok((v, token))
    }

    /// Sends one request with retries; returns the first non-error response.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ArmError> {
        let write = method != Method::GET;
        let _permit = if write {
            self.inner.writes.acquire().await.ok()
        } else {
            None
        };
        let cfg = self.inner.retry;
        let started = Instant::now();
        let path = path_of(&url);
        let m = method.as_str().to_owned();
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut unreachable = 0u32;
        loop {
            attempt += 1;
            let (auth, token) = self.auth_header().await?;
            let request_id = new_guid();
            let mut rb = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, auth)
                .header("x-ms-client-request-id", &request_id)
                .header("x-ms-correlation-request-id", &self.inner.correlation_id)
                .header("accept", "application/json");
            match body {
                Some(b) => rb = rb.json(b),
                // A request without a body still states its length: Azure's front end
                // answers 411 Length Required to a bodiless POST without one.
                None if method != Method::GET && method != Method::HEAD => {
                    rb = rb.header(CONTENT_LENGTH, "0");
                }
                None => {}
            }
            let t0 = Instant::now();
            let outcome = rb.send().await;
            let err = match outcome {
                Err(e) => {
                    if let Some(cause) = transport::classify(&e) {
                        // Nothing reached ARM. A refused connection or a failed lookup gets
                        // a couple of quick retries, a TLS failure none: retrying like a
                        // transient failure would only hide the problem for a minute.
                        unreachable += 1;
                        tracing::debug!(method = %m, path = %path, attempt, client_request_id = %request_id,
                            cause = %cause, "ARM endpoint unreachable");
                        if unreachable > cause.retries() {
                            return Err(ArmError::Unreachable(transport::Unreachable {
                                what: "the ARM endpoint".into(),
                                endpoint: transport::origin(&url),
                                cause,
                            }));
                        }
                        attempt -= 1;
                        tokio::time::sleep(transport::quick_delay(unreachable)).await;
                        continue;
                    }
                    // A failed connect never reached ARM; anything later may have.
                    let maybe_sent = !e.is_connect();
                    let detail = transport::describe(&e);
                    tracing::debug!(method = %m, path = %path, attempt, client_request_id = %request_id,
                        error = %detail, "ARM request failed in transport");
                    let err = ArmError::Transport {
                        method: m.clone(),
                        path: path.clone(),
                        maybe_sent,
                        detail,
                    };
                    if write && maybe_sent {
                        // The outcome of the write is unknown: the caller must read first.
                        return Err(err);
                    }
                    err
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let arm_request_id = resp
                        .headers()
                        .get("x-ms-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    tracing::debug!(method = %m, path = %path, status, attempt,
                        client_request_id = %request_id, request_id = %arm_request_id,
                        ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "ARM request");
                    if status < 400 {
                        return Ok(resp);
                    }
                    let ra = retry_after(resp.headers());
                    let bytes = resp.bytes().await.unwrap_or_default();
                    let err = api_error(&m, &path, status, &bytes, ra);
                    if status == 401
                        && !refreshed
                        && matches!(
                            err.code(),
                            Some(
                                ArmErrorCode::ExpiredAuthenticationToken
                                    | ArmErrorCode::InvalidAuthenticationToken
                            )
                        )
                    {
                        tracing::debug!("ARM rejected the token; fetching a new one");
                        self.inner.credential.invalidate(&token).await;
                        refreshed = true;
                        attempt -= 1;
                        continue;
                    }
                    if !retryable(status, write) {
                        return Err(err);
                    }
                    err
                }
            };
            if err.retry_after().is_some_and(|h| h > cfg.max_delay) {
                // ARM asks for a longer pause than a request should sleep through: the
                // caller (a step, bounded by its time limit) does the waiting.
                return Err(err);
            }
            let delay = cfg.delay(attempt, err.retry_after());
            if attempt >= cfg.max_attempts || started.elapsed() + delay > cfg.max_elapsed {
                return Err(if attempt > 1 {
                    ArmError::Exhausted {
                        method: m,
                        path,
                        attempts: attempt,
                        elapsed: started.elapsed(),
                        last: Box::new(err),
                    }
                } else {
                    err
                });
            }
            tracing::debug!(method = %m, path = %path, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(0),
                error = %err, "retrying ARM request");
            tokio::time::sleep(delay).await;
        }
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        method: &str,
        path: &str,
        resp: reqwest::Response,
    ) -> Result<T, ArmError> {
        let bytes = resp.bytes().await.map_err(|e| ArmError::Transport {
            method: method.to_owned(),
            path: path.to_owned(),
            maybe_sent: true,
            detail: format!("reading the response: {}", e.without_url()),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ArmError::Decode {
            method: method.to_owned(),
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// GET a resource or collection.
    ///
    /// # Errors
    /// Any failure, including not-found (see [`ArmClient::get_opt`]).
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ArmError> {
        let url = self.url(path, api_version, query);
        let resp = self.send(Method::GET, url, None).await?;
        Self::json("GET", path, resp).await
    }

    /// GET a resource, with the time the response's `Date` header states (ARM's clock), when
    /// it has one that parses. A clock far from ARM's makes tokens look expired or not yet
    /// valid; comparing the two tells the user why.
    ///
    /// # Errors
    /// As [`ArmClient::get`].
    pub async fn get_dated<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<(T, Option<chrono::DateTime<chrono::Utc>>), ArmError> {
        let url = self.url(path, api_version, &[]);
        let resp = self.send(Method::GET, url, None).await?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|d| d.with_timezone(&chrono::Utc));
        Ok((Self::json("GET", path, resp).await?, date))
    }

    /// GET that maps a definite not-found (`ResourceNotFound`/`ResourceGroupNotFound`) to
    /// `None`; every other error stays an error.
    ///
    /// # Errors
    /// Any failure other than not-found.
    pub async fn get_opt<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, ArmError> {
        match self.get(path, api_version, query).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET every page of a list, following `nextLink`.
    ///
    /// # Errors
    /// Any failure on any page.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ArmError> {
        let mut url = self.url(path, api_version, query);
        let mut out = Vec::new();
        let mut pages = 0u32;
        loop {
            let resp = self.send(Method::GET, url.clone(), None).await?;
            let page: Page<T> = Self::json("GET", path, resp).await?;
            out.extend(page.value);
            pages += 1;
            match page.next_link.filter(|l| !l.is_empty()) {
                Some(next) if pages < 10_000 => url = self.own_url(&next)?,
                _ => return Ok(out),
            }
        }
    }
}

pub(crate) fn error_text(e: &ErrorDetail) -> String {
    let mut s = e.message.clone();
    if let Some(d) = e.details.first()
        && !d.message.is_empty()
        && d.message != e.message
    {
        s.push_str(&format!(" ({}: {})", d.code, d.message));
    }
    s
}

/// Turns an error response into [`ArmError::Api`], keeping `code` and `message`.
pub fn api_error(
    method: &str,
    path: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ArmError {
    let detail = serde_json::from_slice::<ErrorResponse>(body)
        .map(ErrorResponse::into_detail)
        .ok()
        .filter(|d| !d.code.is_empty());
    let (code, message) = match detail {
        Some(d) => (ArmErrorCode::parse(&d.code), error_text(&d)),
        None => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(200).collect();
            (
                ArmErrorCode::Other(format!("Http{status}")),
                if text.trim().is_empty() {
                    "no error body".to_owned()
                } else {
                    text
                },
            )
        }
    };
    ArmError::Api {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
        code,
        message,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_guid_shaped() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(
            g.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert_ne!(new_guid(), new_guid());
    }

    #[test]
    fn queries_are_encoded_as_arm_expects() {
        assert_eq!(
            encode_query("location eq 'westeurope'"),
            "location%20eq%20'westeurope'"
        );
        assert_eq!(encode_query("$expand"), "$expand");
        assert_eq!(encode_query("a&b=c"), "a%26b%3Dc");
    }

    #[test]
    fn error_bodies_keep_code_and_message_wrapped_or_bare() {
        let e = api_error(
            "PUT",
            "/x",
            409,
            br#"{"error":{"code":"PropertyChangeNotAllowed","message":"Changing property 'customData' is not allowed.","target":"customData"}}"#,
            None,
        );
        assert_eq!(e.code(), Some(&ArmErrorCode::PropertyChangeNotAllowed));
        assert!(e.to_string().contains("customData"), "{e}");
        let e = api_error(
            "GET",
            "/x",
            404,
            br#"{"code":"ResourceNotFound","message":"gone"}"#,
            None,
        );
        assert!(e.is_not_found());
        let e = api_error("GET", "/x", 502, b"<html>bad gateway</html>", None);
        assert_eq!(e.code(), Some(&ArmErrorCode::Other("Http502".into())));
    }
}
