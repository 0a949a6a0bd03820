//! From the configuration and the prepared state to the Azure provider: the ARM client (its
//! credentials checked first), the typed spec (with each VM's cloud-init rendered by k0rdent-ssh) and the checks
//! that the deployment is looked for where it lives.

use k0rdent_azure::AzureDeployment;
use k0rdent_azure::client::{ArmClient, DEFAULT_ARM_ENDPOINT};
use k0rdent_azure::credential::{CredentialSettings, az_account_show};
use k0rdent_azure::endpoint::check_endpoint;
use k0rdent_azure::identity::{check_identity, current_identity};
use k0rdent_azure::spec::{AdoptedVm, AzureSpec, IMPORTED_FROM_SETTING, VmSpec};
use k0rdent_core::{secret::Secret, state::DeploymentState, store::KeyStore};
use k0rdent_ssh::wireguard::{ResolvedNetwork, node_bootstrap_from_store};
use std::collections::BTreeMap;

use super::prepare::SSH_PUBLIC_KEY;
use crate::config::Loaded;
use crate::error::CliError;

/// Overrides `azure.arm_endpoint` (the tests point it at the ARM emulator).
pub const ARM_ENDPOINT_ENV: &str = "K0RDENT_ARM_ENDPOINT";
const SUBSCRIPTION_ENV: &str = "AZURE_SUBSCRIPTION_ID";

/// Custom data of a VM whose keys do not exist yet (only `plan`/`status` on a fresh
/// deployment see it; `deploy` prepares the keys first).
const UNPREPARED: &[u8] = b"#cloud-config\n# not prepared yet\n";

/// How to reach Azure. [`AzureAccess::from_env`] reads what DESIGN.md lists; embedders and
/// the lab fill it directly.
#[derive(Debug, Clone, Default)]
pub struct AzureAccess {
    /// ARM base URL (`K0RDENT_ARM_ENDPOINT`); else `azure.arm_endpoint`, else the public cloud.
    pub endpoint: Option<String>,
    /// Subscription (`AZURE_SUBSCRIPTION_ID`); else `azure.subscription_id`, else `az`.
    pub subscription: Option<String>,
    /// Which credential is used; [`AzureAccess::from_env`] fills it from the `AZURE_*` variables.
    pub credentials: CredentialSettings,
}

impl AzureAccess {
    /// From the process environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        AzureAccess {
            endpoint: var(ARM_ENDPOINT_ENV),
            subscription: var(SUBSCRIPTION_ENV),
            credentials: CredentialSettings::from_env(),
        }
    }
}

/// The ARM client for this configuration, with its credentials checked: a token has been
/// fetched and the subscription found, so nothing needs writing before that can fail.
///
/// # Errors
/// One line naming what is missing or refused (a variable, `az login`, the endpoint).
pub async fn connect(loaded: &Loaded, access: &AzureAccess) -> Result<ArmClient, CliError> {
    let a = &loaded.config.azure;
    connect_with(
        a.arm_endpoint.as_deref(),
        a.subscription_id.as_deref(),
        a.write_concurrency,
        access,
    )
    .await
}

/// [`connect`] from the configuration's `azure.arm_endpoint`, `azure.subscription_id` and
/// `azure.write_concurrency` (all optional): `doctor` checks the credentials with or without
/// a configuration, in the same order as every other command.
///
/// # Errors
/// As [`connect`].
pub(crate) async fn connect_with(
    arm_endpoint: Option<&str>,
    subscription_id: Option<&str>,
    write_concurrency: usize,
    access: &AzureAccess,
) -> Result<ArmClient, CliError> {
    let endpoint = access
        .endpoint
        .clone()
        .or_else(|| arm_endpoint.map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_ARM_ENDPOINT.to_owned());
    let endpoint_error = |e: &dyn std::fmt::Display| {
        CliError::usage(
            format!("ARM endpoint {endpoint}: {e}"),
            "check K0RDENT_ARM_ENDPOINT or azure.arm_endpoint",
        )
    };
    let url = check_endpoint(&endpoint).map_err(|e| endpoint_error(&e))?;
    // The client's own default scope, fixed here so the checked token is the one it uses.
    let scope = format!("{}/.default", url.origin().ascii_serialization());
    let known = access
        .subscription
        .clone()
        .or_else(|| subscription_id.map(str::to_owned));
    // The `az` fallback asks for a token of this subscription's tenant (else `az`'s default
    // subscription, the one `az account show` names below).
    let mut settings = access.credentials.clone();
    settings.subscription_id.clone_from(&known);
    let credential = super::credentials::checked(&settings, &scope).await?;
    let subscription = match known {
        Some(s) => s,
        None => {
            let az = settings
                .az_command
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from("az"));
            az_account_show(&az)
                .await
                .map_err(|e| {
                    CliError::usage(
                        format!(
                            "no Azure subscription: AZURE_SUBSCRIPTION_ID and \
                             azure.subscription_id are not set, and `az account show` gave none \
                             ({})",
                            e.message
                        ),
                        "set AZURE_SUBSCRIPTION_ID (or azure.subscription_id), or run `az login` \
                         and `az account set -s SUBSCRIPTION`",
                    )
                })?
                .id
        }
    };
    ArmClient::builder(&endpoint, &subscription, credential)
        .scope(scope)
        .write_concurrency(write_concurrency)
        .build()
        .map_err(|e| endpoint_error(&e))
}

async fn custom_data(
    keys: &dyn KeyStore,
    net: Option<&ResolvedNetwork>,
    node: &str,
) -> Result<Secret<Vec<u8>>, CliError> {
    let Some(net) = net.filter(|n| n.node(node).is_some()) else {
        return Ok(Secret::new(UNPREPARED.to_vec()));
    };
    node_bootstrap_from_store(keys, net, node)
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| {
            CliError::usage(
                format!("cannot render the cloud-init of {node}: {e}"),
                crate::error::key_remedy(&e),
            )
        })
}

/// The Azure spec of this deployment; the nodes' WireGuard keys (for their custom data) come
/// from `keys`.
pub async fn spec(
    loaded: &Loaded,
    state: &DeploymentState,
    keys: &dyn KeyStore,
    cluster_id: &str,
) -> Result<AzureSpec, CliError> {
    let c = &loaded.config;
    let net = ResolvedNetwork::from_state(state).ok();
    let ssh_public_key = state
        .settings
        .get(SSH_PUBLIC_KEY)
        .and_then(|v| v.as_str())
        .unwrap_or("ssh-ed25519 AAAA-not-prepared-yet")
        .to_owned();
    let mut vms = Vec::new();
    for n in c.nodes() {
        let custom_data = custom_data(keys, net.as_ref(), &n.name).await?;
        vms.push(VmSpec {
            role: n.role,
            size: n.size.to_string(),
            zone: n.zone,
            priority: c.azure.priority,
            eviction_policy: c.azure.eviction_policy,
            image: c.azure.image.clone(),
            admin_user: c.ssh_user.to_string(),
            ssh_public_key: ssh_public_key.clone(),
            custom_data,
            os_disk_size_gb: c.azure.os_disk_size_gb,
            os_disk_type: "StandardSSD_LRS".into(),
            adopted: state
                .nodes
                .get(&n.name)
                .and_then(|r| AdoptedVm::from_attributes(&r.attributes)),
            name: n.name,
        });
    }
    let vnet_cidr = c.network.vnet.to_string().parse().map_err(|e| {
        CliError::usage(format!("network.vnet_prefix: {e}"), "fix the configuration")
    })?;
    let subnet_cidr = c.network.subnet.to_string().parse().map_err(|e| {
        CliError::usage(
            format!("network.subnet_prefix: {e}"),
            "fix the configuration",
        )
    })?;
    let spec = AzureSpec {
        cluster_id: cluster_id.to_owned(),
        location: c.azure.location.to_string(),
        resource_group: c.azure.resource_group.as_ref().map(ToString::to_string),
        vnet_cidr,
        subnet_cidr,
        // Before the WireGuard plan exists (plan/status on a fresh deployment) any valid port
        // serves: nothing exists to compare it with.
        wireguard_port: net.as_ref().map_or(51820, |n| n.port),
        owner: c.owner.clone().unwrap_or_else(default_owner),
        extra_tags: BTreeMap::new(),
        vms,
        write_concurrency: c.azure.write_concurrency,
        imported: state.settings.contains_key(IMPORTED_FROM_SETTING),
    };
    spec.validate().map_err(|e| {
        CliError::usage(
            format!("{}: {e}", loaded.path.display()),
            "fix the configuration",
        )
    })?;
    Ok(spec)
}

/// What `plan`, `status` and `deploy` say about a deployment imported from the Bash tool:
/// what it made that differs from ours and is left as it is.
pub fn imported_notes(state: &DeploymentState) -> Vec<String> {
    let Some(tool) = state
        .settings
        .get(IMPORTED_FROM_SETTING)
        .and_then(|v| v.as_str())
    else {
        return Vec::new();
    };
    vec![format!(
        "note: imported from {tool}: its NSG also opens TCP 22 to the internet (rule AllowSSH), its \
         VMs, NICs and public IPs keep the Azure CLI's names and no tags, and its VMs carry its \
         own cloud-init (not comparable: ARM never returns custom data); deploy leaves all of \
         this as it is and never replaces a VM for it"
    )]
}

/// `$USER@host`, as the Bash tool tagged resources when no owner was configured.
fn default_owner() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("{user}@{}", k0rdent_core::store::hostname())
}

/// Refuses a client that addresses another Azure identity than the recorded one.
///
/// # Errors
/// What differs and how to go back.
pub fn check_recorded_identity(
    client: &ArmClient,
    location: &str,
    state: Option<&DeploymentState>,
) -> Result<(), CliError> {
    match state.and_then(|s| s.azure.as_ref()) {
        Some(recorded) => {
            check_identity(recorded, &current_identity(client, location)).map_err(|e| {
                CliError::usage(e.to_string(), "the state belongs to another Azure identity")
            })
        }
        None => Ok(()),
    }
}

/// The provider, refusing to look for a deployment anywhere but where it was recorded.
pub fn deployment(
    client: ArmClient,
    spec: AzureSpec,
    state: &DeploymentState,
    network_deps: Vec<k0rdent_core::StepId>,
) -> Result<AzureDeployment, CliError> {
    let azure = AzureDeployment::new(client, spec)
        .map_err(|e| CliError::usage(e.to_string(), "fix the configuration"))?
        .network_dependencies(network_deps);
    if let Some(recorded) = &state.azure {
        check_identity(recorded, azure.identity()).map_err(|e| {
            CliError::usage(e.to_string(), "the state belongs to another Azure identity")
        })?;
    }
    Ok(azure)
}
