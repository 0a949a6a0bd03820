//! Preflight failures stop a deployment before any write, one clear line each.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use common::{CLUSTER, Lab, fast_emulator};
use k0rdent_arm_emulator::{Catalog, fixtures};
use k0rdent_core::{Remedy, StepId, plan::Decision, state::RunOutcome};

async fn blocked_before_any_write(lab: &Lab) -> String {
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Blocked, "{report:#?}");
    let writes = lab.emu.log().mutating_since(0);
    assert!(writes.is_empty(), "{writes:#?}");
    let e = report
        .final_plan
        .entry(&StepId::parse("setup_network").unwrap())
        .unwrap();
    assert_eq!(e.decision, Decision::Blocked);
    assert!(e.message.contains("azure_preflight"), "{}", e.message);
    assert!(e.reason.remedy().is_some(), "{e:?}");
    e.message.to_string()
}

#[tokio::test]
async fn an_unknown_size_stops_before_any_put() {
    let mut spec = fixtures::spec(CLUSTER, 1, 1);
    spec.vms[1].size = "Standard_Nope9".into();
    let lab = Lab::with(fast_emulator(), spec).await;
    let m = blocked_before_any_write(&lab).await;
    assert!(
        m.contains("VM size Standard_Nope9 does not exist in westeurope"),
        "{m}"
    );
}

#[tokio::test]
async fn a_restricted_zone_stops_before_any_put() {
    let mut catalog = Catalog::default();
    for s in &mut catalog.skus {
        if s.name == "Standard_D2s_v5" {
            s.restricted_zones = vec![2];
        }
    }
    let lab = Lab::with(
        fast_emulator().catalog(catalog),
        fixtures::spec(CLUSTER, 3, 0),
    )
    .await;
    let m = blocked_before_any_write(&lab).await;
    assert!(
        m.contains("VM size Standard_D2s_v5 is not available to this subscription in zone 2 of westeurope (NotAvailableForSubscription)"),
        "{m}"
    );
}

#[tokio::test]
async fn insufficient_quota_stops_before_any_put() {
    let mut catalog = Catalog::default();
    catalog.limits.insert("standardDSv5Family".into(), 8);
    let lab = Lab::with(
        fast_emulator().catalog(catalog),
        fixtures::spec(CLUSTER, 3, 2),
    )
    .await;
    let m = blocked_before_any_write(&lab).await;
    assert!(
        m.contains("standardDSv5Family vCPUs in westeurope: 14 vCPUs needed, only 8 of 8 free"),
        "{m}"
    );
}

#[tokio::test]
async fn preflight_reports_every_failure_with_a_remedy() {
    let mut catalog = Catalog::default();
    catalog.unregistered.insert("Microsoft.Network".into());
    let mut spec = fixtures::spec(CLUSTER, 1, 1);
    spec.vms[0].image = "Debian:debian-12:12-arm64:latest".parse().unwrap();
    spec.vms[1].image = "Debian:debian-13:nope:latest".parse().unwrap();
    let lab = Lab::with(fast_emulator().catalog(catalog), spec).await;
    let report = lab.azure().preflight().await.unwrap();
    assert!(!report.passed());
    let text = report.to_string();
    for line in [
        "resource provider Microsoft.Network is NotRegistered",
        "image Debian:debian-12:12-arm64:latest is Arm64 but VM size Standard_D2s_v5 is x64",
        "image Debian:debian-13:nope:latest does not exist in westeurope",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    for f in report.failures() {
        assert!(f.remedy.as_deref().is_some_and(|r| !r.is_empty()), "{f:?}");
        assert!(!f.detail.contains('\n'));
    }
    assert!(lab.emu.log().mutating_since(0).is_empty());
}

#[tokio::test]
async fn quota_counts_only_the_vms_still_to_create() {
    let lab = Lab::new(1, 1).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    // 6 vCPUs in use now; a limit of 6 still allows re-creating nothing more.
    lab.emu.update_catalog(|c| {
        c.limits.insert("standardDSv5Family".into(), 6);
    });
    let report = azure.preflight().await.unwrap();
    assert!(report.passed(), "{report}");
}

// Issue #7 item 20: what a size must offer, checked before any write, naming the key and a
// size that would work.

#[tokio::test]
async fn spot_on_a_size_that_cannot_be_spot_stops_before_any_put_naming_a_size_that_can() {
    let mut spec = fixtures::spec(CLUSTER, 1, 1);
    spec.vms[1].size = "Standard_B2s".into();
    spec.vms[1].priority = k0rdent_azure::spec::Priority::Spot;
    let lab = Lab::with(fast_emulator(), spec).await;
    let m = blocked_before_any_write(&lab).await;
    assert!(
        m.contains(
            "VM k0s-worker-1: azure.vm_priority is Spot, but size Standard_B2s cannot run as Spot \
             (LowPriorityCapable is not True); Standard_D2_v5 would work"
        ),
        "{m}"
    );
}

#[tokio::test]
async fn a_premium_disk_on_a_size_without_premium_io_stops_before_any_put() {
    let mut spec = fixtures::spec(CLUSTER, 1, 0);
    spec.vms[0].size = "Standard_D2_v5".into();
    spec.vms[0].os_disk_type = "Premium_LRS".into();
    let lab = Lab::with(fast_emulator(), spec).await;
    let m = blocked_before_any_write(&lab).await;
    assert!(
        m.contains(
            "VM k0s-controller-1: its OS disk is Premium_LRS, but size Standard_D2_v5 takes no \
             Premium SSD (PremiumIO is not True); Standard_B2s would work"
        ),
        "{m}"
    );
}

#[tokio::test]
async fn a_generation_2_image_on_a_generation_1_size_stops_before_any_put() {
    let mut spec = fixtures::spec(CLUSTER, 1, 0);
    spec.vms[0].size = "Standard_A2_v2".into();
    let lab = Lab::with(fast_emulator(), spec).await;
    let m = blocked_before_any_write(&lab).await;
    assert!(
        m.contains(
            "VM k0s-controller-1: image Debian:debian-12:12-gen2:latest is Hyper-V generation V2, \
             but size Standard_A2_v2 boots only V1 (HyperVGenerations)"
        ),
        "{m}"
    );
    assert!(m.contains("Standard_B2s would work"), "{m}");
    // A generation-1 image is fine on it.
    let mut spec = fixtures::spec(CLUSTER, 1, 0);
    spec.vms[0].size = "Standard_A2_v2".into();
    spec.vms[0].image = "Debian:debian-12:12:latest".parse().unwrap();
    let lab = Lab::with(fast_emulator(), spec).await;
    let report = lab.azure().preflight().await.unwrap();
    assert!(report.passed(), "{report}");
}

#[tokio::test]
async fn the_emulator_refuses_what_a_size_cannot_do_when_preflight_is_skipped() {
    use k0rdent_azure::names::{Names, types};
    // A deployed VM is deleted, then written back by hand with what its size cannot do:
    // the emulator (SKU limits on) disagrees as Azure would.
    let lab = Lab::new(1, 0).await;
    let azure = lab.azure();
    let (engine, _) = lab.engine(&azure, false);
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    assert!(lab.emu.delete_resource(types::VM, "k0s-controller-1"));
    lab.emu.faults().enforce_sku_capabilities(true);
    let client = lab.emu.client();
    let names = Names::new(&lab.emu.subscription_id(), &lab.spec);
    let path = names.resource_id(types::VM, "k0s-controller-1");
    type Change = Box<dyn Fn(&mut k0rdent_azure::spec::VmSpec)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "SkuNotAvailable",
            Box::new(|v| {
                v.size = "Standard_B2s".into();
                v.priority = k0rdent_azure::spec::Priority::Spot;
            }),
        ),
        (
            "storage account type Premium_LRS",
            Box::new(|v| {
                v.size = "Standard_D2_v5".into();
                v.os_disk_type = "Premium_LRS".into();
            }),
        ),
        (
            "cannot boot Hypervisor Generation '2'",
            Box::new(|v| v.size = "Standard_A2_v2".into()),
        ),
        (
            "customData",
            Box::new(|v| v.custom_data = k0rdent_core::secret::Secret::new(vec![b'#'; 65_536])),
        ),
        (
            "The Admin Username specified is not allowed",
            Box::new(|v| v.admin_user = "guest".into()),
        ),
    ];
    for (expect, change) in cases {
        let mut vm = lab.spec.vms[0].clone();
        change(&mut vm);
        let body = k0rdent_azure::resources::vm_body(&lab.spec, &names, &vm);
        let e = client
            .put(&path, k0rdent_azure::api::COMPUTE, &body)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(expect), "{expect}: {e}");
    }
    assert!(lab.emu.vm("k0s-controller-1").is_none());
    // Custom data of exactly 65,535 bytes is accepted.
    let mut vm = lab.spec.vms[0].clone();
    vm.custom_data = k0rdent_core::secret::Secret::new(vec![b'#'; 65_535]);
    let body = k0rdent_azure::resources::vm_body(&lab.spec, &names, &vm);
    client
        .put(&path, k0rdent_azure::api::COMPUTE, &body)
        .await
        .unwrap();
}
