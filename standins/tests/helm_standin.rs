//! The stand-in helm binary against the fake API server: install, interruption, locking,
//! version and reachability.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k0rdent_standins::kube::{FakeKube, Resource};
use serde_json::Value;
use support::{CHART, lab, statuses};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_is_listed_deployed_at_revision_one_and_recorded() {
    let lab = lab().await;
    let out = lab.install("1.4.0").await;
    assert!(
        out.contains("STATUS: deployed") && out.contains("REVISION: 1"),
        "{out}"
    );
    let list = lab.list(true).await;
    assert_eq!(statuses(&list), [("1".to_string(), "deployed".to_string())]);
    assert_eq!(list[0]["chart"], "kcm-1.4.0");
    assert_eq!(list[0]["namespace"], "kcm-system");
    let secret = lab
        .kube
        .get(
            Resource::Secrets,
            Some("kcm-system"),
            "sh.helm.release.v1.kcm.v1",
        )
        .unwrap();
    assert_eq!(secret["type"], "helm.sh/release.v1");
    assert_eq!(secret["metadata"]["labels"]["owner"], "helm");
    assert_eq!(secret["metadata"]["labels"]["version"], "1");
    let log = std::fs::read_to_string(lab.dir.path().join("invocations.jsonl")).unwrap();
    let first: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(first["argv"][1], "--kubeconfig");
    assert!(
        first["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--create-namespace")
    );
    assert_eq!(
        first["env"]["KUBECONFIG"],
        Value::Null,
        "KUBECONFIG was stripped and recorded as unset"
    );
    assert_eq!(log.lines().count(), 2, "the install and one list: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_install_leaves_pending_install_shown_only_with_all_and_blocks_upgrades() {
    let lab = lab().await;
    let mut child = lab
        .helm(
            30_000,
            &[
                "upgrade",
                "--install",
                "kcm",
                CHART,
                "--version",
                "1.4.0",
                "-n",
                "kcm-system",
                "--create-namespace",
            ],
        )
        .spawn()
        .unwrap();
    lab.wait_for_status("pending-install").await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        lab.list(false).await.is_empty(),
        "pending releases are hidden without -a"
    );
    assert_eq!(
        statuses(&lab.list(true).await),
        [("1".to_string(), "pending-install".to_string())]
    );
    let out = lab
        .run(&[
            "upgrade",
            "--install",
            "kcm",
            CHART,
            "--version",
            "1.4.0",
            "-n",
            "kcm-system",
        ])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress"
        ),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_mid_install_marks_the_release_failed() {
    let lab = lab().await;
    let child = lab
        .helm(
            30_000,
            &[
                "upgrade",
                "--install",
                "kcm",
                CHART,
                "--version",
                "1.4.0",
                "-n",
                "kcm-system",
                "--create-namespace",
            ],
        )
        .spawn()
        .unwrap();
    lab.wait_for_status("pending-install").await;
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("INSTALLATION FAILED: context canceled"),
        "{stderr}"
    );
    assert_eq!(
        statuses(&lab.list(false).await),
        [("1".to_string(), "failed".to_string())],
        "failed releases are listed by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlapping_invocation_is_refused() {
    let lab = lab().await;
    let mut child = lab
        .helm(
            30_000,
            &[
                "upgrade",
                "--install",
                "kcm",
                CHART,
                "--version",
                "1.4.0",
                "-n",
                "kcm-system",
                "--create-namespace",
            ],
        )
        .spawn()
        .unwrap();
    lab.wait_for_status("pending-install").await;
    let out = lab
        .run(&["list", "-n", "kcm-system", "-a", "-o", "json"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another stand-in helm invocation is running"),
        "{stderr}"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    lab.ok(&["list", "-n", "kcm-system"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_is_printed_and_can_be_overridden() {
    let lab = lab().await;
    assert!(
        lab.ok(&["version", "--short"])
            .await
            .starts_with("v3.19.5+g")
    );
    let out = lab
        .helm(0, &["version", "--short"])
        .env("K0RDENT_STANDIN_HELM_VERSION", "v3.8.0")
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("v3.8.0+g"));
    assert_eq!(
        lab.ok(&["version", "--template", "{{.Version}}"])
            .await
            .trim(),
        "v3.19.5"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_fails_and_helm_variables_are_recorded() {
    let kube = FakeKube::new().unwrap();
    let listener = kube.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let lab = lab().await;
    std::fs::write(
        &lab.kubeconfig,
        kube.admin_kubeconfig(&listener.url(), "lab").unwrap(),
    )
    .unwrap();
    listener.stop().await;
    let out = lab
        .helm(0, &["list", "-n", "kcm-system", "-a", "-o", "json"])
        .env("HELM_DRIVER", "secret")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("Error: Kubernetes cluster unreachable:"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(lab.dir.path().join("invocations.jsonl")).unwrap();
    let line: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(line["env"]["HELM_DRIVER"], "secret");
}
