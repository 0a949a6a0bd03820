//! A fake API server and the stand-in helm binary pointed at it, for the helm tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod cluster;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use k0rdent_standins::kube::{FakeKube, Listener, Resource};
use serde_json::Value;
use tempfile::TempDir;

pub const CHART: &str = "oci://ghcr.io/k0rdent/kcm/charts/kcm";

pub struct Lab {
    pub kube: FakeKube,
    pub listener: Listener,
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
}

pub async fn lab() -> Lab {
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
        listener,
        dir,
        kubeconfig,
    }
}

impl Lab {
    pub fn helm(&self, work_ms: u64, args: &[&str]) -> tokio::process::Command {
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

    pub async fn run(&self, args: &[&str]) -> Output {
        self.helm(20, args).output().await.unwrap()
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn list(&self, all: bool) -> Vec<Value> {
        let mut args = vec!["list", "-n", "kcm-system", "-o", "json"];
        if all {
            args.push("-a");
        }
        serde_json::from_str::<Vec<Value>>(&self.ok(&args).await).unwrap()
    }

    pub async fn install(&self, version: &str) -> String {
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
    pub async fn wait_for_status(&self, status: &str) {
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

pub fn statuses(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .map(|r| {
            (
                r["revision"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
