//! Issue #7, must show 2, at the library level: a VM whose creation failed, then a change of
//! that VM's custom data. Without confirmation: zero DELETE requests and the run is blocked on
//! the confirmation (the CLI's exit 3); with it: exactly that one VM is replaced.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Lab, writes};
use k0rdent_core::{
    plan::{Decision, Reason},
    secret::Secret,
    state::RunOutcome,
};
use k0rdent_testkit::sid;

#[tokio::test]
async fn a_failed_vm_whose_custom_data_changed_is_replaced_only_when_confirmed() {
    let lab = Lab::new(1, 2).await;
    // k0s-worker-1's creation fails (once) in the first run; without -y it stays failed.
    lab.emu.faults().fail_provisioning("k0s-worker-1", 1);
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let first = engine.deploy().await.unwrap();
    assert_ne!(first.outcome, RunOutcome::Succeeded, "{first:#?}");
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Failed"
    );

    // The configuration now gives it other custom data.
    let mut spec = lab.spec.clone();
    let new_data = b"#cloud-config\n# changed for k0s-worker-1\n".to_vec();
    spec.vms[1].custom_data = Secret::new(new_data.clone());
    assert_eq!(spec.vms[1].name, "k0s-worker-1");
    let changed = lab.azure_for(spec);

    // Without confirmation: a plan that says replace, a run that deletes nothing.
    let (engine, _) = lab.engine(&changed, false);
    let plan = engine.plan().await.unwrap().plan;
    let e = plan.entry(&sid("create_vms/k0s-worker-1")).unwrap();
    assert_eq!(e.decision, Decision::Replace, "{}", e.message);
    let mark = lab.emu.log().len();
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked);
    let since = lab.emu.log().since(mark);
    assert!(
        !since.iter().any(|e| e.method == "DELETE"),
        "{:#?}",
        writes(&since)
    );
    let e = r.final_plan.entry(&sid("create_vms/k0s-worker-1")).unwrap();
    assert!(
        matches!(&e.reason, Reason::NeedsConfirmation { .. }),
        "{e:?}"
    );
    assert!(
        e.message.contains("needs confirmation (-y)"),
        "{}",
        e.message
    );
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Failed",
        "left as it was"
    );

    // Confirmed: exactly that VM is deleted and created again, with the new custom data.
    let (engine, _) = lab.engine(&changed, true);
    let mark = lab.emu.log().len();
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let w = writes(&lab.emu.log().since(mark));
    let deletes: Vec<&String> = w.iter().filter(|l| l.starts_with("DELETE")).collect();
    assert_eq!(deletes, ["DELETE virtualMachines/k0s-worker-1"], "{w:#?}");
    let puts: Vec<&String> = w
        .iter()
        .filter(|l| l.starts_with("PUT virtualMachines"))
        .collect();
    assert_eq!(puts, ["PUT virtualMachines/k0s-worker-1"], "{w:#?}");
    let vm = lab.emu.vm("k0s-worker-1").unwrap();
    assert_eq!(vm.provisioning_state, "Succeeded");
    assert_eq!(vm.custom_data.expose(), &new_data);
}
