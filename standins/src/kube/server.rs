//! HTTPS listeners: each `serve` binds one address with its own server certificate (that
//! address as SAN) over the shared store, and a [`Listener`] handle stops it (and drops its
//! open connections), as a cut tunnel would.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::pki::Identity;
use super::router::{Req, percent_decode, route};
use super::{FakeKube, KubeError, RequestRecord, Shared};

/// One serving address. Dropping it (or [`Listener::stop`]) closes the socket and every
/// connection accepted on it; the data stays in the [`FakeKube`].
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listener {
    /// The bound address (with the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://<addr>`, the `server:` of a kubeconfig for this listener.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops accepting, drops open connections and waits until the port is released.
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKube {
    /// Serves the API on `addr` (port 0 picks a free port) until the returned [`Listener`]
    /// is stopped or dropped. Must be called inside a Tokio runtime; several listeners may
    /// serve the same data at once.
    pub async fn serve(&self, addr: SocketAddr) -> Result<Listener, KubeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| KubeError::Bind { addr, source })?;
        self.serve_bound(listener, addr)
    }

    /// Serves the API on a socket bound elsewhere — e.g. inside a lab VM's network namespace
    /// (a socket stays in the namespace it was created in), so the API answers only through
    /// that VM's addresses, as a controller's does.
    pub fn serve_std(&self, listener: std::net::TcpListener) -> Result<Listener, KubeError> {
        let addr = listener.local_addr().map_err(|source| KubeError::Bind {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            source,
        })?;
        listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map_err(|source| KubeError::Bind { addr, source })
            .and_then(|l| self.serve_bound(l, addr))
    }

    fn serve_bound(&self, listener: TcpListener, addr: SocketAddr) -> Result<Listener, KubeError> {
        let local = listener
            .local_addr()
            .map_err(|source| KubeError::Bind { addr, source })?;
        let mut ips = self.shared.extra_sans.clone();
        if local.ip().is_unspecified() {
            ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        } else {
            ips.push(local.ip());
        }
        let dns = [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
        ]
        .map(String::from);
        let acceptor = TlsAcceptor::from(self.shared.pki.server_config(&ips, &dns)?);
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((tcp, _)) = accepted {
                            connections.spawn(connection(shared.clone(), acceptor.clone(), tcp, local));
                        }
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Listener { addr: local, task })
    }
}

async fn connection(shared: Arc<Shared>, acceptor: TlsAcceptor, tcp: TcpStream, local: SocketAddr) {
    // A handshake without a certificate from our CA fails here: the client sees the TLS alert.
    let Ok(tls) = acceptor.accept(tcp).await else {
        return;
    };
    let identity = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|cert| shared.pki.identity_of(cert))
        .unwrap_or_else(|| Identity {
            user: "system:anonymous".into(),
            groups: Vec::new(),
        });
    let service = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let identity = identity.clone();
        async move { Ok::<_, Infallible>(handle(&shared, &identity, req, local).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

async fn handle(
    shared: &Shared,
    identity: &Identity,
    req: Request<Incoming>,
    local: SocketAddr,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (accept, content_type, user_agent) = (
        header("accept"),
        header("content-type"),
        header("user-agent"),
    );
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let query = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let request = Req {
        method: method.clone(),
        path: path.clone(),
        query,
        accept,
        content_type,
        body,
        server_address: local.to_string(),
    };
    let reply = route(shared, identity, &request);
    shared.record(RequestRecord {
        method,
        path,
        query: raw_query,
        user: identity.user.clone(),
        user_agent,
        code: reply.code,
        listener: local,
    });
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(reply.code).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = hyper::header::HeaderValue::from_str(&reply.content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
