//! A minimal Kubernetes API client over HTTPS with a client certificate: one connection per
//! request, JSON in and out, `Status` bodies turned into errors carrying code and reason.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::HelmError;
use super::kubeconfig::Target;

/// A connection recipe for one API server.
pub struct Api {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
}

/// An error the API answered with (a `Status` object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStatus {
    /// HTTP code.
    pub code: u16,
    /// `reason` (`NotFound`, `AlreadyExists`, …).
    pub reason: String,
    /// `message`.
    pub message: String,
}

fn tls_error(e: impl std::fmt::Display) -> HelmError {
    HelmError::Kubeconfig(format!("TLS configuration: {e}"))
}

impl Api {
    /// Prepares TLS for `target`'s server with its CA and client identity.
    pub fn new(target: &Target) -> Result<Self, HelmError> {
        let rest = target.server.strip_prefix("https://").ok_or_else(|| {
            HelmError::Kubeconfig(format!("server {} is not https", target.server))
        })?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse()
                    .map_err(|_| HelmError::Kubeconfig(format!("bad port in {}", target.server)))?,
            ),
            _ => (authority.trim_matches(['[', ']']).to_string(), 443),
        };
        let server_name = ServerName::try_from(host.clone()).map_err(tls_error)?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&target.ca_pem) {
            roots.add(cert.map_err(tls_error)?).map_err(tls_error)?;
        }
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&target.cert_pem)
            .collect::<Result<_, _>>()
            .map_err(tls_error)?;
        let key = PrivateKeyDer::from_pem_slice(&target.key_pem).map_err(tls_error)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(tls_error)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Api {
            host,
            port,
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> HelmError {
        HelmError::Unreachable(format!(
            "Get \"https://{}:{}/version\": {e}",
            self.host, self.port
        ))
    }

    /// Sends one request; a 2xx answer is the decoded body, anything else an [`ApiStatus`].
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Result<Value, ApiStatus>, HelmError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unreachable(e))?;
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| self.unreachable(e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(conn);
        let payload = match body {
            Some(v) => Bytes::from(
                serde_json::to_vec(v).map_err(|e| HelmError::Unreachable(e.to_string()))?,
            ),
            None => Bytes::new(),
        };
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}:{}", self.host, self.port))
            .header("accept", "application/json")
            .header("content-type", content_type)
            .header("user-agent", "Helm/3.19.5 (k0rdent stand-in)")
            .body(Full::new(payload))
            .map_err(|e| HelmError::Unreachable(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e))?;
        let code = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.unreachable(e))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&code) {
            return Ok(Ok(value));
        }
        Ok(Err(ApiStatus {
            code,
            reason: value["reason"].as_str().unwrap_or("").to_string(),
            message: value["message"].as_str().map_or_else(
                || String::from_utf8_lossy(&bytes).into_owned(),
                str::to_string,
            ),
        }))
    }
}
