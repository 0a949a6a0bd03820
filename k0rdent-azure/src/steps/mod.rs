//! The Azure steps (`setup_network`, `create_vms/<vm>`), their gates and the
//! [`AzureDeployment`] that hands them, the observer and the gates to a pipeline; and
//! scale-down, [`AzureDeployment::remove_vm`], for a caller's step to drive.

pub mod converge;
mod gates;
mod network;
mod step_try;
mod teardown;
mod vm;
mod vm_removal;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k0rdent_core::state::CloudIdentity;
use k0rdent_core::{
    Observer, Step, StepError, StepId, gate::Gate, pipeline::PipelineBuilder, step::RetryPolicy,
};

pub use converge::PollConfig;
pub use gates::{PreflightGate, VmsRunningGate};
pub use network::NetworkStep;
pub use vm::VmStep;

use crate::client::ArmClient;
use crate::identity::current_identity;
use crate::names::{self, Names, TAG_CLUSTER_ID};
use crate::observe::AzureObserver;
use crate::preflight::{self, PreflightReport};
use crate::spec::{AzureSpec, SpecError};

/// The `setup_network` phase id.
pub const SETUP_NETWORK: &str = "setup_network";
/// The `create_vms` phase id.
pub const CREATE_VMS: &str = "create_vms";
/// [`SETUP_NETWORK`] as a step id.
pub const SETUP_NETWORK_ID: StepId = StepId::from_static(SETUP_NETWORK);
/// [`CREATE_VMS`] as a step id: the phase of every `create_vms/<vm>` step.
pub const CREATE_VMS_ID: StepId = StepId::from_static(CREATE_VMS);

/// Timing knobs (defaults suit Azure; tests shorten them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Engine retries of a failed step attempt (e.g. a VM whose provisioning ended `Failed`).
    pub step_retry: RetryPolicy,
    /// How long to wait between polls of an accepted ARM operation.
    pub poll: PollConfig,
    /// How long a preflight verdict is reused.
    pub preflight_ttl: Duration,
    /// Wait between checks while a reset waits for the group deletion.
    pub reset_poll: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            step_retry: RetryPolicy {
                max_attempts: 3,
                initial_delay: Duration::from_secs(10),
                max_delay: Duration::from_secs(120),
            },
            poll: PollConfig::default(),
            preflight_ttl: Duration::from_secs(300),
            reset_poll: Duration::from_secs(10),
        }
    }
}

/// What the steps share.
pub(crate) struct Shared {
    pub(crate) client: ArmClient,
    pub(crate) spec: Arc<AzureSpec>,
    pub(crate) names: Names,
    pub(crate) identity: CloudIdentity,
    pub(crate) tuning: Tuning,
    pub(crate) preflight: Arc<PreflightGate>,
    /// Whether this reset may delete the group, decided once and shared by every teardown
    /// that asks.
    pub(crate) reset_verdict: tokio::sync::OnceCell<Result<(), Arc<teardown::ResetRefusal>>>,
    pub(crate) network_id: StepId,
    /// `create_vms/<vm>` of each VM, in the spec's order.
    pub(crate) vm_ids: Vec<StepId>,
}

impl Shared {
    /// Whether a resource inside the group is this deployment's: tagged with our cluster id,
    /// or, for an imported deployment, carrying no cluster-id tag at all (the Azure CLI tagged
    /// only the group).
    pub(crate) fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        names::is_ours(tags, &self.spec.cluster_id)
            || (self.spec.imported && names::tag(tags, TAG_CLUSTER_ID).is_none())
    }

    /// Refuses to touch a resource that is not this deployment's (see [`Shared::owns`]).
    pub(crate) fn require_ours(
        &self,
        what: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), StepError> {
        if self.owns(tags) {
            return Ok(());
        }
        Err(StepError::permanent(format!(
            "{what} already exists in {}; refusing to adopt a resource this deployment did not create",
            self.foreign(tags)
        ))
        .with_remedy(format!(
            "delete or rename {what}, or choose another resource group or cluster id"
        )))
    }

    /// Reads resource `name` of `rtype` in our group; `None` when it does not exist. `what`
    /// names it in errors.
    pub(crate) async fn get(
        &self,
        rtype: &str,
        name: &str,
        what: &str,
    ) -> Result<Option<serde_json::Value>, StepError> {
        self.client
            .get_opt(
                &self.names.resource_id(rtype, name),
                crate::api::for_type(rtype),
                &[],
            )
            .await
            .map_err(|e| e.into_step_error(what))
    }

    /// "resource group G but is tagged k0rdent-cluster-id=X instead of Y": whose a resource
    /// that is not ours is.
    pub(crate) fn foreign(&self, tags: &BTreeMap<String, String>) -> String {
        format!(
            "resource group {} but is tagged {TAG_CLUSTER_ID}={} instead of {}",
            self.names.group,
            names::tag(tags, TAG_CLUSTER_ID).unwrap_or("(none)"),
            self.spec.cluster_id
        )
    }
}

/// The Azure half of a deployment: steps, observer and gates for a
/// [`Pipeline`](k0rdent_core::Pipeline), plus preflight and reset.
///
/// ```no_run
/// # async fn example(client: k0rdent_azure::client::ArmClient, spec: k0rdent_azure::spec::AzureSpec)
/// # -> Result<(), Box<dyn std::error::Error>> {
/// use k0rdent_azure::AzureDeployment;
/// let azure = AzureDeployment::new(client, spec)?;
/// let pipeline = azure.add_to(k0rdent_core::Pipeline::builder()).build()?;
/// # let _ = pipeline; Ok(()) }
/// ```
#[derive(Clone)]
pub struct AzureDeployment {
    shared: Arc<Shared>,
    network_deps: Vec<StepId>,
}

impl std::fmt::Debug for AzureDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureDeployment")
            .field("group", &self.shared.names.group)
            .field("vms", &self.shared.spec.vms.len())
            .finish()
    }
}

impl AzureDeployment {
    /// Validates `spec` and prepares the steps for it.
    ///
    /// # Errors
    /// The spec's first problem (see [`AzureSpec::validate`]).
    pub fn new(client: ArmClient, spec: AzureSpec) -> Result<Self, SpecError> {
        Self::with_tuning(client, spec, Tuning::default())
    }

    /// As [`AzureDeployment::new`], with other timings.
    ///
    /// # Errors
    /// The spec's first problem.
    pub fn with_tuning(
        client: ArmClient,
        spec: AzureSpec,
        tuning: Tuning,
    ) -> Result<Self, SpecError> {
        spec.validate()?;
        let vm_ids = spec
            .vms
            .iter()
            .map(|vm| {
                CREATE_VMS_ID
                    .item_of(&vm.name)
                    .map_err(|e| SpecError::new("cluster", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let spec = Arc::new(spec);
        let names = Names::new(client.subscription_id(), &spec);
        let identity = current_identity(&client, &spec.location);
        let preflight = Arc::new(PreflightGate::new(
            client.clone(),
            spec.clone(),
            tuning.preflight_ttl,
        ));
        Ok(AzureDeployment {
            shared: Arc::new(Shared {
                client,
                spec,
                names,
                identity,
                tuning,
                preflight,
                reset_verdict: tokio::sync::OnceCell::new(),
                network_id: SETUP_NETWORK_ID,
                vm_ids,
            }),
            network_deps: Vec::new(),
        })
    }

    /// Steps `setup_network` must wait for (e.g. `prepare_deployment`).
    #[must_use]
    pub fn network_dependencies(mut self, deps: Vec<StepId>) -> Self {
        self.network_deps = deps;
        self
    }

    #[allow(missing_docs)]
    pub fn client(&self) -> &ArmClient {
        &self.shared.client
    }

    #[allow(missing_docs)]
    pub fn spec(&self) -> &AzureSpec {
        &self.shared.spec
    }

    #[allow(missing_docs)]
    pub fn names(&self) -> &Names {
        &self.shared.names
    }

    /// The identity this deployment is recorded under on first use.
    pub fn identity(&self) -> &CloudIdentity {
        &self.shared.identity
    }

    /// `setup_network` followed by one `create_vms/<vm>` per VM.
    pub fn steps(&self) -> Vec<Arc<dyn Step>> {
        let network = self.shared.network_id.clone();
        let mut out: Vec<Arc<dyn Step>> = vec![Arc::new(NetworkStep {
            id: network.clone(),
            deps: self.network_deps.clone(),
            shared: self.shared.clone(),
        })];
        for (vm, id) in self.shared.spec.vms.iter().zip(&self.shared.vm_ids) {
            out.push(Arc::new(VmStep {
                id: id.clone(),
                network: network.clone(),
                immutable_digest: crate::resources::vm_immutable_digest(vm),
                vm: vm.clone(),
                shared: self.shared.clone(),
            }));
        }
        out
    }

    /// The bulk Azure observer.
    pub fn observer(&self) -> Arc<AzureObserver> {
        Arc::new(AzureObserver::new(
            self.shared.client.clone(),
            self.shared.spec.clone(),
        ))
    }

    /// "VMs running": passes when every VM reports `PowerState/running` (one ARM request).
    /// Put it on the phases after `create_vms`.
    pub fn vms_running_gate(&self) -> Arc<VmsRunningGate> {
        Arc::new(VmsRunningGate::new(
            self.shared.client.clone(),
            self.shared.spec.clone(),
        ))
    }

    /// The preflight gate (already on `setup_network` and every `create_vms/<vm>`).
    pub fn preflight_gate(&self) -> Arc<PreflightGate> {
        self.shared.preflight.clone()
    }

    /// Runs the preflight checks now.
    ///
    /// # Errors
    /// A request failed (the checks could not be made).
    pub async fn preflight(&self) -> Result<PreflightReport, crate::client::ArmError> {
        preflight::run(&self.shared.client, &self.shared.spec).await
    }

    /// Whether the resource group exists and is ours (for the reset confirmation).
    ///
    /// # Errors
    /// A request failed.
    pub async fn group_ownership(
        &self,
    ) -> Result<crate::reset::GroupOwnership, crate::client::ArmError> {
        crate::reset::group_ownership(&self.shared.client, &self.shared.names, &self.shared.spec)
            .await
    }

    /// Adds the steps and the observer to a pipeline.
    pub fn add_to(&self, mut builder: PipelineBuilder) -> PipelineBuilder {
        for s in self.steps() {
            builder = builder.step_arc(s);
        }
        let obs: Arc<dyn Observer> = self.observer();
        builder.observer_arc(obs)
    }

    /// The gate list to put on later phases (`vms_running`).
    pub fn later_phase_gates(&self) -> Vec<Arc<dyn Gate>> {
        vec![self.vms_running_gate()]
    }
}
