//! `install_k0s`'s work: k0sctl checked, a k0sctl left by an interrupted run stopped, the
//! nodes' host keys pinned (first contact) and exported as `known_hosts`, k0s services left
//! installed-but-stopped by a killed apply started (k0sctl refuses such a host), the
//! configuration written to `<state-dir>/k0sctl.yaml` (0600), `k0sctl apply` journaled and
//! run, then the kubeconfig fetched with `k0sctl kubeconfig` and made ours.

use std::sync::Arc;
use std::time::Duration;

use k0rdent_core::secret::Secret;
use k0rdent_core::{Evidence, FileStore, Outputs, StepContext, StepError, StepOutcome};
use k0rdent_process::{ChildRecord, Command};
use k0rdent_ssh::ssh::{
    ConnectOptions, NodeTarget, Route, SshConnector, SshCredentials, write_known_hosts,
};
use k0rdent_ssh::wireguard::{TunnelExpectation, TunnelProbe};

use super::hosts::{K0S_NO_TAINTS, K0S_RESET, K0S_ROLE, K0S_VM_ID, k0s_block_digest, k0sctl_input};
use super::observe::K0S_CONFIG;
use crate::cluster::kubeconfig::{KUBECONFIG_FILE, adopt};
use crate::deployment::nodes::{K0sStatus, NodeFact, NodesFacts};
use crate::k0s::render_k0sctl_yaml;
use crate::tools::{self, K0SCTL};

/// The k0sctl configuration's file name in the state directory.
pub const K0SCTL_FILE: &str = "k0sctl.yaml";
/// Journal key of the running k0sctl (its process record).
const JOURNAL_K0SCTL: &str = "k0sctl";
/// How long k0sctl gets after SIGTERM to stop. Short, so a dropped tunnel stops the phase
/// within seconds; what an interrupted apply leaves on a node is settled by the next run.
const K0SCTL_GRACE: Duration = Duration::from_millis(1500);

/// What the phase is configured with.
#[derive(Debug, Clone)]
pub struct K0sSettings {
    /// `software.k0s.version`.
    pub k0s_version: String,
    /// The VMs' admin user.
    pub user: String,
    /// The state directory (the configuration, `known_hosts` and kubeconfig go there).
    pub store: Arc<FileStore>,
    /// `tools.*` from the configuration.
    pub tools: std::collections::BTreeMap<String, std::path::PathBuf>,
    /// SSH time limits.
    pub connect: ConnectOptions,
    /// Recorded nodes the configuration no longer lists: reset by k0sctl, then removed.
    pub leaving: std::collections::BTreeSet<String>,
}

fn blocked(msg: impl Into<String>, remedy: impl Into<String>) -> StepError {
    StepError::blocked(msg).with_remedy(remedy)
}

/// Stops a k0sctl an interrupted attempt left running (k0sctl cannot run twice at once).
async fn settle_leftover(ctx: &StepContext) -> Result<(), StepError> {
    let Some(rec) = ctx.journal().latest_as::<ChildRecord>(JOURNAL_K0SCTL) else {
        return Ok(());
    };
    rec.stop(K0SCTL_GRACE, |m| ctx.progress(m))
        .await
        .map(|_| ())
        .map_err(|e| {
            blocked(
                e.to_string(),
                "stop that k0sctl, then run `k0rdent deploy` again",
            )
        })
}

/// Opens one session per node (pinning host keys on first contact, persisted with the
/// state) and starts k0s where a killed apply left it installed but stopped.
async fn prepare_nodes(ctx: &StepContext, s: &K0sSettings) -> Result<(), StepError> {
    let state = ctx.read_state(Clone::clone).await;
    let creds = SshCredentials::from_store(ctx.keys(), s.user.clone())
        .await
        .map_err(|e| blocked(e.to_string(), crate::error::key_remedy(&e)))?;
    let exp = TunnelExpectation::from_state(&state)
        .map_err(|e| blocked(e.to_string(), "run `k0rdent deploy`"))?;
    let connector = SshConnector::new(
        creds,
        s.connect.clone(),
        Route::Tunnel {
            probe: TunnelProbe::default(),
            expectation: Arc::new(exp),
        },
    );
    let mut sessions = std::collections::BTreeMap::new();
    for name in state.nodes.keys() {
        let Some(target) = NodeTarget::tunnel(&state, name) else {
            continue;
        };
        let session = connector.session(&target, ctx).await.map_err(|e| {
            let remedy = k0rdent_core::Remedy::remedy(&e).map(|r| r.into_owned());
            let err = StepError::blocked(e.to_string());
            match remedy {
                Some(r) => err.with_remedy(r),
                None => err,
            }
        })?;
        // Asked now, not from the run's first observation: an attempt of this run may have
        // been the one killed between `k0s install` and the service start.
        let status = session
            .exec(&crate::deployment::nodes::k0s_status_command())
            .await
            .map(|o| crate::deployment::nodes::parse_k0s_status(&o.stdout_text()))
            .map_err(|e| StepError::transient(format!("{name}: `k0s status`: {e}")))?;
        if matches!(&status, K0sStatus::Stopped { services } if !services.is_empty()) {
            ctx.progress(format!(
                "{name}: starting the k0s service an interrupted apply left stopped"
            ));
            session
                .exec("sudo -n env PATH=$PATH:/usr/local/bin k0s start")
                .await
                .and_then(|o| o.check())
                .map_err(|e| StepError::transient(format!("{name}: `k0s start`: {e}")))?;
        }
        sessions.insert(name.clone(), session);
        ctx.checkpoint()?;
    }
    leave_etcd(ctx, &state, &sessions).await
}

/// A controller whose VM was replaced comes back with the same addresses while etcd still
/// lists its old member (k0sctl refuses such a host): remove that member on a healthy
/// controller first (`k0s etcd leave --peer-address`).
async fn leave_etcd(
    ctx: &StepContext,
    state: &k0rdent_core::state::DeploymentState,
    sessions: &std::collections::BTreeMap<String, Arc<k0rdent_ssh::ssh::SshSession>>,
) -> Result<(), StepError> {
    let running = |name: &str| {
        ctx.snapshot().get::<NodesFacts>().is_some_and(|f| {
            matches!(f.nodes.get(name), Some(NodeFact::Seen { k0s: K0sStatus::Running { role, .. }, .. }) if role.starts_with("controller"))
        })
    };
    for (name, node) in &state.nodes {
        let installed = node.attributes.get(K0S_VM_ID).and_then(|v| v.as_str());
        let is_controller = node
            .attributes
            .get(K0S_ROLE)
            .and_then(|r| r.as_str())
            .is_some_and(|r| r.starts_with("controller"));
        if !is_controller || installed.is_none() || installed == node.vm_id.as_deref() {
            continue;
        }
        let Some(peer) = super::hosts::private_ip(state, name) else {
            continue;
        };
        let Some((healthy, session)) = sessions
            .iter()
            .find(|(other, _)| *other != name && running(other))
        else {
            return Err(blocked(
                format!(
                    "controller {name} was replaced, and no other controller runs k0s to remove its old etcd member"
                ),
                "bring another controller back first, or `k0rdent reset` and deploy again",
            ));
        };
        ctx.progress(format!(
            "{name} was replaced: removing its old etcd member {peer} on {healthy}"
        ));
        let out = session
            .exec(&format!(
                "sudo -n env PATH=$PATH:/usr/local/bin k0s etcd leave --peer-address {peer} 2>&1"
            ))
            .await
            .map_err(|e| StepError::transient(format!("{healthy}: `k0s etcd leave`: {e}")))?;
        if !out.success() && !out.stdout_text().contains("not found") {
            return Err(StepError::transient(format!(
                "{healthy}: `k0s etcd leave --peer-address {peer}` failed: {}",
                out.stdout_text().trim()
            )));
        }
    }
    Ok(())
}

/// Runs `install_k0s`.
pub async fn apply(ctx: &StepContext, s: &K0sSettings) -> Result<StepOutcome, StepError> {
    let k0sctl = tools::check(&K0SCTL, &s.tools).await.map_err(|e| {
        let r = k0rdent_core::Remedy::remedy(&e)
            .map(|r| r.into_owned())
            .unwrap_or_default();
        blocked(e.to_string(), r)
    })?;
    settle_leftover(ctx).await?;
    let state = ctx.read_state(Clone::clone).await;
    let input =
        k0sctl_input(&state, &s.k0s_version, &s.user, s.store.dir(), &s.leaving).map_err(|e| {
            blocked(
                e.to_string(),
                "run `k0rdent deploy` so the VMs and the VPN exist",
            )
        })?;
    // Roles are recorded the first time and never recomputed.
    let roles: Vec<(String, String, bool)> = input
        .hosts
        .iter()
        .map(|h| (h.name.clone(), h.role.as_str().to_owned(), h.no_taints))
        .collect();
    ctx.update_state(move |st| {
        for (name, role, no_taints) in roles {
            let n = st.nodes.entry(name).or_default();
            n.attributes
                .entry(K0S_ROLE.to_owned())
                .or_insert(role.into());
            n.attributes
                .entry(K0S_NO_TAINTS.to_owned())
                .or_insert(no_taints.into());
        }
    })
    .await?;
    prepare_nodes(ctx, s).await?;
    let state = ctx.read_state(Clone::clone).await;
    let known_hosts = write_known_hosts(&s.store, &state)
        .map_err(|e| StepError::permanent(format!("writing known_hosts: {e}")))?;
    let yaml = render_k0sctl_yaml(&input)
        .map_err(|e| StepError::permanent(format!("the k0sctl configuration: {e}")))?;
    let config = s
        .store
        .write_file(K0SCTL_FILE, yaml.as_bytes(), 0o600)
        .map_err(|e| StepError::permanent(format!("writing {K0SCTL_FILE}: {e}")))?;
    ctx.checkpoint()?;
    ctx.progress(format!(
        "k0sctl apply ({} hosts, k0s {})",
        input.hosts.len(),
        input.k0s_version
    ));
    let running = Command::new(&k0sctl.path)
        .arg("apply")
        .arg("--config")
        .arg(&config)
        .env("SSH_KNOWN_HOSTS", known_hosts.as_os_str())
        .grace(K0SCTL_GRACE)
        .spawn()
        .await
        .map_err(|e| StepError::permanent(format!("starting k0sctl: {e}")))?;
    ctx.write_journal(JOURNAL_K0SCTL, running.record()).await?;
    let _grace = ctx.stop_grace(K0SCTL_GRACE + Duration::from_millis(500), "k0sctl apply");
    running
        .wait_until(ctx.cancelled(), |n| ctx.progress(format!("{n:?}")))
        .await
        .map_err(|e| {
            if ctx.is_cancelled() {
                StepError::interrupted(format!("k0sctl apply stopped: {e}"))
            } else {
                StepError::transient(format!("k0sctl apply failed: {e}")).with_remedy(
                    "see k0sctl's message above (its full log is ~/.cache/k0sctl/k0sctl.log); \
                     `k0rdent deploy` runs it again",
                )
            }
        })?;
    let first = input
        .hosts
        .iter()
        .find(|h| h.role.is_controller() && !h.reset)
        .ok_or_else(|| StepError::permanent("no controller"))?;
    let api_url = format!(
        "https://{}",
        std::net::SocketAddr::new(first.ssh_address, 6443)
    );
    let out = Command::new(&k0sctl.path)
        .arg("kubeconfig")
        .arg("--config")
        .arg(&config)
        .env("SSH_KNOWN_HOSTS", known_hosts.as_os_str())
        .timeout(Duration::from_secs(120))
        .run()
        .await
        .map_err(|e| StepError::transient(format!("k0sctl kubeconfig: {e}")))?;
    let adopted = adopt(&Secret::new(out.stdout), &input.cluster_id, &api_url)
        .map_err(|e| StepError::transient(e.to_string()))?;
    s.store
        .write_file(KUBECONFIG_FILE, adopted.text.expose().as_bytes(), 0o600)
        .map_err(|e| StepError::permanent(format!("writing the kubeconfig: {e}")))?;
    // Which VM each node was when k0s was installed on it: a later replace is recognised.
    // The nodes k0sctl reset are no longer hosts of any configuration.
    let reset: Vec<String> = input.leaving().map(|h| h.name.clone()).collect();
    ctx.update_state(move |st| {
        for n in st.nodes.values_mut() {
            if let Some(vm) = n.vm_id.clone() {
                n.attributes.insert(K0S_VM_ID.to_owned(), vm.into());
            }
        }
        for name in &reset {
            if let Some(n) = st.nodes.get_mut(name) {
                n.attributes.insert(K0S_RESET.to_owned(), true.into());
            }
        }
    })
    .await?;
    Ok(StepOutcome::done(
        Outputs::new()
            .with("api_url", adopted.api_url.clone())
            .with("ca_fingerprint", adopted.ca_fingerprint.clone())
            .with("k0s_version", input.k0s_version.clone()),
        Evidence::new()
            .with("api", adopted.api_url)
            .with("k0s_version", &input.k0s_version)
            .with(K0S_CONFIG, k0s_block_digest(&input.k0s_version)),
    ))
}
