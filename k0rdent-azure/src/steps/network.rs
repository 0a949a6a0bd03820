//! `setup_network`: the resource group, the NSG (WireGuard port only) and the VNet with its
//! subnet.
//!
//! # Guarantees
//! - The deployment's Azure identity is recorded before the first write and checked on later
//!   runs (a mismatch fails the step before anything is written).
//! - A group, NSG or VNet that exists but is not tagged with our cluster id is never adopted.
//! - Every write is journaled (see [`super::converge`]); `apply` is safe to repeat at any point.
//!
//! # Teardown
//! Deletes the resource group (and with it everything in it) after checking its `cluster-id`
//! and `created-by` tags; waits for the deletion, journaling the operation URL.

use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_core::state::{Journal, StepRecord};
use k0rdent_core::{
    Evidence, Observation, Outputs, Snapshot, Step, StepContext, StepError, StepId, StepOutcome,
    Teardown,
    fingerprint::Fingerprint,
    gate::Gate,
    step::{JournalError, StepInputs, StepPolicy},
};
use serde_json::Value;

use super::Shared;
use super::converge::{Converger, Progress};
use super::step_try::step_try;
use crate::api;
use crate::identity::{IdentityMismatch, check_identity};
use crate::model::{self, ResourceGroup, SecurityGroup, VirtualNetwork};
use crate::names::{self, TAG_CLUSTER_ID};
use crate::observe::{AzureFacts, GroupFact, OBSERVER};
use crate::resources;

fn identity_refused(e: IdentityMismatch) -> StepError {
    StepError::permanent(e.to_string()).with_source(e)
}

/// The `setup_network` step: the resource group, the NSG (WireGuard port only) and the VNet
/// with its subnet; its teardown deletes the group after checking that it is ours.
pub struct NetworkStep {
    pub(crate) id: StepId,
    pub(crate) deps: Vec<StepId>,
    pub(crate) shared: Arc<Shared>,
}

impl NetworkStep {
    fn outputs(&self) -> Outputs {
        let n = &self.shared.names;
        Outputs::new()
            .with("resource_group", n.group.clone())
            .with("location", self.shared.spec.location.clone())
            .with("vnet_id", n.vnet_id())
            .with("subnet_id", n.subnet_id())
            .with("nsg_id", n.nsg_id())
    }

    fn conv<'a>(&'a self, ctx: &'a StepContext) -> Converger<'a> {
        Converger {
            ctx,
            client: &self.shared.client,
            poll: self.shared.tuning.poll,
        }
    }

    async fn record_identity(&self, ctx: &StepContext) -> Result<(), StepError> {
        let current = self.shared.identity.clone();
        let recorded = ctx.read_state(|s| s.azure.clone()).await;
        if let Some(r) = recorded {
            // Already recorded: check without a state write.
            return check_identity(&r, &current).map_err(identity_refused);
        }
        let res = ctx
            .update_state(move |s| match &s.azure {
                None => {
                    s.azure = Some(current);
                    Ok(())
                }
                Some(r) => check_identity(r, &current),
            })
            .await?;
        res.map_err(identity_refused)
    }

    async fn ensure_group(&self, ctx: &StepContext) -> Result<Progress<()>, StepError> {
        let s = &self.shared;
        let path = s.names.group_id();
        let what = format!("resource group {}", s.names.group);
        let existing: Option<ResourceGroup> = s
            .client
            .get_opt(&path, api::RESOURCES, &[])
            .await
            .map_err(|e| e.into_step_error(&what))?;
        let body = match &existing {
            None => resources::group_body(&s.spec, None),
            Some(g) => {
                // The group itself must carry our cluster id, imported or not.
                if !names::is_ours(&g.tags, &s.spec.cluster_id) {
                    return Err(StepError::permanent(format!(
                        "{what} exists but is tagged {TAG_CLUSTER_ID}={} instead of {}; \
                         refusing to adopt a resource group this deployment did not create",
                        names::tag(&g.tags, TAG_CLUSTER_ID).unwrap_or("(none)"),
                        s.spec.cluster_id
                    ))
                    .with_remedy("choose another resource group or cluster id"));
                }
                if !model::is_terminal(g.properties.provisioning_state.as_deref()) {
                    return Err(StepError::transient(format!(
                        "{what} is {}",
                        g.properties.provisioning_state.as_deref().unwrap_or("busy")
                    ))
                    .with_remedy("wait until it is no longer being deleted, then run again"));
                }
                // An imported group keeps the Bash tool's tags.
                if s.spec.imported || resources::group_matches(&s.spec, &g.tags) {
                    return Ok(Progress::Ready(()));
                }
                resources::group_body(&s.spec, Some(&g.tags))
            }
        };
        match self
            .conv(ctx)
            .write("group", "PUT", &path, api::RESOURCES, Some(&body), &what)
            .await?
        {
            Progress::Ready(_) => Ok(Progress::Ready(())),
            Progress::Wait(d, m) => Ok(Progress::Wait(d, m)),
        }
    }

    async fn ensure(
        &self,
        ctx: &StepContext,
        key: &str,
        path: &str,
        what: &str,
        desired: &Value,
        drift: impl Fn(&Value) -> Option<String>,
    ) -> Result<Progress<()>, StepError> {
        let s = &self.shared;
        let existing: Option<Value> = s
            .client
            .get_opt(path, api::NETWORK, &[])
            .await
            .map_err(|e| e.into_step_error(what))?;
        if let Some(v) = &existing {
            let tags = serde_json::from_value(v.get("tags").cloned().unwrap_or_default())
                .unwrap_or_default();
            s.require_ours(what, &tags)?;
            let state = v
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str);
            if !model::is_terminal(state) {
                return Ok(wait(
                    self.conv(ctx).watch(key, path, api::NETWORK, what).await?,
                ));
            }
            // Failed and Canceled are terminal but not success: written again.
            if model::is_succeeded(state) && drift(v).is_none() {
                return Ok(Progress::Ready(()));
            }
        }
        Ok(wait(
            self.conv(ctx)
                .write(key, "PUT", path, api::NETWORK, Some(desired), what)
                .await?,
        ))
    }
}

fn wait(p: Progress<Option<Value>>) -> Progress<()> {
    match p {
        Progress::Ready(_) => Progress::Ready(()),
        Progress::Wait(d, m) => Progress::Wait(d, m),
    }
}

impl NetworkStep {
    async fn converge(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        self.record_identity(ctx).await?;
        let s = &self.shared;
        let n = &s.names;
        let c = self.conv(ctx);
        for (key, what) in [
            ("group", "resource group"),
            ("nsg", "NSG"),
            ("vnet", "VNet"),
        ] {
            if let Some(Progress::Wait(d, m)) = c.settle(key, what).await? {
                return Ok(StepOutcome::pending(d, m));
            }
        }
        ctx.checkpoint()?;
        step_try!(self.ensure_group(ctx).await?);
        let spec = &s.spec;
        let nsg_what = format!("NSG {}", n.nsg);
        step_try!(
            self.ensure(
                ctx,
                "nsg",
                &n.nsg_id(),
                &nsg_what,
                &resources::nsg_body(spec),
                |v| {
                    serde_json::from_value::<SecurityGroup>(v.clone())
                        .map(|g| resources::nsg_drift(spec, &g))
                        .unwrap_or_else(|e| Some(e.to_string()))
                }
            )
            .await?
        );
        let vnet_what = format!("VNet {}", n.vnet);
        step_try!(
            self.ensure(
                ctx,
                "vnet",
                &n.vnet_id(),
                &vnet_what,
                &resources::vnet_body(spec, n),
                |v| {
                    serde_json::from_value::<VirtualNetwork>(v.clone())
                        .map(|g| resources::vnet_drift(spec, n, &g))
                        .unwrap_or_else(|e| Some(e.to_string()))
                }
            )
            .await?
        );
        let evidence = Evidence::new()
            .with("resource_group", &n.group)
            .with("vnet", &n.vnet)
            .with("nsg", &n.nsg)
            .with("wireguard_port", spec.wireguard_port);
        Ok(StepOutcome::done(self.outputs(), evidence))
    }
}

#[async_trait]
impl Step for NetworkStep {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        self.deps.clone()
    }

    fn fingerprint(&self, _inputs: &StepInputs<'_>) -> Fingerprint {
        let s = &self.shared.spec;
        Fingerprint::builder()
            .input("location", &s.location)
            .input("resource_group", &self.shared.names.group)
            .input("vnet_cidr", &s.vnet_cidr)
            .input("subnet_cidr", &s.subnet_cidr)
            .input("wireguard_port", &s.wireguard_port)
            .input("tags", &names::tags(s, "network"))
            .finish()
    }

    fn gates(&self) -> Vec<Arc<dyn Gate>> {
        vec![self.shared.preflight.clone()]
    }

    fn policy(&self) -> StepPolicy {
        StepPolicy::from(self.shared.tuning.step_retry)
    }

    fn check_journal(&self, journal: &Journal) -> Result<(), JournalError> {
        super::converge::check_journal(journal)
    }

    fn observe(&self, snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        let facts = match snapshot.require::<AzureFacts>(OBSERVER) {
            Ok(f) => f,
            Err(o) => return o,
        };
        network_observation(&self.shared, facts)
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let r = self.converge(ctx).await;
        super::converge::come_back_later(ctx, &self.shared.tuning.poll, r)
    }

    async fn teardown(&self, ctx: &StepContext) -> Result<Teardown, StepError> {
        super::teardown::teardown_group(&self.shared, ctx).await?;
        Ok(Teardown::Done)
    }
}

/// How `setup_network` looks in the facts.
pub(crate) fn network_observation(s: &Shared, facts: &AzureFacts) -> Observation {
    let n = &s.names;
    let GroupFact::Present {
        tags,
        provisioning_state,
    } = &facts.group
    else {
        return Observation::absent(format!("resource group {} does not exist", n.group));
    };
    if !names::is_ours(tags, &s.spec.cluster_id) {
        return Observation::unknown(format!(
            "resource group {} exists but its {TAG_CLUSTER_ID} tag is {}, not {}: it is not this deployment's",
            n.group,
            names::tag(tags, TAG_CLUSTER_ID).unwrap_or("missing"),
            s.spec.cluster_id
        ));
    }
    if !model::is_succeeded(provisioning_state.as_deref()) {
        return Observation::partial(
            format!(
                "resource group {} is {}",
                n.group,
                provisioning_state.as_deref().unwrap_or("?")
            ),
            Evidence::new(),
        );
    }
    let Some(nsg) = &facts.nsg else {
        return Observation::partial(format!("NSG {} is missing", n.nsg), Evidence::new());
    };
    if let Some(d) = resources::nsg_drift(&s.spec, nsg) {
        return Observation::partial(d, Evidence::new());
    }
    let Some(vnet) = &facts.vnet else {
        return Observation::partial(format!("VNet {} is missing", n.vnet), Evidence::new());
    };
    if let Some(d) = resources::vnet_drift(&s.spec, n, vnet) {
        return Observation::partial(d, Evidence::new());
    }
    for (what, state) in [
        ("NSG", nsg.properties.provisioning_state.as_deref()),
        ("VNet", vnet.properties.provisioning_state.as_deref()),
    ] {
        if !model::is_succeeded(state) {
            return Observation::partial(
                format!("{what} is {}", state.unwrap_or("?")),
                Evidence::new(),
            );
        }
    }
    Observation::done(
        Evidence::new()
            .with("resource_group", &n.group)
            .with("vnet", &n.vnet)
            .with("nsg", &n.nsg)
            .with("wireguard_port", s.spec.wireguard_port),
    )
}
