//! [`SshConnector`]: every SSH connection goes through it. It first passes the "VPN up" check
//! for the node (no TCP attempt when the tunnel is down — attempts are counted), verifies the
//! host key against the pins (pinning all of the host's keys on first contact), then
//! authenticates, and keeps one session per node for reuse.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k0rdent_core::state::keys;
use k0rdent_core::store::KeyStore;
use k0rdent_core::{Remedy, secret::Secret, state::DeploymentState};
use tokio::sync::Mutex;

use super::error::SshError;
use super::hostkey::{
    HOST_KEY_GLOB, HostKey, PinDecision, decide, hostkey_method_pref, parse_host_key_files,
};
use super::pins::PinStore;
use super::session::{ExecOptions, SshSession, fail_to_error};
use super::transport::{Conn, Fail};
use crate::wireguard::gate::{TunnelExpectation, TunnelProbe};
use crate::wireguard::prepare::KeyError;

/// Who we log in as.
#[derive(Clone)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct SshCredentials {
    pub user: String,
    /// Private key (OpenSSH or PEM text).
    pub private_key: Secret<String>,
    /// Its passphrase, if any.
    pub passphrase: Option<Secret<String>>,
}

impl std::fmt::Debug for SshCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshCredentials")
            .field("user", &self.user)
            .field("private_key", &self.private_key)
            .finish()
    }
}

impl SshCredentials {
    /// Without a passphrase; set `passphrase` for an encrypted key.
    pub fn new(user: impl Into<String>, private_key: Secret<String>) -> Self {
        SshCredentials {
            user: user.into(),
            private_key,
            passphrase: None,
        }
    }

    /// `user` with the deployment's admin key (`keys/ssh-admin.key`).
    ///
    /// # Errors
    /// [`KeyError`] if the key is missing or not text.
    pub async fn from_store(
        secrets: &(impl KeyStore + ?Sized),
        user: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let file = keys::SSH_ADMIN.to_owned();
        let bytes = match secrets.get_secret(&file).await {
            Ok(Some(b)) => b,
            Ok(None) => return Err(KeyError::Missing { file }),
            Err(source) => {
                return Err(KeyError::Store {
                    file,
                    source: Box::new(source),
                });
            }
        };
        let text = String::from_utf8(bytes.into_inner())
            .map_err(|_| KeyError::Unreadable { file: file.clone() })?;
        Ok(Self::new(user, Secret::new(text)))
    }
}

/// Time limits and host-key settings. Defaults: 10 s to connect, 15 s each for the
/// handshake and authentication.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct ConnectOptions {
    pub connect_timeout: Duration,
    pub handshake_timeout: Duration,
    pub auth_timeout: Duration,
    /// Defaults for commands on the session.
    pub exec: ExecOptions,
    /// Host-key methods to offer (libssh2 names); `None`: the pinned algorithms.
    pub host_key_methods: Option<String>,
    /// Where the host's public keys are read from on first contact.
    pub host_key_glob: String,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(15),
            auth_timeout: Duration::from_secs(15),
            exec: ExecOptions::default(),
            host_key_methods: None,
            host_key_glob: HOST_KEY_GLOB.to_owned(),
        }
    }
}

/// How nodes are reached.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // fields named after what they hold
pub enum Route {
    /// Through the WireGuard tunnel: each new connection first passes the "VPN up" check for
    /// its node.
    Tunnel {
        probe: TunnelProbe,
        /// What the tunnel should look like.
        expectation: Arc<TunnelExpectation>,
    },
    /// Directly, without a VPN precondition (public-IP access during bootstrap, loopback
    /// tests).
    Direct,
}

/// A node to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // undocumented fields are named after what they hold
pub struct NodeTarget {
    /// Node name (the key of its record).
    pub name: String,
    pub addr: SocketAddr,
    /// The node's Azure `vmId` as observed now (compared with the pinned one).
    pub vm_id: Option<String>,
}

impl NodeTarget {
    /// Without a `vmId`, a changed host key is refused even after a recorded recreate; see
    /// [`with_vm_id`](Self::with_vm_id).
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        NodeTarget {
            name: name.into(),
            addr,
            vm_id: None,
        }
    }

    /// With the observed `vmId`.
    #[must_use]
    pub fn with_vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.vm_id = Some(vm_id.into());
        self
    }

    /// The node at its tunnel address, port 22, from the recorded state.
    pub fn tunnel(state: &DeploymentState, name: &str) -> Option<Self> {
        let ip: IpAddr = state.nodes.get(name)?.tunnel_ip?;
        Some(Self::new(name, SocketAddr::new(ip, 22)))
    }
}

/// The one way to open SSH sessions to nodes.
#[derive(Debug)]
pub struct SshConnector {
    creds: SshCredentials,
    options: ConnectOptions,
    route: Route,
    attempts: AtomicU64,
    sessions: Mutex<HashMap<String, Arc<SshSession>>>,
}

impl SshConnector {
    /// A connector logging in with `creds` over `route`.
    pub fn new(creds: SshCredentials, options: ConnectOptions, route: Route) -> Self {
        SshConnector {
            creds,
            options,
            route,
            attempts: AtomicU64::new(0),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// TCP connection attempts made so far (zero while the VPN gate fails).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// The node's session: the cached one if it is healthy, else a new connection.
    ///
    /// # Errors
    /// [`SshError`], classified.
    pub async fn session(
        &self,
        target: &NodeTarget,
        pins: &(impl PinStore + ?Sized),
    ) -> Result<Arc<SshSession>, SshError> {
        if let Some(s) = self.sessions.lock().await.get(&target.name)
            && !s.is_broken()
            && s.addr() == target.addr
        {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(self.connect(target, pins).await?);
        let mut map = self.sessions.lock().await;
        map.insert(target.name.clone(), Arc::clone(&s));
        Ok(s)
    }

    /// Forgets the cached session of `node` (it closes when the last user drops it).
    pub async fn forget(&self, node: &str) {
        self.sessions.lock().await.remove(node);
    }

    /// Opens a new session (not cached): VPN check, TCP, handshake, host-key check, auth, and
    /// on first contact (or a journaled recreate) pinning of all the host's keys.
    ///
    /// # Errors
    /// [`SshError`], classified; nothing is pinned unless the whole sequence succeeded.
    pub async fn connect(
        &self,
        target: &NodeTarget,
        pins: &(impl PinStore + ?Sized),
    ) -> Result<SshSession, SshError> {
        let node = target.name.clone();
        let pin = pins.pinned(&node).await.map_err(|e| SshError::PinStore {
            node: node.clone(),
            source: Arc::new(e),
        })?;
        self.vpn_check(target).await?;
        self.attempts.fetch_add(1, Ordering::SeqCst);

        let methods = self.options.host_key_methods.clone().or_else(|| {
            (!pin.keys.is_empty())
                .then(|| hostkey_method_pref(pin.keys.iter().map(|k| k.algorithm.as_str())))
        });
        let opts = self.options.clone();
        let creds = self.creds.clone();
        let addr = target.addr;
        let vm_id = target.vm_id.clone();
        let pin2 = pin.clone();
        let start = Instant::now();
        let node2 = node.clone();
        let res = tokio::task::spawn_blocking(move || {
            open_verified(
                &node2,
                addr,
                &opts,
                &creds,
                methods.as_deref(),
                &pin2,
                vm_id.as_deref(),
            )
        })
        .await
        .map_err(|e| SshError::Protocol {
            node: node.clone(),
            addr,
            operation: "connecting".into(),
            detail: e.to_string(),
        })?;
        let (conn, key, decision, all_keys) = match res {
            Ok(v) => v,
            Err(Opened::Refused(e)) => return Err(e),
            Err(Opened::Failed(f)) => {
                let mut e = fail_to_error(&node, addr, &self.creds.user, f);
                if let SshError::Timeout { after, .. } = &mut e {
                    *after = start.elapsed();
                }
                return Err(e);
            }
        };
        match &decision {
            PinDecision::FirstContact | PinDecision::Repin { .. } => {
                let records = all_keys.iter().map(HostKey::to_record).collect();
                pins.pin(&node, records, target.vm_id.clone())
                    .await
                    .map_err(|e| SshError::PinStore {
                        node: node.clone(),
                        source: Arc::new(e),
                    })?;
                tracing::info!(
                    node = %node,
                    keys = all_keys.len(),
                    presented = %key,
                    ?decision,
                    "pinned the host's keys"
                );
            }
            PinDecision::Match => {}
            PinDecision::Changed { .. } => {}
        }
        Ok(SshSession::new(
            node,
            addr,
            key,
            conn,
            self.options.exec.clone(),
        ))
    }

    async fn vpn_check(&self, target: &NodeTarget) -> Result<(), SshError> {
        let Route::Tunnel { probe, expectation } = &self.route else {
            return Ok(());
        };
        match probe.check_peer(expectation, &target.name).await {
            None => Err(SshError::VpnDown {
                node: target.name.clone(),
                diagnosis: format!(
                    "{} is not a peer of the WireGuard interface {}",
                    target.name, expectation.interface
                ),
                remedy: Some("run `k0rdent deploy --until setup_vpn`".into()),
            }),
            Some(h) if h.tunnel_up() => Ok(()),
            Some(h) => Err(SshError::VpnDown {
                node: target.name.clone(),
                diagnosis: h.reason(),
                remedy: h.remedy().map(Cow::into_owned),
            }),
        }
    }
}

enum Opened {
    Refused(SshError),
    Failed(Fail),
}

impl From<Fail> for Opened {
    fn from(f: Fail) -> Self {
        Opened::Failed(f)
    }
}

type Verified = (Conn, HostKey, PinDecision, Vec<HostKey>);

/// The blocking part of [`SshConnector::connect`].
fn open_verified(
    node: &str,
    addr: SocketAddr,
    opts: &ConnectOptions,
    creds: &SshCredentials,
    methods: Option<&str>,
    pin: &super::hostkey::PinnedHost,
    vm_id: Option<&str>,
) -> Result<Verified, Opened> {
    let (conn, key) = Conn::open(addr, opts.connect_timeout, opts.handshake_timeout, methods)?;
    let decision = decide(pin, &key, vm_id);
    if let PinDecision::Changed { pinned } = &decision {
        // Refuse before authenticating: nothing is sent to a host we cannot verify.
        return Err(Opened::Refused(SshError::HostKeyChanged {
            node: node.to_owned(),
            addr,
            offered: key.to_string(),
            pinned: pinned.clone().unwrap_or_else(|| {
                format!("no {} key ({} other keys)", key.algorithm(), pin.keys.len())
            }),
        }));
    }
    conn.authenticate(
        &creds.user,
        creds.private_key.expose(),
        creds.passphrase.as_ref().map(|p| p.expose().as_str()),
        opts.auth_timeout,
    )?;
    let mut all = Vec::new();
    if matches!(
        decision,
        PinDecision::FirstContact | PinDecision::Repin { .. }
    ) {
        let deadline = Instant::now() + opts.exec.timeout.min(Duration::from_secs(30));
        let cmd = format!("cat {} 2>/dev/null", opts.host_key_glob);
        let out = conn.exec(&cmd, None, deadline, 256 * 1024)?;
        all = parse_host_key_files(&String::from_utf8_lossy(&out.stdout));
        if !all.contains(&key) {
            return Err(Opened::Refused(SshError::Protocol {
                node: node.to_owned(),
                addr,
                operation: "pinning host keys".into(),
                detail: format!(
                    "the presented key {key} is not among {} ({} keys found); nothing was pinned",
                    opts.host_key_glob,
                    all.len()
                ),
            }));
        }
    }
    Ok((conn, key, decision, all))
}
