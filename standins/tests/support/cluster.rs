//! A fake API server on loopback with an admin kubeconfig, and the real `kubectl` run
//! against it with no shared state (no `KUBECONFIG`, a private `HOME` for its cache).

use std::path::PathBuf;
use std::process::Output;

use k0rdent_standins::kube::{FakeKube, Listener};
use serde_json::Value;
use tempfile::TempDir;

pub struct Cluster {
    pub kube: FakeKube,
    pub listener: Listener,
    pub dir: TempDir,
    pub kubeconfig: PathBuf,
}

pub async fn start() -> Cluster {
    let kube = FakeKube::new().unwrap();
    let listener = kube.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kube.admin_kubeconfig(&listener.url(), "k0rdent-test")
            .unwrap(),
    )
    .unwrap();
    Cluster {
        kube,
        listener,
        dir,
        kubeconfig,
    }
}

impl Cluster {
    pub async fn kubectl_with(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Output {
        tokio::process::Command::new("kubectl")
            .env_remove("KUBECONFIG")
            .env("HOME", self.dir.path().join("home"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--request-timeout=10s")
            .args(args)
            .output()
            .await
            .expect("kubectl runs")
    }

    pub async fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(&self.kubeconfig, args).await
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kubectl {args:?} failed: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args).await).unwrap()
    }
}
