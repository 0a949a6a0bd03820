//! The k0rdent-on-Azure deployment: configuration → prepared local facts → the pipeline of
//! `prepare_deployment`, `setup_network`, `create_vms/<vm>` and the later phases.

mod azure;
mod credentials;
pub mod k0rdent;
pub mod k0s;
mod later;
pub mod missing_keys;
pub mod nodes;
pub mod prepare;
mod preview;
mod remove_nodes;
mod removed;
mod unseen;
pub mod vpn;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use k0rdent_azure::client::ArmClient;
use k0rdent_core::{FileStore, Pipeline, state::DeploymentState, store::StateStore};

use crate::config::{self, Loaded};
use crate::error::CliError;
use crate::pipeline::{Deployment, Mode, PipelineFactory};
use crate::request::Request;

pub(crate) use azure::connect_with;
pub use azure::{ARM_ENDPOINT_ENV, AzureAccess};
pub use removed::removed_nodes;

/// Builds the k0rdent-on-Azure pipeline from `--config` (or the configuration the deployment
/// was last run with) and Azure access (by default from the environment).
#[derive(Debug, Default)]
pub struct K0rdentFactory {
    access: Option<AzureAccess>,
    /// The client [`PipelineFactory::preflight`] connected (its token checked), for the
    /// `deployment` that follows.
    connected: Mutex<Option<ArmClient>>,
}

impl K0rdentFactory {
    /// Azure access from the environment, read when a command runs.
    pub fn from_env() -> Self {
        K0rdentFactory::default()
    }

    /// Explicit Azure access (embedders, the lab).
    pub fn with_access(access: AzureAccess) -> Self {
        K0rdentFactory {
            access: Some(access),
            connected: Mutex::new(None),
        }
    }

    fn access(&self) -> AzureAccess {
        self.access.clone().unwrap_or_else(AzureAccess::from_env)
    }

    /// The client `preflight` connected, else a new one.
    async fn client(&self, loaded: &Loaded) -> Result<ArmClient, CliError> {
        let connected = self.connected.lock().ok().and_then(|mut c| c.take());
        match connected {
            Some(c) => Ok(c),
            None => azure::connect(loaded, &self.access()).await,
        }
    }
}

/// The configuration to use: `--config`, else the one recorded in the state — which must
/// still be where it was.
fn config_path(request: &Request, recorded: Option<&str>) -> Result<PathBuf, CliError> {
    match (&request.config, recorded) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(p)) => {
            let path = PathBuf::from(p);
            match std::fs::metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CliError::usage(
                    format!(
                        "the configuration this deployment was last deployed with, {p}, is no \
                         longer there (moved or deleted)"
                    ),
                    "pass --config NEW_PATH (or set K0RDENT_CONFIG) with its new location; the \
                     next deploy records that path",
                )),
                _ => Ok(path),
            }
        }
        (None, None) => Err(CliError::usage(
            "no configuration: this state directory has no deployment yet",
            "pass --config FILE (the Bash tool's YAML schema; docs/configuration.md lists every key)",
        )),
    }
}

/// The configuration, from `--config` or the state's record.
pub(crate) fn load_config(
    request: &Request,
    recorded: Option<&DeploymentState>,
) -> Result<Loaded, CliError> {
    let path = config_path(
        request,
        recorded
            .and_then(|s| s.config.as_ref())
            .map(|c| c.path.as_str()),
    )?;
    config::load(&path).map_err(CliError::Config)
}

/// The local routes, so the tunnel network can be checked against them.
async fn local_routes() -> Vec<k0rdent_ssh::os::LocalRoute> {
    match k0rdent_ssh::os::local_routes().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the local routes; the tunnel network is not checked against them");
            Vec::new()
        }
    }
}

#[async_trait]
impl PipelineFactory for K0rdentFactory {
    /// The configuration, the Azure credentials (a token is fetched), the subscription and the
    /// recorded Azure identity, all before anything is written.
    async fn preflight(
        &self,
        request: &Request,
        store: &Arc<FileStore>,
        _mode: Mode,
    ) -> Result<(), CliError> {
        let recorded = store.load().await?;
        let loaded = load_config(request, recorded.as_ref())?;
        let client = azure::connect(&loaded, &self.access()).await?;
        azure::check_recorded_identity(
            &client,
            loaded.config.azure.location.as_str(),
            recorded.as_ref(),
        )?;
        if let Ok(mut c) = self.connected.lock() {
            *c = Some(client);
        }
        Ok(())
    }

    async fn deployment(
        &self,
        request: &Request,
        store: &Arc<FileStore>,
        mode: Mode,
    ) -> Result<Deployment, CliError> {
        let recorded = store.load().await?;
        let loaded = load_config(request, recorded.as_ref())?;
        let mut notes: Vec<String> = loaded
            .warnings
            .iter()
            .map(|w| format!("warning: {w}"))
            .collect();
        if let Some(prev) = recorded.as_ref().and_then(|s| s.config.as_ref()) {
            notes.extend(crate::config::changes(prev, &loaded));
        }
        // `plan` sees what `deploy` would prepare; a new node's keys exist only in memory.
        let preview_keys = preview::PreviewKeys::new(store);
        if matches!(mode, Mode::Prepare | Mode::Preview)
            && let Some(recorded) = &recorded
        {
            removed::refuse_removal(recorded, &loaded)?;
            missing_keys::require(store, recorded, request.keys_url.as_deref()).await?;
        }
        let state = match mode {
            Mode::Prepare => prepare::ensure(store, &loaded, &local_routes().await).await?,
            Mode::Preview => {
                let recorded = recorded.unwrap_or_default();
                preview::preview(&preview_keys, &loaded, recorded, &local_routes().await).await?
            }
            Mode::ReadOnly | Mode::Locked => recorded.unwrap_or_default(),
        };
        notes.extend(azure::imported_notes(&state));
        let cluster_id = state
            .cluster_id
            .clone()
            .unwrap_or_else(|| "k0rdent-unprepared".to_owned());
        let client = self.client(&loaded).await?;
        let spec = azure::spec(&loaded, &state, &preview_keys, &cluster_id).await?;
        let vms = spec.vms.len();
        let azure = azure::deployment(client, spec, &state, vec![prepare::PREPARE_ID])?;
        let mut builder = Pipeline::builder().step(prepare::PrepareStep::new(&loaded, &state));
        builder = azure.add_to(builder);
        let privilege = vpn_privilege(request, &state, mode).await?;
        let leaving = removed::removed_nodes(&state, &loaded);
        builder = builder
            .observer(vpn::VpnObserver::new(
                store.clone(),
                k0rdent_ssh::wireguard::ProbeOptions::default(),
            ))
            .step(vpn::SetupVpnStep::new(privilege, store.keys_dir()).leaving(leaving.clone()))
            .step(vpn::ConnectVpnStep::new(privilege, store.keys_dir()));
        builder = add_cluster_layers(builder, &loaded, &state, store, &cluster_id, &leaving).await;
        if !leaving.is_empty() {
            builder = builder.step(remove_nodes::RemoveNodesStep::new(
                leaving,
                azure.clone(),
                privilege,
                store.clone(),
            ));
        }
        for phase in later::phases(&loaded.config) {
            builder = builder.step(phase);
        }
        let pipeline = builder.build().map_err(|e| {
            CliError::usage(
                format!("internal pipeline error: {e}"),
                "report this as a bug",
            )
        })?;
        Ok(Deployment {
            pipeline,
            // Every VM can be created at once; the ARM write concurrency bounds the requests.
            concurrency: vms.max(4),
            notes,
            time_limits: time_limits(&loaded.config.timeouts),
            // A deployment never prepared is planned as recorded (nothing).
            planning_state: (mode == Mode::Preview && state.cluster_id.is_some()).then_some(state),
        })
    }
}

/// The nodes and cluster layers: their observers and `install_k0s`.
async fn add_cluster_layers(
    builder: k0rdent_core::pipeline::PipelineBuilder,
    loaded: &Loaded,
    state: &DeploymentState,
    store: &Arc<FileStore>,
    cluster_id: &str,
    leaving: &std::collections::BTreeSet<String>,
) -> k0rdent_core::pipeline::PipelineBuilder {
    use crate::tools::{self, HELM, KUBECTL};
    let c = &loaded.config;
    let connect = k0rdent_ssh::ssh::ConnectOptions {
        connect_timeout: c.timeouts.ssh_connect,
        ..k0rdent_ssh::ssh::ConnectOptions::default()
    };
    let settings = k0s::K0sSettings {
        k0s_version: c.software.k0s_version.clone(),
        user: c.ssh_user.to_string(),
        store: store.clone(),
        tools: c.tools.clone(),
        connect: connect.clone(),
        leaving: leaving.clone(),
    };
    let cluster = crate::cluster::observer::ClusterObserver {
        kubeconfig: store
            .dir()
            .join(crate::cluster::kubeconfig::KUBECONFIG_FILE),
        kubectl: tools::locate(&KUBECTL, &c.tools).ok(),
        helm: tools::locate(&HELM, &c.tools).ok(),
        namespace: c.software.k0rdent_namespace.clone(),
        context: cluster_id.to_owned(),
    };
    let k0rdent_settings = k0rdent::K0rdentSettings {
        version: c.software.k0rdent_version.clone(),
        chart: c.software.k0rdent_registry.clone(),
        namespace: c.software.k0rdent_namespace.clone(),
        release_manifest: c.software.k0rdent_release_manifest.clone(),
        tools: c.tools.clone(),
        cluster: cluster.clone(),
        helm_timeout: c.timeouts.k0rdent_install_wait,
    };
    builder
        .observer(nodes::NodesObserver::new(
            store.clone(),
            c.ssh_user.to_string(),
            connect,
        ))
        .observer(cluster)
        .observer(k0s::RecordedStateObserver)
        .step(k0s::InstallK0sStep::new(settings, state, c.timeouts.cloud_init).await)
        .step(k0rdent::InstallK0rdentStep::new(k0rdent_settings))
}

/// How wg-quick and `wg set` get root: as root, nothing to ask; for `deploy` as another
/// user, sudo's credentials are validated once in the foreground (only when the VMs exist,
/// so the tunnel may have to come up), and every later call is `sudo -n`.
async fn vpn_privilege(
    request: &Request,
    state: &DeploymentState,
    mode: Mode,
) -> Result<k0rdent_ssh::wireguard::Privilege, CliError> {
    use k0rdent_ssh::wireguard::Privilege;
    if k0rdent_ssh::os::is_root() {
        return Ok(Privilege::Root);
    }
    let vms_exist = state.nodes.values().any(|n| n.public_ip.is_some());
    if mode == Mode::Prepare && vms_exist {
        crate::sudo::privilege(request.yes).await
    } else {
        Ok(Privilege::Sudo)
    }
}

pub use crate::phases::PHASES;

/// The time limit of one attempt per phase: the configuration's `timeouts.*` keys where the
/// Bash tool had one for that phase's work, plus room for what else the phase does; fixed
/// defaults elsewhere. A step that sets its own limit keeps it.
pub fn time_limits(t: &config::Timeouts) -> std::collections::BTreeMap<String, Duration> {
    const MIN: u64 = 60;
    let minutes = |m: u64| Duration::from_secs(m * MIN);
    [
        ("prepare_deployment", minutes(2)),
        ("setup_network", minutes(20)),
        // One VM: `timeouts.vm_creation_minutes`, plus Azure's NIC reservation (180 s) that a
        // replace may have to wait out.
        ("create_vms", t.vm_creation + minutes(3)),
        ("setup_vpn", minutes(5)),
        ("connect_vpn", t.wireguard_connect_wait.max(minutes(2))),
        // k0sctl installs every node, then waits for k0s.
        ("install_k0s", t.k0s_install_wait + minutes(20)),
        // helm's own `--timeout` plus the wait for the Management object.
        ("install_k0rdent", t.k0rdent_install_wait + minutes(10)),
        // Deleting the leaving nodes' VMs, NICs, public IPs and disks, one after the other.
        ("remove_nodes", minutes(30)),
        ("setup_azure_children", minutes(30)),
        ("install_azure_csi", minutes(15)),
        ("install_kof_mothership", minutes(30)),
        ("install_kof_regional", minutes(30)),
    ]
    .into_iter()
    .map(|(phase, d)| (phase.to_owned(), d))
    .collect()
}
