//! The phase records and warnings of an import (see [`super::mapping`]).

use chrono::{DateTime, Utc};
use k0rdent_core::state::{DeploymentState, EvidenceRecord, Outputs, Status, StepRecord};
use k0rdent_core::{Evidence, StepId};

use super::bash::{BashDir, HUB_PEER};
use crate::config::Loaded;
use crate::deployment::prepare::PREPARE;

/// The phases whose Bash `completed` becomes our `completed`, left for observation to verify.
const OBSERVED_PHASES: &[&str] = &[
    "setup_network",
    "setup_vpn",
    "connect_vpn",
    "install_k0s",
    "install_k0rdent",
];

fn completed(now: DateTime<Utc>, outputs: Outputs) -> StepRecord {
    StepRecord {
        status: Status::Completed,
        finished_at: Some(now),
        attempts: 1,
        outputs,
        ..StepRecord::default()
    }
}

/// Phase records: `prepare_deployment` completed (its keys are in `keys/` now); the others
/// the Bash tool completed, completed without recorded inputs — the next plan verifies each
/// against what it observes; one VM per `create_vms/<vm>` the Bash tool saw `Succeeded`, with
/// the addresses it saw.
pub(super) fn record_phases(bash: &BashDir, state: &mut DeploymentState, now: DateTime<Utc>) {
    let st = &bash.state;
    let mut prepare = completed(now, Outputs::new());
    prepare.evidence = Some(EvidenceRecord {
        observed_at: now,
        facts: Evidence::new().with("keys", "present"),
    });
    state.phases.insert(PREPARE.to_owned(), prepare);
    for phase in OBSERVED_PHASES {
        if st.phase(phase) == "completed" {
            state
                .phases
                .insert((*phase).to_owned(), completed(now, Outputs::new()));
        }
    }
    for (name, vm) in &st.vms {
        if vm.state.as_deref() != Some("Succeeded") {
            continue;
        }
        let Ok(id) = StepId::parse(&format!("create_vms/{name}")) else {
            continue;
        };
        let role = state
            .nodes
            .get(name)
            .map(|n| n.role.clone())
            .unwrap_or_default();
        let mut out = Outputs::new().with("role", role);
        for (key, value) in [("public_ip", &vm.public_ip), ("private_ip", &vm.private_ip)] {
            if let Some(v) = value {
                out = out.with(key, v.clone());
            }
        }
        *state.record_mut(&id) = completed(now, out);
    }
    state.summarize_phase("create_vms");
}

/// Nodes the configuration and the Bash deployment disagree about.
pub(super) fn node_warnings(bash: &BashDir, loaded: &Loaded) -> Vec<String> {
    let wanted: Vec<String> = loaded.config.nodes().into_iter().map(|n| n.name).collect();
    let mut w = Vec::new();
    for name in bash.state.peers.keys().filter(|n| *n != HUB_PEER) {
        if !wanted.contains(name) {
            w.push(format!(
                "{name} is part of the Bash deployment but not of the configuration; k0rdent \
                 does not manage its VM"
            ));
        }
    }
    for name in &wanted {
        if !bash.state.peers.contains_key(name) {
            w.push(format!(
                "{name} is in the configuration but not in the Bash deployment; `k0rdent deploy` \
                 creates it"
            ));
        }
    }
    w
}
