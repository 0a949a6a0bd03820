//! One authorized Blob REST request at a time: URL, `x-ms-version`, signing, and errors that
//! say which operation failed and what the service answered.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use super::auth::{BlobAuth, STORAGE_SCOPE, shared_key_signature};
use crate::transport::{self, SendFailure};

/// The Blob service version every request asks for.
pub const X_MS_VERSION: &str = "2023-11-03";

/// Retries of a read after a transient failure (a 5xx, a throttle, a dropped connection).
const READ_RETRIES: u32 = 2;

/// A blob request that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The endpoint could not be reached (nothing listens, DNS, TLS).
    #[error("{op}: {0}", op = .1)]
    Unreachable(transport::Unreachable, String),
    /// The request failed on the way (timeout, reset connection).
    #[error("{op}: {detail}")]
    Transport {
        /// What was being done (`save the state blob`).
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
    #[error("{op}: HTTP {status} {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Status {
        #[allow(missing_docs)]
        op: String,
        #[allow(missing_docs)]
        status: u16,
        /// `x-ms-error-code` (`LeaseAlreadyPresent`, `ConditionNotMet`, ...).
        code: String,
        /// The first line of the service's message.
        message: Option<String>,
        /// The request was authorized with a bearer token.
        bearer: bool,
    },
}

impl BlobError {
    /// The HTTP status, for a status error.
    pub fn status(&self) -> Option<u16> {
        match self {
            BlobError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The service's error code, for a status error.
    pub fn code(&self) -> &str {
        match self {
            BlobError::Status { code, .. } => code,
            _ => "",
        }
    }

    /// Whether retrying later may help (the endpoint or the network, a 5xx, a throttle).
    pub fn is_transient(&self) -> bool {
        match self {
            BlobError::Unreachable(..) | BlobError::Transport { .. } => true,
            BlobError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            BlobError::Credential { .. } => false,
        }
    }

    /// What to do about it.
    pub fn remedy(&self) -> Option<String> {
        match self {
            BlobError::Status {
                status: 403,
                bearer: true,
                code,
                ..
            } if code != "AuthenticationFailed" => Some(
                "give the signed-in identity the \"Storage Blob Data Contributor\" role on the \
                 storage account (`az role assignment create --role \"Storage Blob Data \
                 Contributor\" --assignee <id> --scope <account id>`; Owner or Contributor alone \
                 gives no access to blob data), or set AZURE_STORAGE_KEY"
                    .into(),
            ),
            BlobError::Status { status: 403, .. } => Some(
                "check AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING: the account key \
                 was refused"
                    .into(),
            ),
            BlobError::Unreachable(..) | BlobError::Transport { .. } => Some(
                "check the network and the storage endpoint, then run again; the state is \
                 resumed from its last save"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// A response: status, headers and body.
pub(crate) struct Reply {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A request to send.
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    /// The blob name, or `None` for the container itself.
    pub(crate) blob: Option<&'a str>,
    pub(crate) query: &'a [(&'a str, &'a str)],
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// What is being done, for errors (`save the state blob`).
    pub(crate) op: &'a str,
}

impl<'a> Request<'a> {
    pub(crate) fn new(method: Method, blob: Option<&'a str>, op: &'a str) -> Self {
        Request {
            method,
            blob,
            query: &[],
            headers: Vec::new(),
            body: Vec::new(),
            op,
        }
    }

    pub(crate) fn query(mut self, q: &'a [(&'a str, &'a str)]) -> Self {
        self.query = q;
        self
    }

    pub(crate) fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }

    pub(crate) fn body(mut self, b: Vec<u8>) -> Self {
        self.body = b;
        self
    }
}

/// The container's client.
#[derive(Clone)]
pub(crate) struct BlobHttp {
    pub(crate) http: reqwest::Client,
    /// The account's blob endpoint (path kept, no trailing slash).
    pub(crate) endpoint: Url,
    pub(crate) container: String,
    pub(crate) auth: BlobAuth,
    pub(crate) timeout: Duration,
}

/// Percent-encodes a blob name, keeping `/` between segments.
fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn xml_message(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Message>")? + "<Message>".len();
    let end = text[start..].find("</Message>")? + start;
    text[start..end].lines().next().map(str::to_owned)
}

impl BlobHttp {
    pub(crate) fn url(&self, blob: Option<&str>, query: &[(&str, &str)]) -> Url {
        let mut url = self.endpoint.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        let path = match blob {
            Some(b) => format!("{base}/{}/{}", self.container, encode_name(b)),
            None => format!("{base}/{}", self.container),
        };
        url.set_path(&path);
        if query.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(query);
        }
        url
    }

    /// Sends `req`, within `timeout` (the client's default when `None`). Any status of 400
    /// or above is an error.
    ///
    /// Without a `timeout` (the caller has no deadline of its own), a request that never
    /// reached the service (connection refused, a name that did not resolve) is retried
    /// quickly as the ARM client does, whatever its method; a read (`GET`, `HEAD`) is also
    /// retried after a dropped connection, a 5xx, a 408 or a 429. A write that may have
    /// reached the service is not resent: its conditions (`If-Match`, the lease) would turn
    /// a success into a conflict.
    pub(crate) async fn send(
        &self,
        req: Request<'_>,
        timeout: Option<Duration>,
    ) -> Result<Reply, BlobError> {
        let read = req.method == Method::GET || req.method == Method::HEAD;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let e = match self.send_once(&req, timeout).await {
                Ok(r) => return Ok(r),
                Err(e) => e,
            };
            let retries = match &e {
                _ if timeout.is_some() => 0,
                BlobError::Unreachable(u, _) => u.cause.retries(),
                e if read && e.is_transient() => READ_RETRIES,
                _ => 0,
            };
            if attempt > retries {
                return Err(e);
            }
            tracing::debug!(error = %e, attempt, "blob request failed; retrying");
            tokio::time::sleep(transport::quick_delay(attempt)).await;
        }
    }

    async fn send_once(
        &self,
        req: &Request<'_>,
        timeout: Option<Duration>,
    ) -> Result<Reply, BlobError> {
        let url = self.url(req.blob, req.query);
        let mut headers = req.headers.clone();
        headers.push((
            "x-ms-date".into(),
            chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        ));
        headers.push(("x-ms-version".into(), X_MS_VERSION.into()));
        if req.method == Method::PUT || req.method == Method::DELETE {
            headers.push(("content-length".into(), req.body.len().to_string()));
        }
        let op = req.op.to_owned();
        let (auth, bearer) = match &self.auth {
            BlobAuth::SharedKey { account, key } => {
                let sig = shared_key_signature(
                    key.expose(),
                    account,
                    req.method.as_str(),
                    &url,
                    &headers,
                );
                (format!("SharedKey {account}:{sig}"), false)
            }
            BlobAuth::Bearer(c) => {
                let t = c
                    .token(STORAGE_SCOPE)
                    .await
                    .map_err(|e| BlobError::Credential {
                        op: op.clone(),
                        detail: e.to_string(),
                    })?;
                (format!("Bearer {}", t.token.expose()), true)
            }
        };
        let mut auth = HeaderValue::from_str(&auth).map_err(|_| BlobError::Credential {
            op: op.clone(),
            detail: "the credential is not a valid header value".into(),
        })?;
        auth.set_sensitive(true);
        let mut rb = self
            .http
            .request(req.method.clone(), url.clone())
            .header(AUTHORIZATION, auth)
            .timeout(timeout.unwrap_or(self.timeout));
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if !req.body.is_empty() {
            rb = rb.body(req.body.clone());
        }
        let resp = rb.send().await.map_err(|e| {
            match transport::send_failure(&e, "the blob endpoint", &url) {
                SendFailure::Unreachable(u) => BlobError::Unreachable(u, op.clone()),
                SendFailure::Broken(detail) => BlobError::Transport {
                    op: op.clone(),
                    detail,
                },
            }
        })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| BlobError::Transport {
                op: op.clone(),
                detail: transport::describe(&e),
            })?
            .to_vec();
        tracing::debug!(method = %req.method, path = %url.path(), status, "blob request");
        if status >= 400 {
            let code = headers
                .get("x-ms-error-code")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return Err(BlobError::Status {
                op,
                status,
                code,
                message: xml_message(&body),
                bearer,
            });
        }
        Ok(Reply { headers, body })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_bearer_refused_for_the_data_plane_names_the_role() {
        let e = BlobError::Status {
            op: "read the state blob".into(),
            status: 403,
            code: "AuthorizationPermissionMismatch".into(),
            message: Some(
                "This request is not authorized to perform this operation using this permission."
                    .into(),
            ),
            bearer: true,
        };
        assert!(
            e.remedy()
                .unwrap()
                .contains("Storage Blob Data Contributor")
        );
        assert!(
            e.to_string().contains("AuthorizationPermissionMismatch"),
            "{e}"
        );
    }

    /// A server on loopback that answers each request with the next status of `statuses`
    /// and counts the requests it got.
    fn server(statuses: &'static [u16]) -> (u16, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            for (conn, status) in l.incoming().zip(statuses.iter().cycle()) {
                let mut c = conn.unwrap();
                let mut buf = [0u8; 8192];
                let _ = c.read(&mut buf);
                s2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = write!(
                    c,
                    "HTTP/1.1 {status} X\r\nx-ms-error-code: ServerBusy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (port, seen)
    }

    fn client(port: u16) -> BlobHttp {
        BlobHttp {
            http: reqwest::Client::new(),
            endpoint: Url::parse(&format!("http://127.0.0.1:{port}/acct")).unwrap(),
            container: "c".into(),
            auth: BlobAuth::SharedKey {
                account: "acct".into(),
                key: k0rdent_core::secret::Secret::new(b"k".to_vec()),
            },
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_read_is_retried_after_a_503_and_a_write_is_not() {
        let (port, seen) = server(&[503, 200]);
        let c = client(port);
        c.send(Request::new(Method::GET, Some("b"), "read"), None)
            .await
            .unwrap();
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);

        let (port, seen) = server(&[503, 201]);
        let e = client(port)
            .send(
                Request::new(Method::PUT, Some("b"), "save").body(b"x".to_vec()),
                None,
            )
            .await
            .err()
            .unwrap();
        assert_eq!(e.status(), Some(503), "{e}");
        assert_eq!(
            seen.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a write that reached the service is not resent"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_quickly_then_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = std::time::Instant::now();
        let e = client(port)
            .send(
                Request::new(Method::PUT, Some("b"), "save the state blob").body(b"x".to_vec()),
                None,
            )
            .await
            .err()
            .unwrap();
        assert!(matches!(e, BlobError::Unreachable(..)), "{e}");
        assert!(e.to_string().contains("connection refused"), "{e}");
        // Two quick retries (250 ms, 500 ms), then the error.
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(700), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[test]
    fn names_are_encoded_by_segment() {
        assert_eq!(encode_name("a b/c%d.yaml"), "a%20b/c%25d.yaml");
        assert_eq!(
            xml_message(
                b"<?xml?><Error><Code>X</Code><Message>first\nRequestId:1</Message></Error>"
            ),
            Some("first".into())
        );
    }
}
