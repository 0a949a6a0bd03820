//! The optional phases (Azure children, Azure CSI, KOF) that this build does not implement yet. They are part of
//! the pipeline so plans show them, optional ones are disabled or enabled from the
//! configuration, and enabled ones plan as blocked — never as done.

use async_trait::async_trait;
use k0rdent_core::{
    Observation, Snapshot, Step, StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
    step::Availability,
};

use super::k0rdent::INSTALL_K0RDENT_ID;
use super::k0s::INSTALL_K0S_ID;
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
        .with_remedy("turn it off in the configuration, or deploy with --until install_k0rdent"))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing(
            "not implemented in this build, so it never made anything",
        ))
    }
}

const SETUP_AZURE_CHILDREN: StepId = StepId::from_static("setup_azure_children");
const INSTALL_AZURE_CSI: StepId = StepId::from_static("install_azure_csi");
const INSTALL_KOF_MOTHERSHIP: StepId = StepId::from_static("install_kof_mothership");
const INSTALL_KOF_REGIONAL: StepId = StepId::from_static("install_kof_regional");

/// The later phases, with the optional ones enabled per `config`.
pub fn phases(config: &Config) -> Vec<LaterPhase> {
    let on = |enabled: bool, key: &str| {
        if enabled {
            None
        } else {
            Some(format!("{key} is false in the configuration"))
        }
    };
    let shape: [(StepId, StepId, Option<String>); 4] = [
        (
            SETUP_AZURE_CHILDREN,
            INSTALL_K0RDENT_ID,
            on(config.azure_children, "azure_children.enabled"),
        ),
        (
            INSTALL_AZURE_CSI,
            INSTALL_K0S_ID,
            on(config.azure_csi, "azure_csi.enabled"),
        ),
        (
            INSTALL_KOF_MOTHERSHIP,
            INSTALL_K0RDENT_ID,
            on(config.kof.enabled, "kof.enabled"),
        ),
        (
            INSTALL_KOF_REGIONAL,
            INSTALL_KOF_MOTHERSHIP,
            on(config.kof.enabled, "kof.enabled"),
        ),
    ];
    shape
        .into_iter()
        .map(|(id, dep, disabled)| LaterPhase {
            id,
            deps: vec![dep],
            disabled,
        })
        .collect()
}
