//! [`BlobStore`]: a deployment's state, run lock and event log in Azure Blob Storage
//! (`--state azblob://ACCOUNT/CONTAINER/PATH`), over the Blob REST API.
//!
//! - The state document is one block blob, `PATH/deployment-state.yaml`, in the same format
//!   as the file store's (ending with its end marker, so a torn upload is refused on load).
//!   A missing blob is first created as an empty placeholder (`If-None-Match: *`), which
//!   loads as "no state".
//! - The run lock is a lease on that blob ([`lease`]): finite, renewed every third of its
//!   length, with the holder's details as metadata. Every save is a Put Blob with the lease
//!   id and `If-Match` on the last ETag, so a writer whose lease was broken, or whose blob
//!   changed underneath, gets 412 and stops; nothing is overwritten blindly.
//! - Before a save replaces a version, that version is copied to `PATH/backups/` (the last
//!   N kept; Azurite has no blob versions).
//! - The event log is a series of append blobs, `PATH/deployment-events/NNNNNN.jsonl`;
//!   appends are batched and a blob is rolled over before Azure's 50,000-block limit.
//! - `load`, `lock_holder` and `history` never take the lease.
//!
//! Requests are authorized with Shared Key or a bearer token for the storage scope
//! ([`auth`]); keys and tokens never reach logs, errors or output.

pub mod auth;
mod events;
mod http;
pub mod lease;
mod location;
mod moves;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use k0rdent_core::cancel::Cancellation;
use k0rdent_core::state::{DeploymentState, ParseError, StatePointer, parse_state, render_next};
use k0rdent_core::store::{LockHolder, StateStore, StoreError, StoreLock};
use reqwest::Method;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use auth::{AuthError, BlobAccess, BlobAuth, STORAGE_SCOPE, shared_key_signature};
pub use http::{BlobError, X_MS_VERSION};
pub use location::{DEFAULT_LEASE, MAX_LEASE, MIN_LEASE, StateUrl, StateUrlError};

use http::{BlobHttp, Request};
use lease::{BlobLock, Held, LeaseCell, SAFETY_MARGIN, holder_from, holder_headers, lost};

const STATE_BLOB: &str = "deployment-state.yaml";

/// What this store last saw of the state blob.
#[derive(Clone)]
enum Known {
    Unknown,
    /// No blob.
    Absent,
    /// The empty placeholder, at this ETag.
    Placeholder(String),
    /// A state at this ETag and generation, with its bytes (the next backup).
    Present(String, u64, Arc<Vec<u8>>),
}

/// Why a [`BlobStore`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobConfigError {
    /// The `--state` URL.
    #[error(transparent)]
    Url(#[from] StateUrlError),
    /// The credential or the connection string.
    #[error("--state {url}: {source}")]
    Auth {
        #[allow(missing_docs)]
        url: String,
        #[source]
        #[allow(missing_docs)]
        source: AuthError,
    },
    /// The endpoint may not receive credentials (plain http to a non-loopback host).
    #[error("--state {url}: {source}")]
    Endpoint {
        #[allow(missing_docs)]
        url: String,
        #[source]
        #[allow(missing_docs)]
        source: crate::endpoint::EndpointError,
    },
    /// The HTTP client (TLS backend, a certificate).
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

impl k0rdent_core::Remedy for BlobConfigError {
    fn remedy(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            BlobConfigError::Auth { .. } => Some(
                "set AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING, or sign in with \
                 `az login` (the identity needs \"Storage Blob Data Contributor\")"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Builds a [`BlobStore`].
#[must_use]
pub struct BlobStoreBuilder {
    url: StateUrl,
    access: BlobAccess,
    backups: usize,
    event_blocks: u32,
    event_batch: usize,
    root_pem: Vec<Vec<u8>>,
    timeout: Duration,
}

impl BlobStoreBuilder {
    /// Keeps the last `n` versions in `PATH/backups/` (default 10).
    pub fn backups(mut self, n: usize) -> Self {
        self.backups = n;
        self
    }

    /// Rolls an event log blob over after this many appended blocks (default 49,000, under
    /// Azure's 50,000).
    pub fn event_blocks_per_blob(mut self, n: u32) -> Self {
        self.event_blocks = n.clamp(1, 49_900);
        self
    }

    /// Appends events in batches of up to `n` (default 16);
    /// [`EventLog::flush_events`](k0rdent_core::store::EventLog::flush_events) writes a
    /// partial batch.
    pub fn event_batch(mut self, n: usize) -> Self {
        self.event_batch = n.max(1);
        self
    }

    /// Trusts this PEM certificate (a private CA, Azurite's self-signed one).
    pub fn root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.root_pem.push(pem.to_vec());
        self
    }

    /// Per-request time limit (default: a third of the lease).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Builds the store (no request is made).
    ///
    /// # Errors
    /// [`BlobConfigError`]: an endpoint that may not receive credentials, or an HTTP client
    /// that cannot be set up.
    pub fn build(self) -> Result<BlobStore, BlobConfigError> {
        let endpoint =
            crate::endpoint::check_endpoint(&self.access.endpoint).map_err(|source| {
                BlobConfigError::Endpoint {
                    url: self.url.to_string(),
                    source,
                }
            })?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("k0rdent-deploy/", env!("CARGO_PKG_VERSION")));
        for pem in &self.root_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| BlobConfigError::Http(e.to_string()))?;
            b = b.add_root_certificate(cert);
        }
        let http = b
            .build()
            .map_err(|e| BlobConfigError::Http(e.to_string()))?;
        Ok(BlobStore {
            inner: Arc::new(Inner {
                http: BlobHttp {
                    http,
                    endpoint,
                    container: self.url.container.clone(),
                    auth: self.access.auth,
                    timeout: self.timeout,
                },
                state_blob: self.url.blob(STATE_BLOB),
                url: self.url,
                backups: self.backups,
                known: Mutex::new(Known::Unknown),
                lease: Arc::new(LeaseCell::default()),
                tasks: Mutex::new(Vec::new()),
                container_ready: AtomicBool::new(false),
                events: tokio::sync::Mutex::new(events::Writer::new(
                    self.event_batch,
                    self.event_blocks,
                )),
            }),
        })
    }
}

struct Inner {
    http: BlobHttp,
    url: StateUrl,
    state_blob: String,
    backups: usize,
    known: Mutex<Known>,
    lease: Arc<LeaseCell>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    container_ready: AtomicBool,
    events: tokio::sync::Mutex<events::Writer>,
}

/// The state, its lock and the event log in an Azure Blob Storage container. Cheap to clone
/// (clones are the same store).
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("url", &self.inner.url.to_string())
            .field("auth", &self.inner.http.auth)
            .finish()
    }
}

fn remote(location: &str, e: &BlobError) -> StoreError {
    StoreError::Remote {
        location: location.to_owned(),
        detail: e.to_string(),
        remedy: e.remedy(),
    }
}

fn lease_gone(e: &BlobError) -> bool {
    matches!(e.status(), Some(409 | 412)) && e.code().contains("Lease")
}

impl BlobStore {
    /// Starts a store at `url` reached with `access`.
    pub fn builder(url: StateUrl, access: BlobAccess) -> BlobStoreBuilder {
        let timeout = (url.lease / 3).max(Duration::from_secs(5));
        BlobStoreBuilder {
            url,
            access,
            backups: 10,
            event_blocks: 49_000,
            event_batch: 16,
            root_pem: Vec::new(),
            timeout,
        }
    }

    /// A store for `--state URL`, authorized as the environment says
    /// ([`BlobAccess::from_lookup`]).
    ///
    /// # Errors
    /// [`BlobConfigError`].
    pub fn from_url(
        url: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<BlobStore, BlobConfigError> {
        let url: StateUrl = url.parse()?;
        let access = BlobAccess::from_lookup(&url.account, lookup).map_err(|source| {
            BlobConfigError::Auth {
                url: url.to_string(),
                source,
            }
        })?;
        BlobStore::builder(url, access).build()
    }

    #[allow(missing_docs)]
    pub fn url(&self) -> &StateUrl {
        &self.inner.url
    }

    /// Cancels `c` when the lease is lost (broken, or not renewable in time), with the
    /// reason: the run then stops before another run can take over.
    pub fn cancel_on_lease_loss(&self, c: Cancellation) {
        self.inner.lease.set_cancellation(c);
    }

    /// Why this store's lease was lost, if it was: the caller turns an interrupted run into
    /// this error.
    pub fn lease_lost(&self) -> Option<StoreError> {
        self.inner
            .lease
            .lost_reason()
            .map(|r| lost(&self.location(), &r))
    }

    /// Waits (at most 10 s) for background work: the release of a dropped lock's lease.
    /// Call it before the process exits, after the lock is dropped.
    pub async fn close(&self) {
        let tasks: Vec<JoinHandle<()>> = match self.inner.tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => Vec::new(),
        };
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .is_err()
            {
                tracing::warn!("the lease release did not finish in time; it lapses by itself");
            }
        }
    }

    fn location(&self) -> String {
        self.inner.url.to_string()
    }

    async fn ensure_container(&self) -> Result<(), StoreError> {
        if self.inner.container_ready.load(Ordering::SeqCst) {
            return Ok(());
        }
        let q = [("restype", "container")];
        match self
            .inner
            .http
            .send(
                Request::new(Method::PUT, None, "create the container").query(&q),
                None,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.status() == Some(409) => {}
            Err(e) => return Err(remote(&self.location(), &e)),
        }
        self.inner.container_ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn set_known(&self, k: Known) {
        if let Ok(mut g) = self.inner.known.lock() {
            *g = k;
        }
    }

    fn known(&self) -> Known {
        self.inner
            .known
            .lock()
            .map_or(Known::Unknown, |g| g.clone())
    }

    async fn head_state(&self) -> Result<Option<http::Reply>, StoreError> {
        match self
            .inner
            .http
            .send(
                Request::new(
                    Method::HEAD,
                    Some(&self.inner.state_blob),
                    "read the state blob",
                ),
                None,
            )
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(remote(&self.location(), &e)),
        }
    }

    /// The lease id, and when the request that got it was sent (the lease runs from then).
    async fn acquire(&self) -> Result<(String, Instant), StoreError> {
        let length = self.inner.url.lease.as_secs().to_string();
        let proposed = crate::client::new_guid();
        let q = [("comp", "lease")];
        // A holder that died on this host keeps the lease until it lapses by itself: wait for
        // that rather than failing, so the next run proceeds without a manual step.
        let give_up = Instant::now() + self.inner.url.lease + Duration::from_secs(3);
        loop {
            let sent = Instant::now();
            let r = self
                .inner
                .http
                .send(
                    Request::new(
                        Method::PUT,
                        Some(&self.inner.state_blob),
                        "lease the state blob",
                    )
                    .query(&q)
                    .header("x-ms-lease-action", "acquire")
                    .header("x-ms-lease-duration", length.clone())
                    .header("x-ms-proposed-lease-id", proposed.clone()),
                    None,
                )
                .await;
            match r {
                Ok(reply) => {
                    let id = reply
                        .header("x-ms-lease-id")
                        .map_or(proposed.clone(), str::to_owned);
                    return Ok((id, sent));
                }
                Err(e) if e.status() == Some(409) => {
                    let who = self.lock_holder().await?;
                    let dead_here = who.as_ref().and_then(LockHolder::alive_here) == Some(false);
                    if dead_here && Instant::now() < give_up {
                        tracing::info!(holder = ?who.as_ref().map(ToString::to_string),
                            "the state's lease belongs to a run that is gone; waiting for it to lapse");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                    return Err(StoreError::Locked {
                        location: self.location(),
                        holder: who.map(Box::new),
                    });
                }
                Err(e) => return Err(remote(&self.location(), &e)),
            }
        }
    }

    fn spawn_renewal(&self, id: String, stop: oneshot::Receiver<()>) {
        let this = self.clone();
        let task = tokio::spawn(async move { this.renew_loop(id, stop).await });
        if let Ok(mut t) = self.inner.tasks.lock() {
            t.retain(|h| !h.is_finished());
            t.push(task);
        }
    }

    async fn lease_op(&self, action: &str, id: &str, timeout: Duration) -> Result<(), BlobError> {
        let q = [("comp", "lease")];
        self.inner
            .http
            .send(
                Request::new(
                    Method::PUT,
                    Some(&self.inner.state_blob),
                    "renew the state lease",
                )
                .query(&q)
                .header("x-ms-lease-action", action)
                .header("x-ms-lease-id", id),
                Some(timeout),
            )
            .await
            .map(|_| ())
    }

    async fn renew_loop(self, id: String, mut stop: oneshot::Receiver<()>) {
        let length = self.inner.url.lease;
        let period = length / 3;
        let cell = self.inner.lease.clone();
        let mut next = Instant::now() + period;
        // Why the renewals fail, for the error that stops the run (warned about once).
        let mut failing: Option<String> = None;
        loop {
            let Some(deadline) = cell.trusted_until() else {
                return;
            };
            tokio::select! {
                biased;
                _ = &mut stop => break,
                () = tokio::time::sleep_until(next.min(deadline)) => {}
            }
            let now = Instant::now();
            if now >= deadline {
                cell.lose(&format!(
                    "the lease could not be renewed for {} s{}; the run stopped {} s before it \
                     could lapse",
                    (length - SAFETY_MARGIN).as_secs(),
                    failing.map(|e| format!(" ({e})")).unwrap_or_default(),
                    SAFETY_MARGIN.as_secs()
                ));
                return;
            }
            let budget = (deadline - now).min(period);
            let result = tokio::select! {
                biased;
                _ = &mut stop => break,
                r = self.lease_op("renew", &id, budget) => r,
            };
            match result {
                Ok(()) => {
                    if failing.take().is_some() {
                        tracing::info!("the state lease is renewed again");
                    }
                    cell.renewed(now, length);
                    next = now + period;
                }
                Err(e) if lease_gone(&e) => {
                    cell.lose(&format!(
                        "the lease was broken or taken over ({}): another run may own the state now",
                        e.code()
                    ));
                    return;
                }
                Err(e) => {
                    if failing.is_none() {
                        tracing::warn!(error = %e, "could not renew the state lease; retrying every second");
                    } else {
                        tracing::debug!(error = %e, "could not renew the state lease; retrying");
                    }
                    failing = Some(e.to_string());
                    next = Instant::now() + Duration::from_secs(1);
                }
            }
        }
        // Released on a normal exit, so the next run need not wait for the lease to lapse.
        if let Some(id) = cell.clear()
            && let Err(e) = self.lease_op("release", &id, Duration::from_secs(5)).await
        {
            tracing::warn!(error = %e, "could not release the state lease; it lapses by itself");
        }
    }

    /// The backup blob of one generation (names sort by generation).
    fn backup_blob(&self, generation: u64) -> String {
        self.inner
            .url
            .blob(&format!("backups/deployment-state.{generation:010}.yaml"))
    }

    async fn put_backup(&self, generation: u64, bytes: &[u8]) {
        if self.inner.backups == 0 {
            return;
        }
        let name = self.backup_blob(generation);
        let r = self
            .inner
            .http
            .send(
                Request::new(Method::PUT, Some(&name), "keep a backup")
                    .header("x-ms-blob-type", "BlockBlob")
                    .body(bytes.to_vec()),
                None,
            )
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not keep a backup of the state");
            return;
        }
        let keep = u64::try_from(self.inner.backups).unwrap_or(u64::MAX);
        if let Some(old) = generation.checked_sub(keep) {
            let name = self.backup_blob(old);
            let _ = self
                .inner
                .http
                .send(
                    Request::new(Method::DELETE, Some(&name), "prune a backup"),
                    None,
                )
                .await;
        }
    }

    /// Reads a blob, `None` if it does not exist.
    async fn get(&self, name: &str, op: &str) -> Result<Option<http::Reply>, StoreError> {
        match self
            .inner
            .http
            .send(Request::new(Method::GET, Some(name), op), None)
            .await
        {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(remote(&self.location(), &e)),
        }
    }

    async fn put_block(
        &self,
        name: &str,
        bytes: Vec<u8>,
        extra: Vec<(String, String)>,
        op: &str,
    ) -> Result<http::Reply, BlobError> {
        let mut req = Request::new(Method::PUT, Some(name), op)
            .header("x-ms-blob-type", "BlockBlob")
            .body(bytes);
        req.headers.extend(extra);
        self.inner.http.send(req, None).await
    }
}

#[async_trait]
impl StateStore for BlobStore {
    fn location(&self) -> String {
        BlobStore::location(self)
    }

    async fn load(&self) -> Result<Option<DeploymentState>, StoreError> {
        let Some(reply) = self
            .get(&self.inner.state_blob, "read the state blob")
            .await?
        else {
            self.set_known(Known::Absent);
            return Ok(None);
        };
        let etag = reply.header("etag").unwrap_or_default().to_owned();
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            self.set_known(Known::Placeholder(etag));
            return Ok(None);
        }
        let migrated = match parse_state(&reply.body) {
            Ok(m) => m,
            Err(ParseError::Moved(pointer)) => {
                self.set_known(Known::Unknown);
                return Err(StoreError::Moved {
                    location: self.location(),
                    pointer,
                });
            }
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path: PathBuf::from(self.location()).join(STATE_BLOB),
                    detail: e.to_string(),
                    remedy: format!(
                        "the blob was left untouched; copy the newest blob of {}/backups/ over \
                         it, or delete it to start over",
                        self.location()
                    ),
                });
            }
        };
        self.set_known(Known::Present(
            etag,
            migrated.state.generation,
            Arc::new(reply.body),
        ));
        Ok(Some(migrated.state))
    }

    async fn save(&self, state: &mut DeploymentState) -> Result<(), StoreError> {
        let location = self.location();
        let conflict = |detail: &str| StoreError::Conflict {
            location: location.clone(),
            detail: detail.to_owned(),
        };
        let held = self.inner.lease.current(&location)?;
        let mut known = self.known();
        if matches!(known, Known::Unknown) {
            known = match self.head_state().await? {
                None => Known::Absent,
                Some(r) if r.header("content-length") == Some("0") => {
                    Known::Placeholder(r.header("etag").unwrap_or_default().to_owned())
                }
                Some(_) => return Err(conflict("it was not loaded before saving")),
            };
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        let previous_bytes = match &known {
            Known::Unknown => None,
            Known::Absent => {
                if state.generation != 0 {
                    return Err(conflict("the state blob was removed"));
                }
                headers.push(("if-none-match".into(), "*".into()));
                None
            }
            Known::Placeholder(etag) => {
                if state.generation != 0 {
                    return Err(conflict("the state blob was emptied"));
                }
                headers.push(("if-match".into(), etag.clone()));
                None
            }
            Known::Present(etag, generation, bytes) => {
                if *generation != state.generation {
                    return Err(conflict(&format!(
                        "saving generation {} over generation {generation}",
                        state.generation
                    )));
                }
                headers.push(("if-match".into(), etag.clone()));
                Some((*generation, bytes.clone()))
            }
        };
        if let Some((id, holder)) = &held {
            headers.push(("x-ms-lease-id".into(), id.clone()));
            headers.extend(holder_headers(holder));
        }
        self.ensure_container().await?;
        if let Some((generation, bytes)) = &previous_bytes {
            self.put_backup(*generation, bytes).await;
        }
        let previous = state.generation;
        let text = match render_next(state) {
            Ok(t) => t,
            Err(e) => {
                return Err(StoreError::Remote {
                    location,
                    detail: format!("cannot render the state: {e}"),
                    remedy: None,
                });
            }
        };
        let bytes = text.into_bytes();
        match self
            .put_block(
                &self.inner.state_blob,
                bytes.clone(),
                headers,
                "save the state blob",
            )
            .await
        {
            Ok(reply) => {
                let etag = reply.header("etag").unwrap_or_default().to_owned();
                self.set_known(Known::Present(etag, state.generation, Arc::new(bytes)));
                Ok(())
            }
            Err(e) => {
                state.generation = previous;
                // Under a lease, a changed blob means the lease was broken and another run
                // wrote: the service may report either first.
                if lease_gone(&e) || (held.is_some() && matches!(e.status(), Some(409 | 412))) {
                    let reason = format!(
                        "the service refused the save ({}): this run's lease was broken or has \
                         lapsed and the state blob may have been written by another run; \
                         nothing was written",
                        e.code()
                    );
                    self.inner.lease.lose(&reason);
                    return Err(lost(&location, &reason));
                }
                if e.status() == Some(412) || e.status() == Some(409) {
                    self.set_known(Known::Unknown);
                    return Err(conflict(&format!(
                        "the state blob changed since it was loaded ({}); nothing was written",
                        e.code()
                    )));
                }
                Err(remote(&location, &e))
            }
        }
    }

    async fn lock(&self, holder: &LockHolder) -> Result<Box<dyn StoreLock>, StoreError> {
        self.ensure_container().await?;
        // The lease needs a blob: create the empty placeholder unless one exists.
        match self
            .put_block(
                &self.inner.state_blob,
                Vec::new(),
                vec![("if-none-match".into(), "*".into())],
                "create the state blob",
            )
            .await
        {
            Ok(_) => {}
            Err(e) if matches!(e.status(), Some(409 | 412)) => {}
            Err(e) => return Err(remote(&self.location(), &e)),
        }
        let (id, started) = self.acquire().await?;
        let q = [("comp", "metadata")];
        let mut req = Request::new(Method::PUT, Some(&self.inner.state_blob), "name the holder")
            .query(&q)
            .header("x-ms-lease-id", id.clone());
        req.headers.extend(holder_headers(holder));
        if let Err(e) = self.inner.http.send(req, None).await {
            let _ = self.lease_op("release", &id, Duration::from_secs(5)).await;
            return Err(remote(&self.location(), &e));
        }
        // The metadata write changed the ETag: the next save must follow a load.
        self.set_known(Known::Unknown);
        self.inner.lease.start(Held {
            id: id.clone(),
            holder: holder.clone(),
            trusted_until: started + self.inner.url.lease.saturating_sub(SAFETY_MARGIN),
        });
        let (tx, rx) = oneshot::channel();
        self.spawn_renewal(id, rx);
        Ok(Box::new(BlobLock {
            cell: self.inner.lease.clone(),
            location: self.location(),
            stop: Some(tx),
        }))
    }

    async fn lock_holder(&self) -> Result<Option<LockHolder>, StoreError> {
        let Some(reply) = self.head_state().await? else {
            return Ok(None);
        };
        if reply.header("x-ms-lease-state") != Some("leased") {
            return Ok(None);
        }
        Ok(Some(holder_from(&reply.headers).unwrap_or_else(|| {
            LockHolder {
                pid: 0,
                host: "unknown".into(),
                run_id: k0rdent_core::id::RunId::from_string("unknown"),
                command: "unknown".into(),
                since: Utc::now(),
                user: None,
            }
        })))
    }

    async fn force_unlock(&self) -> Result<Option<LockHolder>, StoreError> {
        let held = self.lock_holder().await?;
        let q = [("comp", "lease")];
        match self
            .inner
            .http
            .send(
                Request::new(
                    Method::PUT,
                    Some(&self.inner.state_blob),
                    "break the state lease",
                )
                .query(&q)
                .header("x-ms-lease-action", "break")
                .header("x-ms-lease-break-period", "0"),
                None,
            )
            .await
        {
            Ok(_) => Ok(held),
            Err(e) if matches!(e.status(), Some(404 | 409)) => Ok(held),
            Err(e) => Err(remote(&self.location(), &e)),
        }
    }

    async fn save_copy(&self, state: &DeploymentState) -> Result<(), StoreError> {
        self.copy_in(state).await
    }

    async fn save_pointer(
        &self,
        pointer: &StatePointer,
        generation: u64,
    ) -> Result<(), StoreError> {
        self.leave_pointer(pointer, generation).await
    }

    async fn archive(&self, label: &str) -> Result<String, StoreError> {
        let location = self.location();
        let state = self
            .get(&self.inner.state_blob, "read the state blob")
            .await?;
        let cluster = state
            .as_ref()
            .and_then(|r| parse_state(&r.body).ok())
            .and_then(|m| m.state.cluster_id)
            .unwrap_or_else(|| "deployment".into());
        let dir = format!(
            "archive/{cluster}-{}-{label}",
            Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        if let Some(r) = &state {
            self.put_block(
                &self.inner.url.blob(&format!("{dir}/{STATE_BLOB}")),
                r.body.clone(),
                Vec::new(),
                "archive the state",
            )
            .await
            .map_err(|e| remote(&location, &e))?;
        }
        self.archive_events(&dir).await?;
        // The blob stays (it carries the lease): emptied, it loads as "no state".
        let mut headers = Vec::new();
        if let Some((id, holder)) = self.inner.lease.current(&location)? {
            headers.push(("x-ms-lease-id".into(), id));
            headers.extend(holder_headers(&holder));
        }
        if let Some(etag) = state.as_ref().and_then(|r| r.header("etag")) {
            headers.push(("if-match".into(), etag.to_owned()));
        }
        let reply = self
            .put_block(
                &self.inner.state_blob,
                Vec::new(),
                headers,
                "empty the state blob",
            )
            .await
            .map_err(|e| remote(&location, &e))?;
        self.set_known(Known::Placeholder(
            reply.header("etag").unwrap_or_default().to_owned(),
        ));
        Ok(format!("{location}/{dir}"))
    }
}
