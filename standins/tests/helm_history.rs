//! The stand-in helm binary's revision history: upgrade, rollback (also of a release left
//! pending by a killed upgrade) and uninstall.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k0rdent_standins::kube::Resource;
use serde_json::Value;
use support::{CHART, lab, statuses};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_supersedes_and_rollback_restores_the_previous_chart() {
    let lab = lab().await;
    lab.install("1.4.0").await;
    let out = lab.install("1.5.0").await;
    assert!(
        out.contains("has been upgraded") && out.contains("REVISION: 2"),
        "{out}"
    );
    let history: Vec<Value> = serde_json::from_str(
        &lab.ok(&["history", "kcm", "-n", "kcm-system", "-o", "json"])
            .await,
    )
    .unwrap();
    let rows: Vec<(u64, &str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["revision"].as_u64().unwrap(),
                h["status"].as_str().unwrap(),
                h["chart"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(1, "superseded", "kcm-1.4.0"), (2, "deployed", "kcm-1.5.0")]
    );
    let out = lab.ok(&["rollback", "kcm", "-n", "kcm-system"]).await;
    assert!(out.contains("Rollback was a success"), "{out}");
    let history: Vec<Value> = serde_json::from_str(
        &lab.ok(&["history", "kcm", "-n", "kcm-system", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(history[2]["status"], "deployed");
    assert_eq!(history[2]["chart"], "kcm-1.4.0");
    assert_eq!(history[2]["description"], "Rollback to 1");
    assert_eq!(history[1]["status"], "superseded");
    let list = lab.list(false).await;
    assert_eq!(statuses(&list), [("3".to_string(), "deployed".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_removes_every_record() {
    let lab = lab().await;
    lab.install("1.4.0").await;
    lab.install("1.4.1").await;
    assert!(
        lab.ok(&["uninstall", "kcm", "-n", "kcm-system"])
            .await
            .contains("release \"kcm\" uninstalled")
    );
    assert!(lab.list(true).await.is_empty());
    assert!(
        lab.kube
            .list(Resource::Secrets, Some("kcm-system"), "owner=helm")
            .unwrap()
            .is_empty()
    );
    let out = lab.run(&["uninstall", "kcm", "-n", "kcm-system"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("release: not found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_left_pending_upgrade_is_rolled_back_and_upgradable_again() {
    let lab = lab().await;
    lab.install("1.4.0").await;
    let mut child = lab
        .helm(
            30_000,
            &[
                "upgrade",
                "--install",
                "kcm",
                CHART,
                "--version",
                "1.5.0",
                "-n",
                "kcm-system",
            ],
        )
        .spawn()
        .unwrap();
    lab.wait_for_status("pending-upgrade").await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert_eq!(
        statuses(&lab.list(true).await),
        [("2".to_string(), "pending-upgrade".to_string())]
    );
    assert_eq!(
        statuses(&lab.list(false).await),
        [],
        "pending-upgrade is hidden without -a"
    );
    lab.ok(&["rollback", "kcm", "-n", "kcm-system"]).await;
    let history: Vec<Value> = serde_json::from_str(
        &lab.ok(&["history", "kcm", "-n", "kcm-system", "-o", "json"])
            .await,
    )
    .unwrap();
    let rows: Vec<(u64, &str, &str)> = history
        .iter()
        .map(|h| {
            (
                h["revision"].as_u64().unwrap(),
                h["status"].as_str().unwrap(),
                h["chart"].as_str().unwrap(),
            )
        })
        .collect();
    // Helm 3 leaves the interrupted revision as it was and supersedes only deployed ones.
    assert_eq!(
        rows,
        [
            (1, "superseded", "kcm-1.4.0"),
            (2, "pending-upgrade", "kcm-1.5.0"),
            (3, "deployed", "kcm-1.4.0")
        ]
    );
    let out = lab.install("1.5.0").await;
    assert!(out.contains("REVISION: 4"), "{out}");
}
