//! A fake Kubernetes API server, written from the API conventions, that the real `kubectl`
//! accepts with an unmodified kubeconfig.
//!
//! One [`FakeKube`] holds the data (nodes, namespaces, secrets, k0rdent's `Management` and
//! `Release`) and the cluster CA; [`FakeKube::serve`] puts it on an address over HTTPS with
//! client-certificate authentication, as many times as there are controllers, and the
//! returned [`Listener`] stops that one address (a cut tunnel) while the others keep
//! serving the same data. Tests and the lab read and change the data directly through the
//! same handle ([`FakeKube::create`], [`FakeKube::set_node_ready`], …); the optional
//! [`KcmSimulation`] plays kcm's controller and Flux after a Helm install.
//!
//! What the server does, as the real one does: TLS that refuses clients without a
//! certificate from its CA, `/version`, health probes, legacy and aggregated discovery,
//! `Table` responses for `kubectl get`, `Status` objects for errors (404 with
//! `details.name/kind`, 409 `AlreadyExists` and `Conflict`, 400, 403 for identities outside
//! `system:masters`), `resourceVersion`, `uid`, `creationTimestamp` and, for the custom
//! resources, `generation` bumped on spec changes. What it does not: watches, protobuf,
//! OpenAPI, admission beyond namespace existence, RBAC beyond `system:masters`.

mod discovery;
mod kcm;
mod nodes;
mod patch;
mod pki;
mod resources;
mod router;
mod selector;
mod server;
mod status;
mod store;
mod table;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::watch;

pub use kcm::{KcmSimulation, KcmSimulationHandle, release_object_name};
pub use nodes::NodeSpec;
pub use patch::PatchType;
pub use pki::{ClientCredentials, Identity};
pub use resources::{K0RDENT_GROUP, K0RDENT_VERSION, Resource, ResourceDef};
pub use server::Listener;
pub use status::ApiError;
pub use store::Part;

use selector::LabelSelector;
use store::Store;

/// Why the fake server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// Generating a certificate or key failed.
    #[error("generating a certificate for the fake API server")]
    Certificate(#[from] rcgen::Error),
    /// Building the TLS configuration failed.
    #[error("building the fake API server's TLS configuration")]
    Tls(#[from] rustls::Error),
    /// Building the client-certificate verifier failed.
    #[error("building the fake API server's client-certificate verifier")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The address could not be bound.
    #[error("binding the fake API server to {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// One request the server answered, kept so tests can assert what a client did (for
/// example that a rerun made no mutating request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// The caller's user name (certificate CN).
    pub user: String,
    /// The `User-Agent` header (`kubectl/v1.32…`, `Helm/3…`).
    pub user_agent: String,
    /// The response's status code.
    pub code: u16,
    /// The listener that answered.
    pub listener: SocketAddr,
}

impl RequestRecord {
    /// Whether the request could change data (anything but GET/HEAD/OPTIONS).
    pub fn is_mutating(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS")
    }
}

/// State shared by the handle and every listener.
pub(crate) struct Shared {
    store: Mutex<Store>,
    pki: pki::Pki,
    changes: watch::Sender<u64>,
    requests: Mutex<Vec<RequestRecord>>,
    git_version: Mutex<String>,
    aggregated_discovery: std::sync::atomic::AtomicBool,
    extra_sans: Vec<IpAddr>,
}

impl Shared {
    pub(crate) fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut guard = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    pub(crate) fn notify_change(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    fn record(&self, record: RequestRecord) {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record);
    }

    pub(crate) fn aggregated_discovery(&self) -> bool {
        self.aggregated_discovery
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn version_info(&self) -> Value {
        let git_version = self
            .git_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let (major, minor) = {
            let mut parts = git_version.trim_start_matches('v').split('.');
            (
                parts.next().unwrap_or("1").to_string(),
                parts.next().unwrap_or("0").to_string(),
            )
        };
        json!({
            "major": major,
            "minor": minor,
            "gitVersion": git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-04-22T00:00:00Z",
            "goVersion": "go1.23.8",
            "compiler": "gc",
            "platform": "linux/amd64",
        })
    }
}

/// The fake cluster: data and CA, shared by all its listeners. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct FakeKube {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube").finish_non_exhaustive()
    }
}

impl FakeKube {
    /// A new empty cluster (only the `default`, `kube-system` and `kube-public` namespaces)
    /// with a fresh CA; server certificates name `127.0.0.1`, `localhost` and each listener's
    /// own address.
    pub fn new() -> Result<Self, KubeError> {
        Self::with_sans(Vec::new())
    }

    /// Like [`FakeKube::new`], with `extra_sans` added to every listener's certificate (all
    /// controllers' addresses, as k0s's certificate carries them, so a kubeconfig pointing at
    /// one controller can be retargeted at another).
    pub fn with_sans(extra_sans: Vec<IpAddr>) -> Result<Self, KubeError> {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            pki: pki::Pki::new()?,
            changes: watch::channel(0).0,
            requests: Mutex::new(Vec::new()),
            git_version: Mutex::new("v1.32.4+k0s".into()),
            aggregated_discovery: std::sync::atomic::AtomicBool::new(true),
            extra_sans,
        });
        let kube = FakeKube { shared };
        for ns in ["default", "kube-system", "kube-public"] {
            // Cannot fail on an empty store; ignoring keeps `new` infallible in that respect.
            let _ = kube.create(
                Resource::Namespaces,
                None,
                json!({"metadata": {"name": ns}}),
            );
        }
        Ok(kube)
    }

    /// Changes the `gitVersion` `/version` reports (k0s reports `v1.32.4+k0s`).
    pub fn set_server_version(&self, git_version: &str) {
        *self
            .shared
            .git_version
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = git_version.to_string();
    }

    /// Switches aggregated discovery off (or back on), to play an API server older than
    /// 1.26 that only has the legacy documents, so clients' fallback is exercised.
    pub fn set_aggregated_discovery(&self, enabled: bool) {
        self.shared
            .aggregated_discovery
            .store(enabled, std::sync::atomic::Ordering::SeqCst);
    }

    /// The cluster CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.shared.pki.ca_pem().to_string()
    }

    /// A kubeconfig for an admin (`O=system:masters`) with the CA and a fresh client
    /// certificate inline, its cluster, user and context named after `context`.
    pub fn admin_kubeconfig(&self, server_url: &str, context: &str) -> Result<String, KubeError> {
        self.kubeconfig_for(
            Identity {
                user: "admin".into(),
                groups: vec!["system:masters".into()],
            },
            server_url,
            context,
        )
    }

    /// A kubeconfig for any identity; one outside `system:masters` gets 403 on resources.
    pub fn kubeconfig_for(
        &self,
        identity: Identity,
        server_url: &str,
        context: &str,
    ) -> Result<String, KubeError> {
        let creds = self.shared.pki.issue_client(identity)?;
        Ok(pki::render_kubeconfig(
            server_url,
            context,
            self.shared.pki.ca_pem(),
            &creds,
        ))
    }

    /// A kubeconfig trusting this server's CA but holding a client certificate from another
    /// CA: the TLS handshake must fail with it.
    pub fn untrusted_kubeconfig(
        &self,
        server_url: &str,
        context: &str,
    ) -> Result<String, KubeError> {
        Ok(pki::render_kubeconfig(
            server_url,
            context,
            self.shared.pki.ca_pem(),
            &pki::foreign_credentials()?,
        ))
    }

    /// Creates an object as a POST would (409 if it exists, 404 if its namespace does not).
    pub fn create(
        &self,
        r: Resource,
        namespace: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        let out = self.shared.with_store(|s| s.create(r, namespace, object));
        self.changed_if(out)
    }

    /// The object, if it exists.
    pub fn get(&self, r: Resource, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.shared.with_store(|s| s.get(r, namespace, name)).ok()
    }

    /// Objects of `r` in `namespace` (all namespaces when `None`) matching a label selector
    /// in the API's syntax (`owner=helm,name=kcm`; empty for all).
    pub fn list(
        &self,
        r: Resource,
        namespace: Option<&str>,
        label_selector: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let selector = LabelSelector::parse(label_selector)?;
        Ok(self
            .shared
            .with_store(|s| s.list(r, namespace, &selector, None)))
    }

    /// Replaces an object (or its status) as a PUT would.
    pub fn update(
        &self,
        r: Resource,
        namespace: Option<&str>,
        name: &str,
        object: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let out = self
            .shared
            .with_store(|s| s.update(r, namespace, name, object, part));
        self.changed_if(out)
    }

    /// Applies a JSON merge patch to an object (or its status) as a PATCH would.
    pub fn merge_patch(
        &self,
        r: Resource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let out = self
            .shared
            .with_store(|s| s.patch(r, namespace, name, PatchType::Merge, &patch, part));
        self.changed_if(out)
    }

    /// Deletes an object as a DELETE would (only marks it when it has finalizers).
    pub fn delete(
        &self,
        r: Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let out = self.shared.with_store(|s| s.delete(r, namespace, name));
        self.changed_if(out)
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Forgets the recorded requests (to look at one phase's requests only).
    pub fn clear_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// A receiver that changes whenever any object is written, to wait for a client's effect
    /// without polling blindly.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    fn changed_if(&self, out: Result<Value, ApiError>) -> Result<Value, ApiError> {
        if out.is_ok() {
            self.shared.notify_change();
        }
        out
    }
}
