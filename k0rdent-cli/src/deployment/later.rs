//! The phases after `create_vms` that this build does not implement yet. They are part of
//! the pipeline so plans show them, optional ones are disabled or enabled from the
//! configuration, and enabled ones plan as blocked — never as done.

use async_trait::async_trait;
use k0rdent_core::{
    Observation, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
    step::Availability,
};

use crate::config::Config;

/// A phase without an implementation in this build.
pub struct LaterPhase {
    id: StepId,
    deps: Vec<StepId>,
    disabled: Option<String>,
}

#[async_trait]
impl Step for LaterPhase {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        self.deps.clone()
    }

    fn availability(&self) -> Availability {
        match &self.disabled {
            Some(reason) => Availability::Disabled(reason.clone()),
            None => Availability::Unavailable(format!(
                "phase {} is not implemented in this build yet",
                self.id
            )),
        }
    }

    fn observe(&self, _snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        Observation::Unobservable
    }

    async fn apply(&self, _ctx: &StepContext) -> Result<StepOutcome, StepError> {
        Err(StepError::blocked(format!(
            "phase {} is not implemented in this build yet",
            self.id
        ))
        .with_remedy("deploy with --until create_vms"))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing(
            "not implemented in this build, so it never made anything",
        ))
    }
}

fn id(s: &str) -> StepId {
    StepId::parse(s).unwrap_or_else(|_| unreachable!("fixed phase ids are valid"))
}

/// The later phases, with the optional ones enabled per `config`.
pub fn phases(config: &Config) -> Vec<LaterPhase> {
    let on = |enabled: bool, key: &str| {
        (!enabled).then(|| format!("{key} is not enabled in the configuration"))
    };
    let shape: [(&str, &[&str], Option<String>); 8] = [
        ("setup_vpn", &["create_vms"], None),
        ("connect_vpn", &["setup_vpn"], None),
        ("install_k0s", &["connect_vpn"], None),
        ("install_k0rdent", &["install_k0s"], None),
        (
            "setup_azure_children",
            &["install_k0rdent"],
            on(config.azure_children, "azure_children.enabled"),
        ),
        (
            "install_azure_csi",
            &["install_k0s"],
            on(config.azure_csi, "azure_csi.enabled"),
        ),
        (
            "install_kof_mothership",
            &["install_k0rdent"],
            on(config.kof.enabled, "kof.enabled"),
        ),
        (
            "install_kof_regional",
            &["install_kof_mothership"],
            on(config.kof.enabled, "kof.enabled"),
        ),
    ];
    shape
        .into_iter()
        .map(|(name, deps, disabled)| LaterPhase {
            id: id(name),
            deps: deps.iter().map(|d| id(d)).collect(),
            disabled,
        })
        .collect()
}
