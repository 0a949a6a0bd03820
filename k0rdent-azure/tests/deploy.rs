//! Must-show 1: the Azure steps and observer driven through the real engine against the ARM
//! emulator.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{Lab, writes};
use k0rdent_core::{
    Remedy, StepId,
    plan::Decision,
    state::{RunOutcome, Status},
};

#[tokio::test]
async fn a_fresh_three_controller_two_worker_deployment_is_created_once() {
    let lab = Lab::new(3, 2).await;
    let azure = lab.azure();
    let (engine, _sink) = lab.engine(&azure, false);
    let report = engine.deploy().await.expect("deploy runs");
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    let w = writes(&lab.emu.log().entries());
    let count = |p: &str| w.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(count("PUT resourceGroups/"), 1, "{w:#?}");
    assert_eq!(count("PUT networkSecurityGroups/"), 1, "{w:#?}");
    assert_eq!(count("PUT virtualNetworks/"), 1, "{w:#?}");
    assert_eq!(count("PUT publicIPAddresses/"), 5, "{w:#?}");
    assert_eq!(count("PUT networkInterfaces/"), 5, "{w:#?}");
    assert_eq!(count("PUT virtualMachines/"), 5, "{w:#?}");
    assert_eq!(count("PATCH disks/"), 5, "{w:#?}");
    assert_eq!(w.len(), 23, "{w:#?}");
    let st = lab.state();
    for vm in &lab.spec.vms {
        let id = StepId::parse(&format!("create_vms/{}", vm.name)).unwrap();
        assert_eq!(st.status(&id), Status::Completed);
        let emu_vm = lab.emu.vm(&vm.name).expect("vm exists");
        assert_eq!(emu_vm.power_state, "running");
        let node = &st.nodes[&vm.name];
        assert_eq!(node.vm_id.as_deref(), Some(emu_vm.vm_id.as_str()));
        assert_eq!(node.public_ip, emu_vm.public_ip.map(|i| i.to_string()));
        let rec = st.record(&id).unwrap();
        let ev = &rec.evidence.as_ref().unwrap().facts;
        assert_eq!(ev.get("vm_id"), Some(emu_vm.vm_id.as_str()));
        assert!(ev.get("public_ip").unwrap().starts_with("127.1."));
        assert_eq!(emu_vm.custom_data.expose(), vm.custom_data.expose());
    }
    assert_eq!(
        st.azure.as_ref().unwrap().subscription_id,
        lab.emu.subscription_id()
    );
}

fn sid(s: &str) -> StepId {
    StepId::parse(s).unwrap()
}

#[tokio::test]
async fn a_rerun_with_everything_present_makes_no_mutating_request() {
    let lab = Lab::new(3, 2).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let mark = lab.emu.log().len();
    let again = engine.deploy().await.unwrap();
    assert_eq!(again.outcome, RunOutcome::Succeeded);
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
    assert!(
        again
            .initial_plan
            .entries
            .iter()
            .all(|e| e.decision == Decision::Skip)
    );
    assert_eq!(lab.emu.log().mutating_since(mark).len(), 0);
    // One bulk observation: a fixed number of reads, whatever the VM count.
    let reads = lab.emu.log().since(mark).len();
    assert!(reads <= 8, "a no-op rerun took {reads} requests");
}

#[tokio::test]
async fn a_vm_deleted_behind_our_back_is_detected_and_only_it_is_recreated() {
    use k0rdent_azure::names::types;
    let lab = Lab::new(3, 2).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let before: Vec<_> = lab
        .spec
        .vms
        .iter()
        .map(|v| lab.emu.vm(&v.name).unwrap().vm_id)
        .collect();
    // controller-2: only the VM (its OS disk goes with it); worker-1: VM, NIC and IP.
    assert!(lab.emu.delete_resource(types::VM, "k0s-controller-2"));
    assert!(lab.emu.delete_resource(types::VM, "k0s-worker-1"));
    assert!(lab.emu.delete_resource(types::NIC, "k0s-worker-1-nic"));
    assert!(
        lab.emu
            .delete_resource(types::PUBLIC_IP, "k0s-worker-1-pip")
    );
    let plan = engine.plan().await.unwrap();
    for e in &plan.plan.entries {
        let expect = if ["create_vms/k0s-controller-2", "create_vms/k0s-worker-1"]
            .contains(&e.step.as_str())
        {
            Decision::Rerun
        } else {
            Decision::Skip
        };
        assert_eq!(e.decision, expect, "{e:?}");
    }
    assert!(plan.has_drift());
    let mark = lab.emu.log().len();
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    assert_eq!(
        writes(&lab.emu.log().since(mark)),
        [
            "PATCH disks/k0s-controller-2-osdisk",
            "PATCH disks/k0s-worker-1-osdisk",
            "PUT networkInterfaces/k0s-worker-1-nic",
            "PUT publicIPAddresses/k0s-worker-1-pip",
            "PUT virtualMachines/k0s-controller-2",
            "PUT virtualMachines/k0s-worker-1",
        ]
    );
    for (vm, old) in lab.spec.vms.iter().zip(before) {
        let now = lab.emu.vm(&vm.name).unwrap().vm_id;
        let recreated = vm.name == "k0s-controller-2" || vm.name == "k0s-worker-1";
        assert_eq!(now != old, recreated, "{}", vm.name);
        let rec = lab.state();
        let out = &rec
            .record(&sid(&format!("create_vms/{}", vm.name)))
            .unwrap()
            .outputs;
        assert_eq!(out.get_str("vm_id"), Some(now.as_str()));
    }
}

#[tokio::test]
async fn a_deallocated_vm_is_started_and_the_vms_running_gate_reports_it_until_then() {
    use k0rdent_core::gate::{Gate, GateContext, GateVerdict};
    let lab = Lab::new(1, 2).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let gate = azure.vms_running_gate();
    let ctx = GateContext {
        step: sid("setup_vpn"),
        state: std::sync::Arc::new(lab.state()),
        watching: false,
    };
    assert!(gate.check(&ctx).await.passed());
    assert!(lab.emu.set_power_state("k0s-worker-2", "deallocated"));
    match gate.check(&ctx).await {
        GateVerdict::Fail { reason, remedy } => {
            assert!(reason.contains("k0s-worker-2 is deallocated"), "{reason}");
            assert!(remedy.unwrap().contains("k0rdent deploy"));
        }
        v => panic!("{v:?}"),
    }
    let plan = engine.plan().await.unwrap();
    let e = plan.plan.entry(&sid("create_vms/k0s-worker-2")).unwrap();
    assert_eq!(e.decision, Decision::Rerun);
    assert!(e.message.contains("deallocated"), "{}", e.message);
    let mark = lab.emu.log().len();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    assert_eq!(
        writes(&lab.emu.log().since(mark)),
        ["POST k0s-worker-2/start"]
    );
    assert_eq!(lab.emu.vm("k0s-worker-2").unwrap().power_state, "running");
    assert!(gate.check(&ctx).await.passed());
    // Starting changed no output: nothing downstream would rerun.
    assert!(report.steps.iter().all(|s| matches!(
        s.result,
        k0rdent_core::engine::StepResult::Completed {
            outputs_changed: false,
            ..
        }
    )));
}

#[tokio::test]
async fn a_vm_creation_that_ends_failed_is_deleted_only_when_confirmed() {
    use k0rdent_core::event::Event;
    let lab = Lab::new(1, 1).await;
    lab.emu.faults().fail_provisioning("k0s-worker-1", 1);
    let azure = lab.azure();

    // Without -y: the failed VM stays; nothing is deleted; the step asks for confirmation.
    let (engine, _) = lab.engine(&azure, false);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Blocked, "{report:#?}");
    let w = writes(&lab.emu.log().entries());
    assert!(!w.iter().any(|l| l.starts_with("DELETE")), "{w:#?}");
    let e = report
        .final_plan
        .entry(&sid("create_vms/k0s-worker-1"))
        .unwrap();
    assert!(
        e.message.contains("needs confirmation") && e.message.contains("provisioning"),
        "{}",
        e.message
    );
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Failed"
    );
    // `plan` shows the replace before anything runs.
    let plan = engine.plan().await.unwrap();
    let e = plan.plan.entry(&sid("create_vms/k0s-worker-1")).unwrap();
    assert_eq!(e.decision, Decision::Replace, "{}", e.message);

    // With -y: replaced once.
    let mark = lab.emu.log().len();
    let (engine, sink) = lab.engine(&azure, true);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    let w = writes(&lab.emu.log().since(mark));
    let n = |l: &str| w.iter().filter(|x| *x == l).count();
    assert_eq!(n("DELETE virtualMachines/k0s-worker-1"), 1, "{w:#?}");
    assert_eq!(n("PUT virtualMachines/k0s-worker-1"), 1, "{w:#?}");
    assert_eq!(n("PUT virtualMachines/k0s-controller-1"), 0, "{w:#?}");
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Succeeded"
    );
    assert!(
        sink.events().iter().any(|e| matches!(
            e,
            Event::StepStarted { step, decision: Decision::Replace, .. }
                if step.as_str() == "create_vms/k0s-worker-1"
        )),
        "the replace ran as planned"
    );
}

#[tokio::test]
async fn a_creation_that_fails_during_a_confirmed_run_is_replaced_and_says_so() {
    use k0rdent_core::event::Event;
    let lab = Lab::new(1, 1).await;
    lab.emu.faults().fail_provisioning("k0s-worker-1", 1);
    let azure = lab.azure();
    let (engine, sink) = lab.engine(&azure, true);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    let confirmed: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepConfirmed { step, change } if step.as_str() == "create_vms/k0s-worker-1" => {
                Some(change)
            }
            _ => None,
        })
        .collect();
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    assert!(
        confirmed[0].contains("provisioning failed"),
        "{}",
        confirmed[0]
    );
    let w = writes(&lab.emu.log().entries());
    let n = |l: &str| w.iter().filter(|x| *x == l).count();
    assert_eq!(n("PUT virtualMachines/k0s-worker-1"), 2, "{w:#?}");
    assert_eq!(n("DELETE virtualMachines/k0s-worker-1"), 1, "{w:#?}");
    assert_eq!(n("PUT virtualMachines/k0s-controller-1"), 1, "{w:#?}");
}

#[tokio::test]
async fn a_vm_that_keeps_failing_is_reported_failed_after_its_retries() {
    let lab = Lab::new(1, 1).await;
    lab.emu.faults().fail_provisioning("k0s-worker-1", 100);
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, true);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Failed);
    let failed = report
        .steps
        .iter()
        .find(|s| s.step.as_str() == "create_vms/k0s-worker-1")
        .unwrap();
    match &failed.result {
        k0rdent_core::engine::StepResult::Failed { error, .. } => {
            assert!(error.contains("OSProvisioningTimedOut"), "{error}");
            assert!(error.contains("after 3 attempts"), "{error}");
        }
        r => panic!("{r:?}"),
    }
    let st = lab.state();
    assert_eq!(st.status(&sid("create_vms/k0s-worker-1")), Status::Failed);
    assert_eq!(
        st.status(&sid("create_vms/k0s-controller-1")),
        Status::Completed
    );
}

#[tokio::test]
async fn throttling_every_third_request_still_converges_without_duplicates() {
    let lab = Lab::new(3, 2).await;
    lab.emu.faults().throttle_every(3);
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    let log = lab.emu.log().entries();
    let throttled = log.iter().filter(|e| e.status == 429).count();
    assert!(throttled >= log.len() / 4, "{throttled} of {}", log.len());
    let w = writes(&log);
    assert_eq!(w.len(), 23, "{w:#?}");
    let mut dedup = w.clone();
    dedup.dedup();
    assert_eq!(dedup, w, "a resource was written twice");
}

#[tokio::test]
async fn a_connection_dropped_after_a_put_was_accepted_leads_to_polling_not_a_second_put() {
    let lab = Lab::new(1, 1).await;
    lab.emu
        .faults()
        .drop_after_accept("PUT", "virtualMachines/k0s-worker-1", 1);
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    let log = lab.emu.log().entries();
    let puts: Vec<_> = log
        .iter()
        .filter(|e| e.method == "PUT" && e.path.ends_with("virtualMachines/k0s-worker-1"))
        .collect();
    assert_eq!(
        puts.len(),
        1,
        "the VM was PUT again after the dropped response"
    );
    assert_eq!(puts[0].status, 0, "the first PUT's response was dropped");
    let after = log
        .iter()
        .filter(|e| {
            e.seq > puts[0].seq
                && e.method == "GET"
                && e.path.ends_with("virtualMachines/k0s-worker-1")
        })
        .count();
    assert!(after >= 2, "the VM was read until it was provisioned");
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Succeeded"
    );
}

#[tokio::test]
async fn an_interrupted_run_resumes_by_polling_the_journaled_operation() {
    use std::time::Duration;
    let lab = Lab::with(
        common::fast_emulator().operation_duration(Duration::from_millis(600)),
        k0rdent_arm_emulator::fixtures::spec(common::CLUSTER, 1, 1),
    )
    .await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let engine = std::sync::Arc::new(engine);
    let e2 = engine.clone();
    let run = tokio::spawn(async move { e2.deploy().await });
    let accepted = lab
        .emu
        .log()
        .wait_for(Duration::from_secs(20), |l| {
            l.iter()
                .filter(|e| {
                    e.method == "PUT" && e.path.contains("virtualMachines/") && e.status == 201
                })
                .count()
                == 2
        })
        .await;
    assert!(accepted);
    engine.cancellation().cancel("test interrupt");
    let first = run.await.unwrap().unwrap();
    assert_eq!(first.outcome, RunOutcome::Interrupted);
    let st = lab.state();
    let rec = st.record(&sid("create_vms/k0s-worker-1")).unwrap();
    assert_eq!(rec.status, Status::InProgress);
    let op = rec.journal.latest("arm/vm").expect("operation journaled");
    assert_eq!(op.value["phase"], "accepted", "{:?}", op.value);
    // A new engine (a new process) resumes: it polls, it does not PUT again.
    let (engine2, _) = lab.engine(&lab.azure(), false);
    let mark = lab.emu.log().len();
    let second = engine2.deploy().await.unwrap();
    assert_eq!(second.outcome, RunOutcome::Succeeded, "{second:#?}");
    assert!(
        second
            .initial_plan
            .entries
            .iter()
            .any(|e| e.decision == Decision::Resume)
    );
    let w = writes(&lab.emu.log().since(mark));
    assert!(
        !w.iter().any(|l| l.starts_with("PUT virtualMachines")),
        "{w:#?}"
    );
    let polls = lab
        .emu
        .log()
        .since(mark)
        .iter()
        .filter(|e| e.path.contains("/operations/"))
        .count();
    assert!(polls >= 2, "{polls}");
}

#[tokio::test]
async fn a_403_on_the_list_call_blocks_with_a_clear_message_and_writes_nothing() {
    let lab = Lab::new(1, 1).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    lab.emu
        .delete_resource(k0rdent_azure::names::types::VM, "k0s-worker-1");
    lab.emu.faults().forbid(Some("GET"), "/resources");
    let mark = lab.emu.log().len();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Blocked);
    assert!(lab.emu.log().mutating_since(mark).is_empty());
    for e in &report.initial_plan.entries {
        assert_eq!(e.decision, Decision::Blocked, "{e:?}");
    }
    let net = report.initial_plan.entry(&sid("setup_network")).unwrap();
    assert_eq!(net.observed, k0rdent_core::plan::ObservedKind::Unknown);
    assert!(
        net.message
            .contains("listing the resources of group k0rdent-t3st1234-resgrp"),
        "{}",
        net.message
    );
    assert!(
        net.message.contains("403 AuthorizationFailed"),
        "{}",
        net.message
    );
    assert!(
        net.message.contains(
            "hint: the identity lacks the permission \
             Microsoft.Resources/subscriptions/resourceGroups/resources/read"
        ),
        "{}",
        net.message
    );
    assert!(net.reason.remedy().is_some());
    let plan = engine.plan().await.unwrap();
    assert_eq!(plan.observer_failures.len(), 1);
    for (step, obs) in &plan.observations {
        assert_eq!(obs.kind(), "unknown", "{step}: never absent");
    }
}

#[tokio::test]
async fn a_changed_custom_data_plans_replace_and_replaces_only_that_vm() {
    use k0rdent_core::secret::Secret;
    let lab = Lab::new(1, 2).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let old_id = lab.emu.vm("k0s-worker-1").unwrap().vm_id;
    let mut spec = lab.spec.clone();
    let new_data = b"#cloud-config\n# changed\n".to_vec();
    spec.vms[1].custom_data = Secret::new(new_data.clone());
    let azure2 = lab.azure_for(spec);
    let (engine2, _) = lab.engine(&azure2, false);
    let plan = engine2.plan().await.unwrap();
    for e in &plan.plan.entries {
        let want = if e.step.as_str() == "create_vms/k0s-worker-1" {
            Decision::Replace
        } else {
            Decision::Skip
        };
        assert_eq!(e.decision, want, "{e:?}");
    }
    let mark = lab.emu.log().len();
    let blocked = engine2.deploy().await.unwrap();
    assert_eq!(blocked.outcome, RunOutcome::Blocked);
    assert!(lab.emu.log().mutating_since(mark).is_empty());
    let (engine3, _) = lab.engine(&azure2, true);
    let mark = lab.emu.log().len();
    assert_eq!(
        engine3.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    assert_eq!(
        writes(&lab.emu.log().since(mark)),
        [
            "DELETE virtualMachines/k0s-worker-1",
            "PATCH disks/k0s-worker-1-osdisk",
            "PUT virtualMachines/k0s-worker-1",
        ]
    );
    let vm = lab.emu.vm("k0s-worker-1").unwrap();
    assert_ne!(vm.vm_id, old_id);
    assert_eq!(vm.custom_data.expose(), &new_data);
}

#[tokio::test]
async fn an_expired_token_is_refreshed() {
    let lab = Lab::new(1, 0).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    lab.emu.expire_tokens();
    let mark = lab.emu.log().len();
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let since = lab.emu.log().since(mark);
    assert!(
        since.iter().any(|e| e.status == 401),
        "the old token was used first"
    );
    let tokens = since
        .iter()
        .filter(|e| e.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert_eq!(tokens, 1, "exactly one refresh");
    assert!(since.iter().filter(|e| e.status == 401).count() <= 6);
}

#[tokio::test]
async fn a_vm_without_a_reported_power_state_is_unknown_not_absent() {
    let lab = Lab::new(1, 1).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    lab.emu.faults().omit_power_state("k0s-worker-1", true);
    let mark = lab.emu.log().len();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Blocked);
    let e = report
        .initial_plan
        .entry(&sid("create_vms/k0s-worker-1"))
        .unwrap();
    assert_eq!(e.decision, Decision::Blocked);
    assert_eq!(e.observed, k0rdent_core::plan::ObservedKind::Unknown);
    assert!(e.message.contains("no power state"), "{}", e.message);
    assert!(lab.emu.log().mutating_since(mark).is_empty());
}

#[tokio::test]
async fn writes_are_bounded_by_the_write_concurrency() {
    use std::time::Duration;
    let lab = Lab::with(
        common::fast_emulator().latency(Duration::from_millis(30)),
        k0rdent_arm_emulator::fixtures::spec(common::CLUSTER, 3, 3),
    )
    .await;
    let client = k0rdent_azure::client::ArmClient::builder(
        &lab.emu.url(),
        &lab.emu.subscription_id(),
        lab.emu.credential(),
    )
    .write_concurrency(2)
    .build()
    .unwrap();
    let azure = k0rdent_azure::AzureDeployment::with_tuning(
        client,
        lab.spec.clone(),
        k0rdent_arm_emulator::fixtures::fast_tuning(),
    )
    .unwrap();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let max = lab.emu.log().max_concurrent_writes();
    assert!((1..=2).contains(&max), "{max} writes in flight at once");
}
