//! The stand-in helm binary against the fake API server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use k0rdent_standins::kube::{FakeKube, Listener, Resource};
use serde_json::Value;
use tempfile::TempDir;

const CHART: &str = "oci://ghcr.io/k0rdent/kcm/charts/kcm";

struct Lab {
    kube: FakeKube,
    _listener: Listener,
    dir: TempDir,
    kubeconfig: PathBuf,
}

async fn lab() -> Lab {
    let kube = FakeKube::new().unwrap();
    let listener = kube.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kube.admin_kubeconfig(&listener.url(), "lab").unwrap(),
    )
    .unwrap();
    Lab {
        kube,
        _listener: listener,
        dir,
        kubeconfig,
    }
}

impl Lab {
    fn helm(&self, work_ms: u64, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_helm"));
        cmd.env_remove("KUBECONFIG")
            .env("K0RDENT_STANDIN_DIR", self.dir.path())
            .env(
                "K0RDENT_STANDIN_LOG",
                self.dir.path().join("invocations.jsonl"),
            )
            .env("K0RDENT_STANDIN_HELM_WORK_MS", work_ms.to_string())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["--kube-context", "lab"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("HELM_")) {
            cmd.env_remove(k);
        }
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.helm(20, args).output().await.unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn list(&self, all: bool) -> Vec<Value> {
        let mut args = vec!["list", "-n", "kcm-system", "-o", "json"];
        if all {
            args.push("-a");
        }
        serde_json::from_str::<Vec<Value>>(&self.ok(&args).await).unwrap()
    }

    async fn install(&self, version: &str) -> String {
        self.ok(&[
            "upgrade",
            "--install",
            "kcm",
            CHART,
            "--version",
            version,
            "-n",
            "kcm-system",
            "--create-namespace",
            "--timeout",
            "10m",
        ])
        .await
    }

    /// Waits until a release record with `status` exists.
    async fn wait_for_status(&self, status: &str) {
        for _ in 0..500 {
            let found = self
                .kube
                .list(
                    Resource::Secrets,
                    Some("kcm-system"),
                    &format!("owner=helm,status={status}"),
                )
                .unwrap();
            if !found.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no release record reached {status}");
    }
}

fn statuses(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .map(|r| {
            (
                r["revision"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

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
