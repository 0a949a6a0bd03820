//! `install_k0s`'s part of `reset`: `k0sctl reset` while every node answers through the
//! tunnel (otherwise skipped with the reason: the VMs are deleted next anyway), then the
//! kubeconfig (it holds the cluster's admin key) and `k0sctl.yaml` are removed.

use std::time::Duration;

use k0rdent_core::{StepContext, StepError, Teardown};
use k0rdent_process::Command;
use k0rdent_ssh::wireguard::{TunnelExpectation, TunnelProbe};

use super::apply::{K0SCTL_FILE, K0sSettings};
use crate::cluster::kubeconfig::KUBECONFIG_FILE;
use crate::tools::{self, K0SCTL};

/// Why k0s cannot be reset now, if it cannot.
async fn unreachable(ctx: &StepContext, s: &K0sSettings) -> Option<String> {
    if !s.store.dir().join(K0SCTL_FILE).is_file() {
        return Some(format!("no {K0SCTL_FILE}: k0sctl never ran"));
    }
    if let Err(e) = tools::check(&K0SCTL, &s.tools).await {
        return Some(e.to_string());
    }
    let state = ctx.read_state(Clone::clone).await;
    let exp = match TunnelExpectation::from_state(&state) {
        Ok(e) => e,
        Err(e) => return Some(e.to_string()),
    };
    let report = TunnelProbe::default().report(&exp).await;
    (!report.all_alive())
        .then(|| format!("the nodes do not all answer through the tunnel: {report}"))
}

/// Resets k0s when it can, then removes the local files.
pub async fn teardown(ctx: &StepContext, s: &K0sSettings) -> Result<Teardown, StepError> {
    let config = s.store.dir().join(K0SCTL_FILE);
    let mut done = false;
    match unreachable(ctx, s).await {
        Some(why) => ctx.progress(format!(
            "k0s reset skipped ({why}); the VMs are deleted next"
        )),
        None => {
            let k0sctl = tools::check(&K0SCTL, &s.tools)
                .await
                .map_err(|e| StepError::permanent(e.to_string()))?;
            let r = Command::new(&k0sctl.path)
                .args(["reset", "--force", "--config"])
                .arg(&config)
                .env(
                    "SSH_KNOWN_HOSTS",
                    s.store.dir().join("known_hosts").as_os_str(),
                )
                .timeout(Duration::from_secs(600))
                .run()
                .await;
            match r {
                Ok(_) => done = true,
                Err(e) => ctx.progress(format!(
                    "k0sctl reset failed ({e}); the VMs are deleted next anyway"
                )),
            }
        }
    }
    for f in [KUBECONFIG_FILE, K0SCTL_FILE] {
        let p = s.store.dir().join(f);
        match std::fs::remove_file(&p) {
            Ok(()) => done = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StepError::transient(format!(
                    "removing {}: {e}",
                    p.display()
                )));
            }
        }
    }
    Ok(if done {
        Teardown::Done
    } else {
        Teardown::nothing("k0s was never installed from here")
    })
}
