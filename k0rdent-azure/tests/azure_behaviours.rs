//! Issue #7, items 14–21: Azure behaviours the emulator models behind fault switches, and
//! what the steps do about them, through the real engine over real HTTP.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Lab, writes};
use k0rdent_arm_emulator::{LoggedRequest, fixtures};
use k0rdent_core::{
    StepId,
    event::{Event, RecordingSink},
    state::RunOutcome,
};

fn sid(s: &str) -> StepId {
    StepId::parse(s).unwrap()
}

fn retries(sink: &RecordingSink, step: &str) -> Vec<String> {
    sink.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::StepRetrying { step: s, error, .. } if s.as_str() == step => Some(error),
            _ => None,
        })
        .collect()
}

fn is_vm_write(e: &LoggedRequest, method: &str, vm: &str) -> bool {
    e.method == method && e.path.ends_with(&format!("virtualMachines/{vm}"))
}

async fn deployed(lab: &Lab) {
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
}

// Item 14 ------------------------------------------------------------------------------

#[tokio::test]
async fn the_emulator_answers_411_to_a_bodiless_post_without_a_length() {
    let lab = Lab::new(1, 0).await;
    lab.emu.faults().require_content_length(true);
    deployed(&lab).await;
    let url = format!(
        "{}/subscriptions/{}/resourceGroups/{}-resgrp/providers/Microsoft.Compute/virtualMachines/k0s-controller-1/start?api-version=2024-07-01",
        lab.emu.url(),
        lab.emu.subscription_id(),
        common::CLUSTER
    );
    let token = lab.emu.issue_token();
    // reqwest sends a POST without a body without any length, as our client did.
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 411);
    assert!(r.text().await.unwrap().contains("Length Required"));
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token.expose())
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

#[tokio::test]
async fn a_deallocated_vm_is_started_where_azure_requires_a_content_length() {
    let lab = Lab::new(1, 0).await;
    lab.emu.faults().require_content_length(true);
    deployed(&lab).await;
    assert!(lab.emu.set_power_state("k0s-controller-1", "deallocated"));
    let mark = lab.emu.log().len();
    deployed(&lab).await;
    let log = lab.emu.log().since(mark);
    assert!(
        log.iter().all(|e| e.status != 411),
        "411 Length Required: {log:#?}"
    );
    assert_eq!(writes(&log), ["POST k0s-controller-1/start"]);
    assert_eq!(
        lab.emu.vm("k0s-controller-1").unwrap().power_state,
        "running"
    );
}

// Item 16 ------------------------------------------------------------------------------

/// Deploys 1+1 with slow operations and interrupts the run as soon as both VM PUTs were
/// accepted (their operations are pending); returns once the interrupted run has ended.
async fn interrupted_with_vm_operations_pending(lab: &Lab) {
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let engine = Arc::new(engine);
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
    assert_eq!(run.await.unwrap().unwrap().outcome, RunOutcome::Interrupted);
    let st = lab.state();
    let rec = st.record(&sid("create_vms/k0s-worker-1")).unwrap();
    let op = rec.journal.latest("arm/vm").expect("operation journaled");
    assert_eq!(op.value["phase"], "accepted", "{:?}", op.value);
}

async fn until_provisioned(lab: &Lab, vm: &str) {
    for _ in 0..500 {
        if lab
            .emu
            .vm(vm)
            .is_some_and(|v| v.provisioning_state == "Succeeded")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{vm} never finished provisioning");
}

#[tokio::test]
async fn an_expired_operation_url_is_settled_by_reading_the_resource_back() {
    for status in [404, 410] {
        let lab = Lab::with(
            common::fast_emulator().operation_duration(Duration::from_millis(600)),
            fixtures::spec(common::CLUSTER, 1, 1),
        )
        .await;
        interrupted_with_vm_operations_pending(&lab).await;
        // Azure finishes the work while nobody watches, then forgets the operations.
        until_provisioned(&lab, "k0s-worker-1").await;
        lab.emu.faults().expire_operations(Duration::ZERO, status);
        let mark = lab.emu.log().len();
        let (engine, sink) = lab.engine(&lab.azure(), false);
        let r = engine.deploy().await.unwrap();
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{status}: {r:#?}");
        let log = lab.emu.log().since(mark);
        assert!(
            log.iter()
                .any(|e| e.path.contains("/operations/") && e.status == status),
            "{status}: the journaled operation URL was polled and had expired"
        );
        assert!(
            !log.iter()
                .any(|e| is_vm_write(e, "PUT", "k0s-worker-1") || e.method == "DELETE"),
            "{status}: nothing was written again: {:#?}",
            writes(&log)
        );
        assert!(retries(&sink, "create_vms/k0s-worker-1").is_empty());
        // And the run after that is a no-op: the journal is settled.
        let mark = lab.emu.log().len();
        deployed(&lab).await;
        assert!(lab.emu.log().mutating_since(mark).is_empty());
    }
}

#[tokio::test]
async fn a_401_on_the_poll_url_refreshes_the_token_and_goes_on() {
    let lab = Lab::with(
        common::fast_emulator().operation_duration(Duration::from_millis(600)),
        fixtures::spec(common::CLUSTER, 1, 1),
    )
    .await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let run = tokio::spawn(async move { engine.deploy().await });
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
    // The token the run holds expires while its operations are pending.
    lab.emu.expire_tokens();
    let mark = lab.emu.log().len();
    let r = run.await.unwrap().unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let log = lab.emu.log().since(mark);
    let first_401 = log
        .iter()
        .position(|e| e.status == 401 && e.path.contains("/operations/"))
        .unwrap_or_else(|| {
            panic!(
                "a poll met the expired token: {:#?}",
                log.iter()
                    .map(|e| format!("{} {} {}", e.method, e.path, e.status))
                    .collect::<Vec<_>>()
            )
        });
    assert!(
        log[first_401..]
            .iter()
            .any(|e| e.path.ends_with("/oauth2/v2.0/token") && e.status == 200),
        "a new token was fetched"
    );
    let w = writes(&lab.emu.log().entries());
    assert_eq!(
        w.iter()
            .filter(|l| l.starts_with("PUT virtualMachines/"))
            .count(),
        2,
        "{w:#?}"
    );
}

#[tokio::test]
async fn a_429_on_the_poll_url_honours_its_retry_after() {
    let lab = Lab::with(
        common::fast_emulator().operation_duration(Duration::from_millis(300)),
        fixtures::spec(common::CLUSTER, 1, 0),
    )
    .await;
    lab.emu
        .faults()
        .throttle(Some("GET"), "/operations/", 1, Duration::from_secs(1));
    deployed(&lab).await;
    let log = lab.emu.log().entries();
    let throttled = log
        .iter()
        .position(|e| e.status == 429 && e.path.contains("/operations/"))
        .expect("a poll was throttled");
    let again = log[throttled + 1..]
        .iter()
        .find(|e| e.path == log[throttled].path)
        .expect("the same operation was polled again");
    let waited = again.at.duration_since(log[throttled].at);
    assert!(
        waited >= Duration::from_millis(950),
        "polled again after {waited:?}, not after the Retry-After of 1 s"
    );
}

#[tokio::test]
async fn a_403_on_the_poll_url_fails_naming_the_permission_and_the_next_run_goes_on() {
    let lab = Lab::with(
        common::fast_emulator().operation_duration(Duration::from_millis(600)),
        fixtures::spec(common::CLUSTER, 1, 1),
    )
    .await;
    interrupted_with_vm_operations_pending(&lab).await;
    lab.emu.faults().forbid(Some("GET"), "/operations/");
    let (engine, _) = lab.engine(&lab.azure(), false);
    let r = engine.deploy().await.unwrap();
    assert_ne!(r.outcome, RunOutcome::Succeeded);
    let text = format!("{r:?}");
    assert!(
        text.contains("lacks the permission Microsoft.Compute/locations/operations/read"),
        "the missing permission is named in the hint: {text}"
    );
    // The journal survives; once the permission is granted the run settles it.
    lab.emu.faults().clear();
    let mark = lab.emu.log().len();
    deployed(&lab).await;
    let log = lab.emu.log().since(mark);
    assert!(!log.iter().any(|e| is_vm_write(e, "PUT", "k0s-worker-1")));
}

// Item 17 ------------------------------------------------------------------------------

#[tokio::test]
async fn another_operation_in_progress_as_a_failed_async_operation_is_waited_out_without_spending_an_attempt()
 {
    let lab = Lab::new(1, 0).await;
    deployed(&lab).await;
    assert!(lab.emu.set_power_state("k0s-controller-1", "deallocated"));
    lab.emu.faults().conflict_async("k0s-controller-1", 1);
    let mark = lab.emu.log().len();
    let (engine, sink) = lab.engine(&lab.azure(), false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    assert_eq!(
        writes(&lab.emu.log().since(mark)),
        ["POST k0s-controller-1/start", "POST k0s-controller-1/start"],
        "accepted, failed as a conflict, then sent again"
    );
    assert!(
        retries(&sink, "create_vms/k0s-controller-1").is_empty(),
        "no attempt was spent"
    );
    assert_eq!(
        lab.emu.vm("k0s-controller-1").unwrap().power_state,
        "running"
    );
}

// Item 18 ------------------------------------------------------------------------------

#[tokio::test]
async fn a_canceled_vm_creation_is_not_taken_as_success_and_is_written_again() {
    let lab = Lab::new(1, 1).await;
    lab.emu.faults().cancel_operations("k0s-worker-1", 1);
    let azure = lab.azure();
    let (engine, sink) = lab.engine(&azure, false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let retried = retries(&sink, "create_vms/k0s-worker-1");
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert!(retried[0].contains("Canceled"), "{}", retried[0]);
    let w = writes(&lab.emu.log().entries());
    let n = |l: &str| w.iter().filter(|x| *x == l).count();
    assert_eq!(n("PUT virtualMachines/k0s-worker-1"), 2, "{w:#?}");
    assert_eq!(n("DELETE virtualMachines/k0s-worker-1"), 0, "{w:#?}");
    let vm = lab.emu.vm("k0s-worker-1").unwrap();
    assert_eq!(vm.provisioning_state, "Succeeded");
    assert_eq!(vm.power_state, "running");
}

#[tokio::test]
async fn a_canceled_network_update_is_written_again_not_recorded_done() {
    let lab = Lab::new(1, 0).await;
    deployed(&lab).await;
    // Someone changed the NSG; our update of it is canceled once.
    let nsg = format!("{}-nsg", common::CLUSTER);
    let mut body = lab
        .emu
        .resource("Microsoft.Network/networkSecurityGroups", &nsg)
        .unwrap();
    body["properties"]["securityRules"] = serde_json::json!([]);
    lab.emu.insert_resource(
        &format!("{}-resgrp", common::CLUSTER),
        "Microsoft.Network/networkSecurityGroups",
        &nsg,
        body,
    );
    lab.emu.faults().cancel_operations(&nsg, 1);
    let (engine, _) = lab.engine(&lab.azure(), false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let state = lab
        .emu
        .resource("Microsoft.Network/networkSecurityGroups", &nsg)
        .unwrap();
    assert_eq!(state["properties"]["provisioningState"], "Succeeded");
    assert!(
        !state["properties"]["securityRules"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the rules were written again after the cancellation"
    );
}

// Item 21 ------------------------------------------------------------------------------

#[tokio::test]
async fn a_retry_after_beyond_the_clients_cap_is_honoured_without_spending_an_attempt() {
    // The client sleeps at most 100 ms per retry (fixtures::fast_retry); Azure asks for 2 s.
    let lab = Lab::new(1, 0).await;
    let vm = "virtualMachines/k0s-controller-1";
    lab.emu
        .faults()
        .throttle(Some("GET"), vm, 1, Duration::from_secs(2));
    lab.emu
        .faults()
        .throttle(Some("PUT"), vm, 1, Duration::from_secs(2));
    let (engine, sink) = lab.engine(&lab.azure(), false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    assert!(retries(&sink, "create_vms/k0s-controller-1").is_empty());
    let log = lab.emu.log().entries();
    for method in ["GET", "PUT"] {
        let to_vm = |e: &&LoggedRequest| e.method == method && e.path.ends_with(vm);
        let mut hits = log.iter().filter(to_vm);
        let first = hits.next().unwrap();
        assert_eq!(first.status, 429, "{method}");
        let next = hits.next().unwrap();
        let waited = next.at.duration_since(first.at);
        assert!(
            waited >= Duration::from_millis(1950),
            "{method} sent again after {waited:?}"
        );
    }
    let w = writes(&log);
    assert_eq!(
        w.iter()
            .filter(|l| *l == "PUT virtualMachines/k0s-controller-1")
            .count(),
        1,
        "{w:#?}"
    );
}

#[tokio::test]
async fn a_token_from_another_tenant_is_a_clear_error_naming_the_subscriptions_tenant() {
    let lab = Lab::new(1, 0).await;
    let tenant = "11111111-2222-4333-8444-555555555555";
    lab.emu.faults().move_subscription_to_tenant(Some(tenant));
    let (engine, _) = lab.engine(&lab.azure(), false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked, "{r:#?}");
    let text = format!("{r:?}");
    assert!(text.contains("InvalidAuthenticationTokenTenant"), "{text}");
    assert!(
        text.contains(&format!(
            "the subscription belongs to tenant {tenant}: set AZURE_TENANT_ID={tenant}"
        )),
        "{text}"
    );
    assert!(lab.emu.log().mutating_since(0).is_empty());
}

// Item 15 ------------------------------------------------------------------------------

/// The NIC PUTs that Azure refused because the NIC was still reserved.
fn nic_reserved(log: &[LoggedRequest], vm: &str) -> Vec<LoggedRequest> {
    log.iter()
        .filter(|e| is_vm_write(e, "PUT", vm) && e.status == 400)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_confirmed_replace_after_a_failed_creation_waits_out_the_nic_reservation() {
    let hold = Duration::from_secs(2);
    let lab = Lab::new(1, 1).await;
    lab.emu.faults().reserve_nics_for(Some(hold));
    lab.emu.faults().fail_provisioning("k0s-worker-1", 1);
    let azure = lab.azure();
    let (engine, sink) = lab.engine(&azure, true);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let log = lab.emu.log().entries();
    let refused = nic_reserved(&log, "k0s-worker-1");
    assert!(
        !refused.is_empty(),
        "the NIC was reserved after the failure"
    );
    let created = log
        .iter()
        .rfind(|e| is_vm_write(e, "PUT", "k0s-worker-1") && e.status == 201)
        .unwrap();
    let deleted = log
        .iter()
        .find(|e| is_vm_write(e, "DELETE", "k0s-worker-1"))
        .unwrap();
    assert!(
        created.at.duration_since(deleted.at) >= hold,
        "created again only after the reservation ended"
    );
    // Only the failed creation cost an attempt; the reservation was waited out.
    let retried = retries(&sink, "create_vms/k0s-worker-1");
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert!(retried[0].contains("OSProvisioningTimedOut"), "{retried:?}");
    assert_eq!(
        lab.emu.vm("k0s-worker-1").unwrap().provisioning_state,
        "Succeeded"
    );
}

#[tokio::test]
async fn a_vm_deleted_behind_our_back_is_recreated_once_its_nic_is_released() {
    let hold = Duration::from_secs(2);
    let lab = Lab::new(1, 0).await;
    deployed(&lab).await;
    lab.emu.faults().reserve_nics_for(Some(hold));
    assert!(
        lab.emu
            .delete_resource("Microsoft.Compute/virtualMachines", "k0s-controller-1")
    );
    let mark = lab.emu.log().len();
    let (engine, sink) = lab.engine(&lab.azure(), false);
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let log = lab.emu.log().since(mark);
    assert!(!nic_reserved(&log, "k0s-controller-1").is_empty());
    assert!(retries(&sink, "create_vms/k0s-controller-1").is_empty());
    assert!(lab.emu.vm("k0s-controller-1").is_some());
}

#[tokio::test]
async fn a_nic_reservation_longer_than_the_step_time_limit_fails_the_attempt_at_once_saying_so() {
    let lab = Lab::new(1, 0).await;
    deployed(&lab).await;
    lab.emu
        .faults()
        .reserve_nics_for(Some(Duration::from_secs(600)));
    assert!(
        lab.emu
            .delete_resource("Microsoft.Compute/virtualMachines", "k0s-controller-1")
    );
    let sink = Arc::new(RecordingSink::new());
    let pipeline = lab
        .azure()
        .add_to(k0rdent_core::Pipeline::builder())
        .build()
        .unwrap();
    let engine = Arc::new(
        k0rdent_core::Engine::builder(pipeline, lab.store.clone())
            .step_timeout(Duration::from_secs(30))
            .sink(sink.clone())
            .build()
            .unwrap(),
    );
    let e2 = engine.clone();
    let t0 = std::time::Instant::now();
    let run = tokio::spawn(async move { e2.deploy().await });
    let mut said = None;
    for _ in 0..1000 {
        if let Some(m) = retries(&sink, "create_vms/k0s-controller-1")
            .into_iter()
            .next()
        {
            said = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let said = said.expect("the attempt ended");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "it did not sit out the time limit"
    );
    assert!(said.contains("NicReservedForAnotherVm"), "{said}");
    assert!(said.contains("beyond this attempt's time limit"), "{said}");
    engine.cancellation().cancel("test done");
    run.await.unwrap().unwrap();
}

// Item 19 ------------------------------------------------------------------------------

fn resized(lab: &Lab, size: &str) -> k0rdent_azure::AzureDeployment {
    let mut spec = lab.spec.clone();
    for vm in spec.vms.iter_mut().filter(|v| v.name == "k0s-worker-1") {
        vm.size = size.into();
    }
    lab.azure_for(spec)
}

#[tokio::test]
async fn a_size_change_is_planned_as_a_restart_that_needs_confirmation_and_nothing_is_written_without_it()
 {
    let lab = Lab::new(1, 1).await;
    deployed(&lab).await;
    let azure = resized(&lab, "Standard_D8s_v5");
    let (engine, _) = lab.engine(&azure, false);
    let plan = engine.plan().await.unwrap();
    let e = plan.plan.entry(&sid("create_vms/k0s-worker-1")).unwrap();
    assert_eq!(e.decision, k0rdent_core::plan::Decision::Rerun, "{e:?}");
    assert!(e.reason.needs_confirmation(), "{e:?}");
    assert!(e.message.contains("the node restarts"), "{}", e.message);
    let other = plan
        .plan
        .entry(&sid("create_vms/k0s-controller-1"))
        .unwrap();
    assert_eq!(other.decision, k0rdent_core::plan::Decision::Skip);
    let mark = lab.emu.log().len();
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked, "{r:#?}");
    assert!(format!("{r:?}").contains("the node restarts"));
    assert!(lab.emu.log().mutating_since(mark).is_empty());
    assert_eq!(lab.emu.vm("k0s-worker-1").unwrap().size, "Standard_D4s_v5");
}

#[tokio::test]
async fn a_confirmed_size_change_deallocates_resizes_and_starts_the_vm_in_that_order() {
    let lab = Lab::new(1, 1).await;
    deployed(&lab).await;
    // Another family: Azure refuses it on the running VM's hardware cluster.
    lab.emu.faults().require_deallocation_for_resize(true);
    let before = lab.emu.vm("k0s-worker-1").unwrap();
    let azure = resized(&lab, "Standard_B2s");
    let (engine, _) = lab.engine(&azure, true);
    let mark = lab.emu.log().len();
    let r = engine.deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:#?}");
    let order: Vec<String> = lab
        .emu
        .log()
        .mutating_since(mark)
        .iter()
        .map(|e| {
            let tail: Vec<&str> = e.path.rsplit('/').take(2).collect();
            format!(
                "{} {}",
                e.method,
                tail.into_iter().rev().collect::<Vec<_>>().join("/")
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "POST k0s-worker-1/deallocate",
            "PATCH virtualMachines/k0s-worker-1",
            "POST k0s-worker-1/start",
        ]
    );
    let after = lab.emu.vm("k0s-worker-1").unwrap();
    assert_eq!(after.size, "Standard_B2s");
    assert_eq!(after.power_state, "running");
    assert_eq!(
        after.vm_id, before.vm_id,
        "resized in place, not re-created"
    );
    let rec = lab.state();
    let rec = rec.record(&sid("create_vms/k0s-worker-1")).unwrap();
    assert!(rec.journal.is_empty(), "the resize journal was settled");
    // The next run has nothing to do.
    let (engine, _) = lab.engine(&azure, false);
    let mark = lab.emu.log().len();
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    assert!(lab.emu.log().mutating_since(mark).is_empty());
}

#[tokio::test]
async fn the_emulator_refuses_a_resize_off_the_hardware_cluster_of_a_running_vm_and_restarts_it_otherwise()
 {
    let lab = Lab::new(1, 0).await;
    deployed(&lab).await;
    lab.emu.faults().require_deallocation_for_resize(true);
    let client = lab.emu.client();
    let names = k0rdent_azure::names::Names::new(&lab.emu.subscription_id(), &lab.spec);
    let path = names.resource_id("Microsoft.Compute/virtualMachines", "k0s-controller-1");
    let size =
        |s: &str| serde_json::json!({ "properties": { "hardwareProfile": { "vmSize": s } } });
    let e = client
        .patch(&path, k0rdent_azure::api::COMPUTE, &size("Standard_B2s"))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Some(&k0rdent_azure::client::ArmErrorCode::OperationNotAllowed),
        "{e}"
    );
    assert!(e.to_string().contains("current hardware cluster"), "{e}");
    client
        .patch(&path, k0rdent_azure::api::COMPUTE, &size("Standard_D4s_v5"))
        .await
        .unwrap();
    let vm = lab.emu.vm("k0s-controller-1").unwrap();
    assert_eq!(vm.restarts, 1, "a size change of a running VM restarts it");
    assert_eq!(vm.size, "Standard_D4s_v5");
}
