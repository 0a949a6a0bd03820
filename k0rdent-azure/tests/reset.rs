//! The Azure half of reset, ownership and identity checks, leftovers and conflicts.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{CLUSTER, Lab, fast_emulator};
use k0rdent_arm_emulator::fixtures;
use k0rdent_azure::names::types;
use k0rdent_azure::reset::GroupOwnership;
use k0rdent_core::{MemoryStore, StepId, plan::Decision, state::RunOutcome};
use serde_json::json;

fn sid(s: &str) -> StepId {
    StepId::parse(s).unwrap()
}

#[tokio::test]
async fn reset_deletes_our_group_and_waits_for_it() {
    let lab = Lab::new(1, 1).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    assert!(matches!(
        azure.group_ownership().await.unwrap(),
        GroupOwnership::Ours { .. }
    ));
    let report = engine.reset().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert!(!lab.emu.group_exists("k0rdent-t3st1234-resgrp"));
    assert!(lab.emu.resource_names(types::VM).is_empty());
    assert_eq!(
        report.torn_down.last().map(String::as_str),
        Some("setup_network")
    );
    let deletes = lab
        .emu
        .log()
        .mutating_since(0)
        .into_iter()
        .filter(|e| e.method == "DELETE")
        .count();
    assert_eq!(deletes, 1, "one group deletion, not one per resource");
    assert_eq!(
        azure.group_ownership().await.unwrap(),
        GroupOwnership::Absent
    );
}

#[tokio::test]
async fn reset_refuses_a_group_that_is_not_ours_and_changes_nothing() {
    let lab = Lab::new(1, 0).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    // Someone re-tagged the group.
    lab.emu.create_group(
        "k0rdent-t3st1234-resgrp",
        "westeurope",
        json!({ "cluster-id": CLUSTER, "created-by": "someone-else" }),
    );
    let before = lab.state();
    let report = engine.reset().await.unwrap();
    assert_ne!(report.outcome, RunOutcome::Succeeded);
    let (_, err) = report.failed.clone().unwrap();
    assert!(err.contains("created-by=someone-else"), "{err}");
    assert!(lab.emu.group_exists("k0rdent-t3st1234-resgrp"));
    let after = lab.state();
    assert_eq!(
        before.phases, after.phases,
        "a refused reset changed no record"
    );
    assert!(
        !lab.emu
            .log()
            .mutating_since(0)
            .iter()
            .any(|e| e.method == "DELETE")
    );
}

#[tokio::test]
async fn a_group_owned_by_another_cluster_blocks_instead_of_being_adopted() {
    let lab = Lab::new(1, 0).await;
    lab.emu.create_group(
        "k0rdent-t3st1234-resgrp",
        "westeurope",
        json!({ "cluster-id": "k0rdent-other000", "created-by": "k0rdent-deploy" }),
    );
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Blocked);
    let e = report.initial_plan.entry(&sid("setup_network")).unwrap();
    assert!(e.message.contains("not this deployment's"), "{}", e.message);
    assert!(lab.emu.log().mutating_since(0).is_empty());
}

#[tokio::test]
async fn a_leftover_disk_with_our_tags_is_cleared_and_a_foreign_one_is_a_conflict() {
    let lab = Lab::new(0, 2).await;
    let ours = json!({ "cluster-id": CLUSTER, "created-by": "k0rdent-deploy", "owner": "tester@example.com", "role": "network" });
    lab.emu
        .create_group("k0rdent-t3st1234-resgrp", "westeurope", ours.clone());
    let disk = |tags: serde_json::Value| json!({ "location": "westeurope", "tags": tags, "properties": { "diskSizeGB": 64 } });
    lab.emu.insert_resource(
        "k0rdent-t3st1234-resgrp",
        types::DISK,
        "k0s-worker-1-osdisk",
        disk(ours),
    );
    lab.emu.insert_resource(
        "k0rdent-t3st1234-resgrp",
        types::DISK,
        "k0s-worker-2-osdisk",
        disk(json!({})),
    );
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Failed, "{report:#?}");
    let st = lab.state();
    assert_eq!(
        st.status(&sid("create_vms/k0s-worker-1")),
        k0rdent_core::state::Status::Completed
    );
    let w2 = report
        .steps
        .iter()
        .find(|s| s.step.as_str() == "create_vms/k0s-worker-2")
        .unwrap();
    match &w2.result {
        k0rdent_core::engine::StepResult::Failed { error, remedy } => {
            assert!(
                error.contains("OS disk k0s-worker-2-osdisk already exists"),
                "{error}"
            );
            assert!(error.contains("refusing to adopt"), "{error}");
            assert!(remedy.is_some());
        }
        r => panic!("{r:?}"),
    }
    assert!(lab.emu.vm("k0s-worker-2").is_none());
    let deleted = lab
        .emu
        .log()
        .mutating_since(0)
        .into_iter()
        .filter(|e| e.method == "DELETE")
        .map(|e| e.path)
        .collect::<Vec<_>>();
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].ends_with("disks/k0s-worker-1-osdisk"));
}

#[tokio::test]
async fn a_run_against_another_identity_is_refused() {
    let lab = Lab::new(1, 0).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let mut state = lab.state();
    state.azure.as_mut().unwrap().subscription_id = "11111111-2222-4333-8444-555555555555".into();
    let store = MemoryStore::with_state(state);
    let pipeline = azure
        .add_to(k0rdent_core::Pipeline::builder())
        .build()
        .unwrap();
    let engine = k0rdent_core::Engine::builder(pipeline, std::sync::Arc::new(store))
        .build()
        .unwrap();
    let mark = lab.emu.log().len();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Blocked);
    let e = report.initial_plan.entry(&sid("setup_network")).unwrap();
    assert_eq!(e.decision, Decision::Blocked);
    assert!(
        e.message
            .contains("subscription 11111111-2222-4333-8444-555555555555 (this run:"),
        "{}",
        e.message
    );
    assert!(lab.emu.log().since(mark).is_empty(), "nothing is even read");
}

#[tokio::test]
async fn paged_lists_are_followed() {
    let lab = Lab::with(fast_emulator().page_size(2), fixtures::spec(CLUSTER, 3, 2)).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    let facts = azure.observer().gather().await.unwrap();
    assert_eq!(facts.vms.len(), 5);
    assert_eq!(facts.public_ips.len(), 5);
    assert_eq!(facts.resources.len(), 5 * 4 + 2);
    assert!(
        lab.emu
            .log()
            .entries()
            .iter()
            .any(|e| e.query.contains("skiptoken"))
    );
    assert!(
        facts
            .vms
            .values()
            .all(|v| v.power_state.as_deref() == Some("running"))
    );
}

#[tokio::test]
async fn observation_cost_does_not_grow_with_the_vm_count() {
    let mut counts = Vec::new();
    for workers in [1, 12] {
        let lab = Lab::with(fast_emulator(), fixtures::spec(CLUSTER, 1, workers)).await;
        let azure = lab.azure();
        let (engine, _) = lab.engine(&azure, false);
        assert_eq!(
            engine.deploy().await.unwrap().outcome,
            RunOutcome::Succeeded
        );
        let mark = lab.emu.log().len();
        let facts = azure.observer().gather().await.unwrap();
        assert_eq!(facts.vms.len(), 1 + workers);
        counts.push(lab.emu.log().len() - mark);
    }
    assert_eq!(counts[0], counts[1], "{counts:?}");
    assert_eq!(counts[0], 7);
}
