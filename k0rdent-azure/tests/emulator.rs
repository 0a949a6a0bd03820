//! The emulator's ARM semantics and the client's handling of them, over real HTTP.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::time::Duration;

use common::fast_emulator;
use k0rdent_azure::api;
use k0rdent_azure::client::{ArmClient, ArmErrorCode, PollStatus, RetryConfig};
use k0rdent_core::Remedy;
use serde_json::json;

const SUB: &str = "00000000-0000-4000-8000-000000000001";

fn group() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg1")
}

async fn setup() -> (k0rdent_arm_emulator::Emulator, ArmClient) {
    let emu = fast_emulator()
        .operation_duration(Duration::from_millis(150))
        .start()
        .await
        .unwrap();
    let c = emu.client();
    c.put(
        &group(),
        api::RESOURCES,
        &json!({ "location": "westeurope", "tags": {} }),
    )
    .await
    .unwrap();
    (emu, c)
}

#[tokio::test]
async fn put_is_idempotent_201_then_200_and_409_while_provisioning() {
    let (_emu, c) = setup().await;
    let nsg = format!(
        "{}/providers/Microsoft.Network/networkSecurityGroups/n1",
        group()
    );
    let body = json!({ "location": "westeurope", "properties": { "securityRules": [] } });
    let first = c.put(&nsg, api::NETWORK, &body).await.unwrap();
    assert_eq!(first.status, 201);
    assert_eq!(first.provisioning_state(), Some("Creating"));
    let poll = first.poll.clone().expect("Azure-AsyncOperation");
    assert_eq!(poll.kind, k0rdent_azure::client::PollKind::AsyncOperation);
    let busy = c.put(&nsg, api::NETWORK, &body).await.unwrap_err();
    assert_eq!(busy.status(), Some(409));
    assert_eq!(busy.code(), Some(&ArmErrorCode::AnotherOperationInProgress));
    assert!(matches!(
        c.poll(&poll, "nsg").await.unwrap(),
        PollStatus::InProgress { .. }
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        c.poll(&poll, "nsg").await.unwrap(),
        PollStatus::Succeeded { .. }
    ));
    let second = c.put(&nsg, api::NETWORK, &body).await.unwrap();
    assert_eq!(second.status, 200);
}

#[tokio::test]
async fn unknown_api_versions_and_expands_are_400s_and_missing_things_404s() {
    let (_emu, c) = setup().await;
    let e = c
        .get::<serde_json::Value>(&group(), "2001-01-01", &[])
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), Some(&ArmErrorCode::InvalidApiVersion));
    let e = c
        .list::<serde_json::Value>(
            &format!("{}/resources", group()),
            api::RESOURCES,
            &[("$expand", "everything")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ArmErrorCode::InvalidParameter));
    let e = c
        .list::<serde_json::Value>(
            &format!("{}/providers/Microsoft.Compute/virtualMachines", group()),
            api::COMPUTE,
            &[("$expand", "instanceView")],
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "instanceView needs a $filter");
    let missing = c
        .get_opt::<serde_json::Value>(
            &format!(
                "{}/providers/Microsoft.Compute/virtualMachines/nope",
                group()
            ),
            api::COMPUTE,
            &[],
        )
        .await
        .unwrap();
    assert!(missing.is_none());
    let e = c
        .get::<serde_json::Value>(
            &format!("/subscriptions/{SUB}/resourceGroups/nope"),
            api::RESOURCES,
            &[],
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.code(), Some(&ArmErrorCode::ResourceGroupNotFound));
}

#[tokio::test]
async fn throttling_forever_ends_with_an_error_stating_attempts_and_time() {
    let emu = fast_emulator().start().await.unwrap();
    let c = ArmClient::builder(&emu.url(), &emu.subscription_id(), emu.credential())
        .retry(RetryConfig {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(50),
            max_elapsed: Duration::from_secs(10),
        })
        .build()
        .unwrap();
    // Get a token first, then throttle everything.
    let _ = c
        .get_opt::<serde_json::Value>(&group(), api::RESOURCES, &[])
        .await;
    emu.faults().throttle_every(1);
    let mark = emu.log().len();
    let e = c
        .get::<serde_json::Value>(&group(), api::RESOURCES, &[])
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("failed after 4 attempts in"), "{text}");
    assert!(text.contains("429 TooManyRequests"), "{text}");
    assert!(e.is_transient());
    assert_eq!(emu.log().since(mark).len(), 4);
    // The emulator asked for 10 ms; the four attempts honoured it.
    let since = emu.log().since(mark);
    let waited = since.last().unwrap().at - since.first().unwrap().at;
    assert!(waited >= Duration::from_millis(30), "{waited:?}");
}

#[tokio::test]
async fn a_write_whose_connection_dropped_is_not_retried_by_the_client() {
    let (emu, c) = setup().await;
    emu.faults()
        .drop_after_accept("PUT", "networkSecurityGroups/n2", 1);
    let nsg = format!(
        "{}/providers/Microsoft.Network/networkSecurityGroups/n2",
        group()
    );
    let e = c
        .put(
            &nsg,
            api::NETWORK,
            &json!({ "location": "westeurope", "properties": {} }),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            k0rdent_azure::client::ArmError::Transport {
                maybe_sent: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(emu.log().count_to(0, "PUT", "networkSecurityGroups/n2"), 1);
    // ARM did act on it: the resource exists.
    assert!(
        c.get_opt::<serde_json::Value>(&nsg, api::NETWORK, &[])
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_immutable_vm_property_change_is_409_property_change_not_allowed() {
    use k0rdent_azure::names::Names;
    let emu = fast_emulator().start().await.unwrap();
    let spec = k0rdent_arm_emulator::fixtures::spec("k0rdent-imm00001", 1, 0);
    let lab_azure = k0rdent_azure::AzureDeployment::with_tuning(
        emu.client(),
        spec.clone(),
        k0rdent_arm_emulator::fixtures::fast_tuning(),
    )
    .unwrap();
    let pipeline = lab_azure
        .add_to(k0rdent_core::Pipeline::builder())
        .build()
        .unwrap();
    let engine = k0rdent_core::Engine::builder(
        pipeline,
        std::sync::Arc::new(k0rdent_core::MemoryStore::new()),
    )
    .build()
    .unwrap();
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        k0rdent_core::state::RunOutcome::Succeeded
    );
    let n = Names::new(&emu.subscription_id(), &spec);
    let mut vm = spec.vms[0].clone();
    vm.custom_data = k0rdent_core::secret::Secret::new(b"other".to_vec());
    let body = k0rdent_azure::resources::vm_body(&spec, &n, &vm);
    let path = n.resource_id(k0rdent_azure::names::types::VM, &vm.name);
    let e = emu
        .client()
        .put(&path, api::COMPUTE, &body)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ArmErrorCode::PropertyChangeNotAllowed));
    assert!(e.to_string().contains("customData"), "{e}");
    assert!(e.remedy().unwrap().contains("k0rdent deploy -y"));
    let mut vm = spec.vms[0].clone();
    vm.zone = Some(3);
    let body = k0rdent_azure::resources::vm_body(&spec, &n, &vm);
    let e = emu
        .client()
        .put(&path, api::COMPUTE, &body)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("zones"), "{e}");
}

#[tokio::test]
async fn a_bad_client_secret_is_a_clear_credential_error_without_the_secret() {
    let emu = fast_emulator().start().await.unwrap();
    let cred = std::sync::Arc::new(k0rdent_azure::credential::ClientSecretCredential::new(
        url::Url::parse(&emu.url()).unwrap(),
        &emu.tenant_id(),
        &emu.client_id(),
        k0rdent_core::secret::Secret::new("wrong-s3cret-value".into()),
    ));
    let c = ArmClient::builder(&emu.url(), &emu.subscription_id(), cred)
        .build()
        .unwrap();
    let e = c
        .get_opt::<serde_json::Value>(&group(), api::RESOURCES, &[])
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("wrong-s3cret-value"));
    assert!(e.remedy().unwrap().contains("AZURE_CLIENT_ID"));
}

#[tokio::test]
async fn a_federated_token_file_is_read_for_each_token() {
    let emu = fast_emulator()
        .federated_assertion("eyJhbGciOi.assertion.sig")
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "eyJhbGciOi.assertion.sig\n").unwrap();
    let cred = std::sync::Arc::new(k0rdent_azure::credential::WorkloadIdentityCredential::new(
        url::Url::parse(&emu.url()).unwrap(),
        &emu.tenant_id(),
        &emu.client_id(),
        file,
    ));
    let c = ArmClient::builder(&emu.url(), &emu.subscription_id(), cred)
        .build()
        .unwrap();
    assert!(
        c.get_opt::<serde_json::Value>(&group(), api::RESOURCES, &[])
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn links_to_other_hosts_never_get_the_token() {
    let (_emu, c) = setup().await;
    let target = k0rdent_azure::client::PollTarget {
        kind: k0rdent_azure::client::PollKind::AsyncOperation,
        url: "https://evil.example.com/op/1".into(),
    };
    let e = c.poll(&target, "x").await.unwrap_err();
    assert!(
        matches!(e, k0rdent_azure::client::ArmError::ForeignUrl { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn every_request_has_its_own_request_id_and_the_run_one_correlation_id() {
    let (emu, c) = setup().await;
    for _ in 0..3 {
        c.get_opt::<serde_json::Value>(&group(), api::RESOURCES, &[])
            .await
            .unwrap();
    }
    let arm: Vec<_> = emu
        .log()
        .entries()
        .into_iter()
        .filter(|e| !e.path.ends_with("/token"))
        .collect();
    assert!(arm.len() >= 4);
    let ids: std::collections::BTreeSet<_> = arm
        .iter()
        .map(|e| e.client_request_id.clone().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        arm.len(),
        "a fresh x-ms-client-request-id per request"
    );
    assert!(
        arm.iter()
            .all(|e| e.correlation_id.as_deref() == Some(c.correlation_id()))
    );
}

mod backend {
    use std::net::IpAddr;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use k0rdent_arm_emulator::{BackendError, BackendVm, VmBackend};

    #[derive(Default)]
    pub struct Recorder {
        pub calls: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl VmBackend for Recorder {
        async fn create(&self, vm: &BackendVm) -> Result<Option<IpAddr>, BackendError> {
            self.calls.lock().unwrap().push(format!(
                "create {} user={} keys={} data={}B ip={:?} private={:?}",
                vm.name,
                vm.admin_user,
                vm.ssh_public_keys.len(),
                vm.custom_data.expose().len(),
                vm.public_ip,
                vm.private_ip
            ));
            Ok(Some("198.51.100.7".parse().unwrap()))
        }
        async fn delete(&self, name: &str) -> Result<(), BackendError> {
            self.calls.lock().unwrap().push(format!("delete {name}"));
            Ok(())
        }
        async fn start(&self, name: &str) -> Result<(), BackendError> {
            self.calls.lock().unwrap().push(format!("start {name}"));
            Ok(())
        }
        async fn deallocate(&self, name: &str) -> Result<(), BackendError> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("deallocate {name}"));
            Ok(())
        }
    }
}

#[tokio::test]
async fn the_vm_backend_hook_sees_every_lifecycle_change_and_can_supply_the_ip() {
    use k0rdent_core::{Engine, MemoryStore, Pipeline, state::RunOutcome};
    let rec = std::sync::Arc::new(backend::Recorder::default());
    let emu = fast_emulator()
        .backend(rec.clone())
        .public_ips(["198.51.100.10".parse().unwrap()])
        .start()
        .await
        .unwrap();
    let spec = k0rdent_arm_emulator::fixtures::spec("k0rdent-hook0001", 1, 0);
    let azure = k0rdent_azure::AzureDeployment::with_tuning(
        emu.client(),
        spec,
        k0rdent_arm_emulator::fixtures::fast_tuning(),
    )
    .unwrap();
    let engine = Engine::builder(
        azure.add_to(Pipeline::builder()).build().unwrap(),
        std::sync::Arc::new(MemoryStore::new()),
    )
    .build()
    .unwrap();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    let vm = emu.vm("k0s-controller-1").unwrap();
    assert_eq!(
        vm.public_ip,
        Some("198.51.100.7".parse().unwrap()),
        "the backend's address wins"
    );
    let outputs = &report
        .steps
        .iter()
        .find(|s| s.step.as_str() == "create_vms/k0s-controller-1");
    assert!(outputs.is_some());
    let c = emu.client();
    let path = azure
        .names()
        .resource_id(k0rdent_azure::names::types::VM, "k0s-controller-1");
    c.post(&format!("{path}/deallocate"), api::COMPUTE)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        emu.vm("k0s-controller-1").unwrap().power_state,
        "deallocated"
    );
    c.post(&format!("{path}/start"), api::COMPUTE)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(emu.vm("k0s-controller-1").unwrap().power_state, "running");
    assert_eq!(engine.reset().await.unwrap().outcome, RunOutcome::Succeeded);
    // The delete hook runs in the background once the group deletion completes.
    for _ in 0..100 {
        if rec.calls.lock().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let calls = rec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4, "{calls:#?}");
    assert!(
        calls[0].starts_with("create k0s-controller-1 user=k0rdent keys=1"),
        "{}",
        calls[0]
    );
    assert!(calls[0].contains("ip=Some(198.51.100.10)"), "{}", calls[0]);
    assert!(calls[0].contains("private=Some(10.0.1.4)"), "{}", calls[0]);
    assert_eq!(
        &calls[1..],
        [
            "deallocate k0s-controller-1",
            "start k0s-controller-1",
            "delete k0s-controller-1"
        ]
    );
}
