//! `install_k0rdent`'s part of `reset`: while the API answers, the `Management` object is
//! deleted without waiting for its finalizer and the `kcm` release uninstalled, each bounded
//! in time; when the cluster cannot be reached (or a part fails) it is skipped with the
//! reason — the VMs are deleted next anyway.

use std::time::Duration;

use k0rdent_core::{StepContext, StepError, Teardown};
use k0rdent_process::Command;

use super::apply::K0rdentSettings;
use super::observe::RELEASE;
use crate::tools::{self, HELM, KUBECTL};

/// Uninstalls k0rdent when the cluster answers.
pub async fn teardown(ctx: &StepContext, s: &K0rdentSettings) -> Result<Teardown, StepError> {
    let state = ctx.read_state(Clone::clone).await;
    let facts = match s.cluster.read(&state).await {
        Ok(f) => f,
        Err(e) => {
            return Ok(Teardown::nothing(format!(
                "k0rdent not uninstalled ({e}); the VMs are deleted next"
            )));
        }
    };
    if !facts.kubeconfig || facts.answered_by.is_none() {
        return Ok(Teardown::nothing(
            "k0rdent not uninstalled: the cluster does not answer; the VMs are deleted next",
        ));
    }
    if !facts
        .releases
        .as_ref()
        .is_some_and(|r| r.iter().any(|r| r.name == RELEASE))
    {
        return Ok(Teardown::nothing("no kcm release is installed"));
    }
    let (Ok(helm), Ok(kubectl)) = (
        tools::check(&HELM, &s.tools).await,
        tools::check(&KUBECTL, &s.tools).await,
    ) else {
        return Ok(Teardown::nothing(
            "k0rdent not uninstalled: helm or kubectl is missing; the VMs are deleted next",
        ));
    };
    let kubeconfig = &s.cluster.kubeconfig;
    let context = &s.cluster.context;
    let deleted = s
        .kubectl(
            &kubectl.path,
            &[
                "delete",
                "managements.k0rdent.mirantis.com",
                "kcm",
                "--ignore-not-found",
                "--wait=false",
            ],
        )
        .timeout(Duration::from_secs(60))
        .run()
        .await;
    if let Err(e) = deleted {
        ctx.progress(format!("deleting Management kcm failed: {e}"));
    }
    let r = Command::new(&helm.path)
        .args([
            "uninstall",
            RELEASE,
            "-n",
            &s.namespace,
            "--timeout",
            "120s",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--kube-context")
        .arg(context)
        .timeout(Duration::from_secs(180))
        .run()
        .await;
    Ok(match r {
        Ok(_) => Teardown::Done,
        Err(e) => Teardown::nothing(format!(
            "helm uninstall failed ({e}); the VMs are deleted next anyway"
        )),
    })
}
