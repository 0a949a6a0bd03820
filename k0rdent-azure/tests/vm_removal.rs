//! Scale-down at the library level: `AzureDeployment::remove_vm` called from a step run by
//! the real engine against the ARM emulator over HTTP. It deletes one VM with its NIC, public
//! IP and OS disk (and nothing else), refuses a VM that is another deployment's, and resumes an
//! interrupted removal by polling instead of deleting twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Lab, writes};
use k0rdent_azure::AzureDeployment;
use k0rdent_azure::names::types;
use k0rdent_azure::steps::converge::{self, Progress};
use k0rdent_core::state::{Journal, RunOutcome, Status};
use k0rdent_core::step::JournalError;
use k0rdent_core::{
    Engine, Evidence, MemoryStore, Observation, Outputs, Pipeline, Snapshot, Step, StepContext,
    StepError, StepId, StepOutcome, StepRecord, Teardown,
};

const KEPT: &str = "k0s-controller-1";
const REMOVED: &str = "k0s-worker-1";

/// A step that removes one VM through `remove_vm`.
struct RemoveVm {
    id: StepId,
    azure: AzureDeployment,
    vm: String,
}

#[async_trait]
impl Step for RemoveVm {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn check_journal(&self, journal: &Journal) -> Result<(), JournalError> {
        converge::check_journal(journal)
    }

    fn observe(&self, _: &Snapshot, _: Option<&StepRecord>) -> Observation {
        Observation::absent(format!("VM {} is to be removed", self.vm))
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        match self.azure.remove_vm(ctx, &self.vm).await? {
            Progress::Ready(()) => Ok(StepOutcome::done(Outputs::new(), Evidence::new())),
            Progress::Wait(after, why) => Ok(StepOutcome::pending(after, why)),
        }
    }

    async fn teardown(&self, _: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::nothing("a test step"))
    }
}

fn removal_id() -> StepId {
    StepId::parse("remove_vm").unwrap()
}

/// An engine running only the removal of `vm`, on `store`.
fn removal_engine(azure: &AzureDeployment, store: &MemoryStore, vm: &str) -> Engine {
    let pipeline = Pipeline::builder()
        .step(RemoveVm {
            id: removal_id(),
            azure: azure.clone(),
            vm: vm.to_owned(),
        })
        .build()
        .unwrap();
    Engine::builder(pipeline, Arc::new(store.clone()))
        .stop_grace(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// A VM's public IP, NIC and OS disk names (ours).
fn parts(vm: &str) -> [(&'static str, String); 4] {
    [
        (types::VM, vm.to_owned()),
        (types::NIC, format!("{vm}-nic")),
        (types::PUBLIC_IP, format!("{vm}-pip")),
        (types::DISK, format!("{vm}-osdisk")),
    ]
}

async fn deployed(lab: &Lab) -> AzureDeployment {
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    for vm in [KEPT, REMOVED] {
        for (rtype, name) in parts(vm) {
            assert!(lab.emu.resource(rtype, &name).is_some(), "{rtype}/{name}");
        }
    }
    azure
}

fn assert_kept(lab: &Lab) {
    for (rtype, name) in parts(KEPT) {
        assert!(
            lab.emu.resource(rtype, &name).is_some(),
            "{rtype}/{name} was touched"
        );
    }
    assert_eq!(lab.emu.vm(KEPT).unwrap().power_state, "running");
}

fn assert_removed(lab: &Lab) {
    for (rtype, name) in parts(REMOVED) {
        assert!(
            lab.emu.resource(rtype, &name).is_none(),
            "{rtype}/{name} is still there"
        );
    }
}

#[tokio::test]
async fn a_vm_is_removed_with_its_nic_public_ip_and_os_disk_and_nothing_else() {
    let lab = Lab::new(1, 1).await;
    let azure = deployed(&lab).await;
    // Azure's rules from here on: the NIC stays reserved a moment after its VM is deleted,
    // operation URLs expire as soon as their operation ends.
    lab.emu.faults().azure_rules(Duration::from_millis(300));
    let mark = lab.emu.log().len();
    let store = MemoryStore::new();
    let r = removal_engine(&azure, &store, REMOVED)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    assert_removed(&lab);
    assert_kept(&lab);
    let w = writes(&lab.emu.log().since(mark));
    let accepted: Vec<String> = lab
        .emu
        .log()
        .since(mark)
        .iter()
        .filter(|e| e.mutating && e.status / 100 == 2)
        .map(|e| format!("{} {}", e.method, e.path.rsplit('/').next().unwrap_or("")))
        .collect();
    // One accepted DELETE per part, in Azure's order (the OS disk went with the VM: it is
    // created with `deleteOption: Delete`).
    assert_eq!(
        accepted,
        [
            format!("DELETE {REMOVED}"),
            format!("DELETE {REMOVED}-nic"),
            format!("DELETE {REMOVED}-pip"),
        ],
        "{w:#?}"
    );
    // The NIC's reservation for the deleted VM was waited out, not failed on.
    let refused_nic = lab
        .emu
        .log()
        .since(mark)
        .iter()
        .filter(|e| e.method == "DELETE" && e.path.ends_with("-nic") && e.status == 400)
        .count();
    assert_eq!(refused_nic, 1, "{w:#?}");
    assert!(w.iter().all(|l| l.starts_with("DELETE ")), "{w:#?}");
    assert!(w.iter().all(|l| l.contains(REMOVED)), "{w:#?}");
    let st = store.state().unwrap();
    assert_eq!(st.status(&removal_id()), Status::Completed);
}

#[tokio::test]
async fn a_vm_another_deployment_owns_is_refused_and_nothing_is_deleted() {
    let lab = Lab::new(1, 1).await;
    let azure = deployed(&lab).await;
    // The worker now carries another cluster's id.
    let client = lab.emu.client();
    let path = azure.names().resource_id(types::VM, REMOVED);
    let mut tags = lab.emu.resource(types::VM, REMOVED).unwrap()["tags"].clone();
    tags["cluster-id"] = "someone-else".into();
    client
        .patch(
            &path,
            k0rdent_azure::api::COMPUTE,
            &serde_json::json!({ "tags": tags }),
        )
        .await
        .unwrap();
    for _ in 0..200 {
        if lab.emu.vm(REMOVED).unwrap().provisioning_state == "Succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        lab.emu.resource(types::VM, REMOVED).unwrap()["tags"]["cluster-id"],
        "someone-else"
    );

    let mark = lab.emu.log().len();
    let store = MemoryStore::new();
    let r = removal_engine(&azure, &store, REMOVED)
        .deploy()
        .await
        .unwrap();
    assert_eq!(r.outcome, RunOutcome::Failed, "{r:#?}");
    let rec = store
        .state()
        .unwrap()
        .record(&removal_id())
        .cloned()
        .unwrap();
    let err = rec.last_error.unwrap_or_default();
    assert!(err.contains(&format!("VM {REMOVED}")), "{err}");
    assert!(err.contains("cluster-id=someone-else"), "{err}");
    assert!(err.contains("refusing to delete"), "{err}");
    assert!(rec.attempts <= 1, "a permanent refusal is not retried");
    let w = writes(&lab.emu.log().since(mark));
    assert!(w.is_empty(), "{w:#?}");
    for vm in [KEPT, REMOVED] {
        for (rtype, name) in parts(vm) {
            assert!(lab.emu.resource(rtype, &name).is_some(), "{rtype}/{name}");
        }
    }
}

#[tokio::test]
async fn an_interrupted_removal_resumes_by_polling_without_a_second_vm_delete() {
    let lab = Lab::with(
        common::fast_emulator().operation_duration(Duration::from_millis(600)),
        k0rdent_arm_emulator::fixtures::spec(common::CLUSTER, 1, 1),
    )
    .await;
    let azure = deployed(&lab).await;
    let store = MemoryStore::new();
    let mark = lab.emu.log().len();
    let vm_delete = |l: &[k0rdent_arm_emulator::LoggedRequest]| {
        l.iter()
            .skip(mark)
            .filter(|e| {
                e.method == "DELETE"
                    && e.path.ends_with(&format!("virtualMachines/{REMOVED}"))
                    && e.status == 202
            })
            .count()
    };

    let engine = Arc::new(removal_engine(&azure, &store, REMOVED));
    let e2 = engine.clone();
    let run = tokio::spawn(async move { e2.deploy().await });
    let accepted = lab
        .emu
        .log()
        .wait_for(Duration::from_secs(20), |l| vm_delete(l) == 1)
        .await;
    assert!(accepted, "the VM DELETE was never accepted");
    engine.cancellation().cancel("test interrupt");
    let first = run.await.unwrap().unwrap();
    assert_eq!(first.outcome, RunOutcome::Interrupted, "{first:#?}");
    let rec = store
        .state()
        .unwrap()
        .record(&removal_id())
        .cloned()
        .unwrap();
    assert_eq!(rec.status, Status::InProgress);
    let op = rec
        .journal
        .latest(&format!("arm/remove/{REMOVED}/vm"))
        .expect("the VM delete is journaled");
    assert_eq!(op.value["phase"], "accepted", "{:?}", op.value);
    assert!(
        rec.journal
            .latest(&format!("remove/{REMOVED}/names"))
            .is_some(),
        "the names are journaled"
    );

    // A new engine (a new process) resumes: it polls the operation, it does not delete again.
    let resumed = removal_engine(&azure, &store, REMOVED);
    let mark2 = lab.emu.log().len();
    let second = resumed.deploy().await.unwrap();
    assert_eq!(second.outcome, RunOutcome::Succeeded, "{second:#?}");
    let all = lab.emu.log().entries();
    let vm_deletes = all
        .iter()
        .skip(mark)
        .filter(|e| e.method == "DELETE" && e.path.ends_with(&format!("virtualMachines/{REMOVED}")))
        .count();
    assert_eq!(vm_deletes, 1, "{:#?}", writes(&all[mark..]));
    let polls = lab
        .emu
        .log()
        .since(mark2)
        .iter()
        .filter(|e| e.path.contains("/operations/"))
        .count();
    assert!(polls >= 1, "the resumed run polled the operation");
    assert_removed(&lab);
    assert_kept(&lab);
}
