//! The kcm/Flux simulation reacting to Helm release records and to `Management` changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k0rdent_standins::helm::record::{self, Chart, ChartMetadata, Info, Release};
use k0rdent_standins::kube::{FakeKube, KcmSimulation, Part, Resource};
use serde_json::{Value, json};

fn deployed(version: &str, revision: u32) -> Release {
    Release {
        name: "kcm".into(),
        info: Info {
            first_deployed: record::now(),
            last_deployed: record::now(),
            deleted: String::new(),
            description: "Install complete".into(),
            status: "deployed".into(),
            notes: String::new(),
        },
        chart: Chart {
            metadata: ChartMetadata {
                name: "kcm".into(),
                version: version.into(),
                app_version: version.into(),
                api_version: "v2".into(),
            },
            templates: Vec::new(),
            values: json!({}),
        },
        config: json!({}),
        manifest: String::new(),
        version: revision,
        namespace: "kcm-system".into(),
    }
}

async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..250 {
        if let Some(v) = check() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn ready_release(m: &Value) -> Option<&str> {
    let ready = m["status"]["conditions"]
        .as_array()?
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    (ready && m["status"]["observedGeneration"] == m["metadata"]["generation"])
        .then(|| m["status"]["release"].as_str())
        .flatten()
}

fn sim(flux_bump_after: Option<Duration>) -> KcmSimulation {
    KcmSimulation {
        appear_after: Duration::from_millis(100),
        ready_after: Duration::from_millis(150),
        flux_bump_after,
        ..KcmSimulation::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_release_brings_a_management_that_becomes_ready_then_flux_bumps_the_revision() {
    let kube = FakeKube::new().unwrap();
    let _sim = kube.start_kcm_simulation(sim(Some(Duration::from_millis(150))));
    kube.create(
        Resource::Namespaces,
        None,
        json!({"metadata": {"name": "kcm-system"}}),
    )
    .unwrap();
    let mut pending = deployed("1.4.0", 1);
    pending.info.status = "pending-install".into();
    kube.create(
        Resource::Secrets,
        Some("kcm-system"),
        record::to_secret(&pending, true).unwrap(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        kube.management().is_none(),
        "a pending install brings no Management"
    );

    let secret = record::to_secret(&deployed("1.4.0", 1), false).unwrap();
    kube.update(
        Resource::Secrets,
        Some("kcm-system"),
        "sh.helm.release.v1.kcm.v1",
        secret,
        Part::Main,
    )
    .unwrap();
    let first = eventually("the Management", || kube.management()).await;
    assert_eq!(first["spec"]["release"], "kcm-1-4-0");
    assert_eq!(ready_release(&first), None, "it appears before it is ready");
    let m = eventually("Ready", || {
        kube.management().filter(|m| ready_release(m).is_some())
    })
    .await;
    assert_eq!(ready_release(&m), Some("kcm-1-4-0"));
    assert!(kube.get(Resource::Releases, None, "kcm-1-4-0").is_some());

    let v2 = eventually("the Flux revision", || {
        kube.get(
            Resource::Secrets,
            Some("kcm-system"),
            "sh.helm.release.v1.kcm.v2",
        )
    })
    .await;
    assert_eq!(v2["metadata"]["labels"]["status"], "deployed");
    let v1 = kube
        .get(
            Resource::Secrets,
            Some("kcm-system"),
            "sh.helm.release.v1.kcm.v1",
        )
        .unwrap();
    assert_eq!(record::from_secret(&v1).unwrap().info.status, "superseded");
    assert_eq!(v1["metadata"]["labels"]["status"], "superseded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_spec_release_is_reconciled_once_its_release_object_exists() {
    let kube = FakeKube::new().unwrap();
    let _sim = kube.start_kcm_simulation(sim(None));
    kube.create(
        Resource::Namespaces,
        None,
        json!({"metadata": {"name": "kcm-system"}}),
    )
    .unwrap();
    kube.create(
        Resource::Secrets,
        Some("kcm-system"),
        record::to_secret(&deployed("1.4.0", 1), true).unwrap(),
    )
    .unwrap();
    eventually("Ready", || {
        kube.management()
            .filter(|m| ready_release(m) == Some("kcm-1-4-0"))
    })
    .await;

    kube.merge_patch(
        Resource::Managements,
        None,
        "kcm",
        json!({"spec": {"release": "kcm-1-5-0"}}),
        Part::Main,
    )
    .unwrap();
    let m = eventually("the missing Release reported", || {
        kube.management().filter(|m| {
            m["status"]["observedGeneration"] == 2
                && m["status"]["conditions"][0]["status"] == "False"
        })
    })
    .await;
    assert_eq!(m["status"]["conditions"][0]["reason"], "ReleaseNotFound");
    assert_eq!(
        m["status"]["release"], "kcm-1-4-0",
        "the release in use stays reported"
    );

    let release = json!({"apiVersion": "k0rdent.mirantis.com/v1beta1", "kind": "Release", "metadata": {"name": "kcm-1-5-0"}, "spec": {"version": "1.5.0"}});
    kube.create(Resource::Releases, None, release).unwrap();
    let m = eventually("the new release Ready", || {
        kube.management()
            .filter(|m| ready_release(m) == Some("kcm-1-5-0"))
    })
    .await;
    assert_eq!(m["metadata"]["generation"], 2);
}
