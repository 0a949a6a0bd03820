//! [`AzureObserver`]: one bulk look at the whole deployment, in a number of ARM requests that
//! does not depend on how many VMs it has.
//!
//! 1. `GET` the resource group (absent → everything absent, one request);
//! 2. in parallel: the group's resources with `$expand=provisioningState,...`, the group's VMs
//!    (model: `vmId`, size, zones), the subscription's VM power states (`statusOnly=true`),
//!    the group's public IPs, the NSG and the VNet.
//!
//! Lists are paged (`nextLink`), so the count grows only by one request per page of results.
//! Any failure other than a definite not-found fails the whole observation, which makes every
//! Azure step unknown (blocked) — never absent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use k0rdent_core::state::{CloudIdentity, DeploymentState};
use k0rdent_core::{
    Observer,
    observation::{Facts, ObserveError},
};

use k0rdent_core::remedy::Hint;

use crate::api;
use crate::client::{ArmClient, ArmError};
use crate::identity::{check_identity, current_identity};
use crate::model::{
    GenericResource, InstanceView, PublicIp, ResourceGroup, SecurityGroup, VirtualMachine,
    VirtualNetwork,
};
use crate::names::{Names, types};
use crate::spec::AzureSpec;

/// What Azure showed about one VM.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default)]
pub struct VmFact {
    /// As ARM spells it; [`AzureFacts::vms`] is keyed by its lowercase form.
    pub name: String,
    /// Azure's id for this VM instance.
    pub vm_id: Option<String>,
    pub provisioning_state: Option<String>,
    /// `running`, `deallocated`, ...; `None` when ARM reported none.
    pub power_state: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// ARM's `hardwareProfile.vmSize` (`Standard_D2s_v5`).
    pub size: Option<String>,
    /// Zone numbers as strings (`"1"`); empty for a regional VM.
    pub zones: Vec<String>,
}

/// The resource group as observed.
#[allow(missing_docs)]
#[derive(Debug, Clone)]
pub enum GroupFact {
    /// It does not exist (a definite `ResourceGroupNotFound`).
    Absent,
    Present {
        tags: BTreeMap<String, String>,
        provisioning_state: Option<String>,
    },
}

/// Everything the Azure observer saw, read by the Azure steps.
#[derive(Debug, Clone)]
pub struct AzureFacts {
    /// When [`GroupFact::Absent`], nothing else was read and every other field is empty.
    pub group: GroupFact,
    /// The group's resources by (lowercase type, lowercase name).
    pub resources: BTreeMap<(String, String), GenericResource>,
    /// VMs by lowercase name.
    pub vms: BTreeMap<String, VmFact>,
    /// Public IP addresses by lowercase resource name (`None` = not allocated).
    pub public_ips: BTreeMap<String, Option<String>>,
    /// Read in full, rules included; `None` when it does not exist.
    pub nsg: Option<SecurityGroup>,
    /// Read in full, subnets included; `None` when it does not exist.
    pub vnet: Option<VirtualNetwork>,
    /// The public IP resource name of each VM whose name is not ours (`<vm>-pip`), by
    /// lowercase VM name: an adopted VM's (see [`AzureFacts::public_ip_of`]).
    pub adopted_public_ips: BTreeMap<String, String>,
    /// ARM requests this observation took.
    pub requests: u32,
}

impl AzureFacts {
    /// A resource of `rtype` named `name`.
    pub fn resource(&self, rtype: &str, name: &str) -> Option<&GenericResource> {
        self.resources
            .get(&(rtype.to_ascii_lowercase(), name.to_ascii_lowercase()))
    }

    /// A VM by name.
    pub fn vm(&self, name: &str) -> Option<&VmFact> {
        self.vms.get(&name.to_ascii_lowercase())
    }

    /// The public IP address of VM `vm`, read from its public IP resource (ours,
    /// `<vm>-pip`, or the one an adopted VM was created with); `None` when it has none yet.
    pub fn public_ip_of(&self, vm: &str) -> Option<&str> {
        let name = self
            .adopted_public_ips
            .get(&vm.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| crate::names::VmNames::new(vm).public_ip);
        self.public_ips
            .get(&name.to_ascii_lowercase())
            .and_then(Option::as_deref)
    }

    /// Whether the group exists.
    pub fn group_exists(&self) -> bool {
        matches!(self.group, GroupFact::Present { .. })
    }
}

/// The observer name steps pass to `Snapshot::require`.
pub const OBSERVER: &str = "azure";

/// The bulk Azure observer.
#[derive(Debug, Clone)]
pub struct AzureObserver {
    client: ArmClient,
    spec: Arc<AzureSpec>,
    names: Names,
    identity: CloudIdentity,
}

impl AzureObserver {
    /// An observer of `spec`'s deployment through `client`.
    pub fn new(client: ArmClient, spec: Arc<AzureSpec>) -> Self {
        let names = Names::new(client.subscription_id(), &spec);
        let identity = current_identity(&client, &spec.location);
        AzureObserver {
            client,
            spec,
            names,
            identity,
        }
    }

    /// Observes without the identity check (the engine path checks it first).
    ///
    /// # Errors
    /// An [`ObserveError`] naming the request that failed and why.
    pub async fn gather(&self) -> Result<AzureFacts, ObserveError> {
        let count = AtomicU32::new(0);
        let n = &self.names;
        let c = &self.client;
        let fail = |what: &str, e: ArmError| {
            let hint = Hint::of(&e).map(|h| format!("; {h}")).unwrap_or_default();
            ObserveError::new(format!("{what}: {e}{hint}"))
        };
        count.fetch_add(1, Ordering::Relaxed);
        let group: Option<ResourceGroup> = c
            .get_opt(&n.group_id(), api::RESOURCES, &[])
            .await
            .map_err(|e| fail(&format!("reading resource group {}", n.group), e))?;
        let Some(group) = group else {
            return Ok(AzureFacts {
                group: GroupFact::Absent,
                resources: BTreeMap::new(),
                vms: BTreeMap::new(),
                public_ips: BTreeMap::new(),
                nsg: None,
                vnet: None,
                adopted_public_ips: self.adopted_public_ips(),
                requests: count.load(Ordering::Relaxed),
            });
        };
        let counted = |_: ()| count.fetch_add(1, Ordering::Relaxed);
        let resources_path = format!("{}/resources", n.group_id());
        let vms_path = format!("{}/providers/{}", n.group_id(), types::VM);
        let status_path = format!(
            "/subscriptions/{}/providers/{}",
            n.subscription(),
            types::VM
        );
        let ips_path = format!("{}/providers/{}", n.group_id(), types::PUBLIC_IP);
        let (resources, vms, statuses, ips, nsg, vnet) = tokio::join!(
            async {
                counted(());
                c.list::<GenericResource>(
                    &resources_path,
                    api::RESOURCES,
                    &[("$expand", "provisioningState,createdTime,changedTime")],
                )
                .await
            },
            async {
                counted(());
                c.list::<VirtualMachine>(&vms_path, api::COMPUTE, &[]).await
            },
            async {
                counted(());
                c.list::<VirtualMachine>(&status_path, api::COMPUTE, &[("statusOnly", "true")])
                    .await
            },
            async {
                counted(());
                c.list::<PublicIp>(&ips_path, api::NETWORK, &[]).await
            },
            async {
                counted(());
                c.get_opt::<SecurityGroup>(&n.nsg_id(), api::NETWORK, &[])
                    .await
            },
            async {
                counted(());
                c.get_opt::<VirtualNetwork>(&n.vnet_id(), api::NETWORK, &[])
                    .await
            },
        );
        let g = &n.group;
        let resources =
            resources.map_err(|e| fail(&format!("listing the resources of group {g}"), e))?;
        let vms = vms.map_err(|e| fail(&format!("listing the VMs of group {g}"), e))?;
        let statuses = statuses.map_err(|e| fail("listing VM power states", e))?;
        let ips = ips.map_err(|e| fail(&format!("listing the public IPs of group {g}"), e))?;
        let nsg = nsg.map_err(|e| fail(&format!("reading NSG {}", n.nsg), e))?;
        let vnet = vnet.map_err(|e| fail(&format!("reading VNet {}", n.vnet), e))?;

        // Power states: only those in our group (the list covers the whole subscription).
        let prefix = format!("{}/", n.group_id().to_ascii_lowercase());
        let mut power: BTreeMap<String, Option<String>> = BTreeMap::new();
        for s in statuses {
            if s.id.to_ascii_lowercase().starts_with(&prefix) {
                let p = s
                    .properties
                    .instance_view
                    .as_ref()
                    .and_then(InstanceView::power_state);
                power.insert(s.name.to_ascii_lowercase(), p);
            }
        }
        let vms = vms
            .into_iter()
            .map(|v| {
                let key = v.name.to_ascii_lowercase();
                let fact = VmFact {
                    power_state: power.get(&key).cloned().flatten(),
                    name: v.name,
                    vm_id: v.properties.vm_id,
                    provisioning_state: v.properties.provisioning_state,
                    tags: v.tags,
                    size: v.properties.hardware_profile.and_then(|h| h.vm_size),
                    zones: v.zones,
                };
                (key, fact)
            })
            .collect();
        Ok(AzureFacts {
            group: GroupFact::Present {
                tags: group.tags,
                provisioning_state: group.properties.provisioning_state,
            },
            resources: resources
                .into_iter()
                .map(|r| {
                    (
                        (r.rtype.to_ascii_lowercase(), r.name.to_ascii_lowercase()),
                        r,
                    )
                })
                .collect(),
            vms,
            public_ips: ips
                .into_iter()
                .map(|ip| (ip.name.to_ascii_lowercase(), ip.properties.ip_address))
                .collect(),
            nsg,
            vnet,
            adopted_public_ips: self.adopted_public_ips(),
            requests: count.load(Ordering::Relaxed),
        })
    }

    fn adopted_public_ips(&self) -> BTreeMap<String, String> {
        self.spec
            .vms
            .iter()
            .filter_map(|vm| {
                let a = vm.adopted.as_ref()?;
                Some((vm.name.to_ascii_lowercase(), a.public_ip.clone()))
            })
            .collect()
    }

    /// The spec it observes.
    pub fn spec(&self) -> &AzureSpec {
        &self.spec
    }
}

#[async_trait]
impl Observer for AzureObserver {
    fn name(&self) -> &str {
        OBSERVER
    }

    /// Only the Azure phases change what Azure shows.
    fn affected_by(&self, step: &k0rdent_core::StepId) -> bool {
        matches!(
            step.phase(),
            "prepare_deployment" | "setup_network" | "create_vms"
        )
    }

    async fn observe(&self, state: &DeploymentState) -> Result<Facts, ObserveError> {
        if let Some(recorded) = &state.azure {
            check_identity(recorded, &self.identity)
                .map_err(|e| ObserveError::new(e.to_string()))?;
        }
        let facts = self.gather().await?;
        tracing::debug!(
            requests = facts.requests,
            vms = facts.vms.len(),
            "observed Azure"
        );
        Ok(Facts::new(facts))
    }
}
