//! `install_k0rdent`'s work: helm and kubectl checked, a helm left running by an interrupted
//! attempt stopped (SIGTERM: helm marks its release failed), the `kcm` release settled —
//! installed with `helm upgrade --install` (no `--wait`) only while none is deployed, a
//! pending record left by a dead helm dropped or rolled back; once installed, a version change
//! is k0rdent's upgrade (the `Release` applied, `Management.spec.release` patched) — then the
//! `Management` object polled until it is Ready with the configured Release. Never `kubectl
//! wait`.

use std::path::PathBuf;
use std::time::Duration;

use k0rdent_core::{Evidence, Outputs, StepContext, StepError, StepOutcome};
use k0rdent_process::{ChildRecord, Command};

use super::observe::{RELEASE, ReleaseAction, release_action};
use crate::cluster::facts::release_name;
use crate::cluster::observer::{ClusterFacts, ClusterObserver};
use crate::tools::{self, HELM, KUBECTL};

const JOURNAL_HELM: &str = "helm";
/// helm gets this long after SIGTERM to record its release as failed (it can only when the
/// API still answers; a pending record left otherwise is settled by the next run). Short, so
/// a dropped tunnel stops the phase within seconds.
const HELM_GRACE: Duration = Duration::from_millis(1500);
/// Between two looks at the `Management` object.
const POLL: Duration = Duration::from_secs(5);

/// What the phase is configured with.
#[derive(Debug, Clone)]
pub struct K0rdentSettings {
    /// `software.k0rdent.version`.
    pub version: String,
    /// `software.k0rdent.registry`: the chart (`oci://ghcr.io/k0rdent/kcm/charts/kcm`).
    pub chart: String,
    /// `software.k0rdent.namespace`.
    pub namespace: String,
    /// `software.k0rdent.release_manifest`: the manifest (URL or file) holding the `Release`
    /// of `version`, applied to upgrade a running k0rdent.
    pub release_manifest: String,
    /// `tools.*`.
    pub tools: std::collections::BTreeMap<String, PathBuf>,
    /// How the cluster is read (kubeconfig, context, fallback servers).
    pub cluster: ClusterObserver,
    /// helm's own `--timeout` for hooks (`timeouts.k0rdent_install_wait`).
    pub helm_timeout: Duration,
}

impl K0rdentSettings {
    /// `kubectl` (at `path`) against the cluster: its kubeconfig and context, explicitly.
    pub(super) fn kubectl(&self, path: &std::path::Path, args: &[&str]) -> Command {
        Command::new(path)
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .arg("--context")
            .arg(&self.cluster.context)
            .args(args.iter().copied())
    }
}

fn blocked_from(e: &(impl std::fmt::Display + k0rdent_core::Remedy)) -> StepError {
    let err = StepError::blocked(e.to_string());
    match e.remedy() {
        Some(r) => err.with_remedy(r.into_owned()),
        None => err,
    }
}

async fn facts(ctx: &StepContext, s: &K0rdentSettings) -> Result<ClusterFacts, StepError> {
    let state = ctx.read_state(Clone::clone).await;
    s.cluster
        .read(&state)
        .await
        .map_err(|e| StepError::blocked(e.to_string()).with_remedy("run `k0rdent vpn status`"))
}

/// Runs one helm (or kubectl) command, journaled, stopped with SIGTERM on cancel.
async fn run_tool(ctx: &StepContext, cmd: Command, what: &str) -> Result<(), StepError> {
    let running = cmd
        .grace(HELM_GRACE)
        .spawn()
        .await
        .map_err(|e| StepError::permanent(format!("starting {what}: {e}")))?;
    ctx.write_journal(JOURNAL_HELM, running.record()).await?;
    let _grace = ctx.stop_grace(HELM_GRACE + Duration::from_millis(500), what.to_owned());
    running
        .wait_until(ctx.cancelled(), |n| ctx.progress(format!("{n:?}")))
        .await
        .map(|_| ())
        .map_err(|e| {
            if ctx.is_cancelled() {
                StepError::interrupted(format!("{what} stopped: {e}"))
            } else {
                StepError::transient(format!("{what} failed: {e}"))
                    .with_remedy("see helm's message above; `k0rdent deploy` tries again")
            }
        })
}

/// Upgrades a running k0rdent the way k0rdent documents it: the new version's `Release`
/// object applied from its manifest, then `Management.spec.release` pointed at it; kcm does
/// the rest. Both are idempotent, so an interrupted upgrade is simply done again.
async fn upgrade(
    ctx: &StepContext,
    s: &K0rdentSettings,
    kubectl: &std::path::Path,
    want: &str,
    from: Option<&str>,
) -> Result<(), StepError> {
    let kc = |args: &[&str]| s.kubectl(kubectl, args);
    ctx.progress(format!(
        "upgrading k0rdent from {} to {want}: applying {}",
        from.unwrap_or("no release"),
        s.release_manifest
    ));
    // k0rdent's own manifest, checked by the API server against the Release CRD's schema;
    // kubectl's client-side validation would only add a download of the OpenAPI document.
    run_tool(
        ctx,
        kc(&["apply", "--validate=false", "-f", &s.release_manifest]),
        "kubectl apply (Release)",
    )
    .await?;
    let found = run_tool(
        ctx,
        kc(&["get", "releases.k0rdent.mirantis.com", want, "-o", "name"]),
        "kubectl get release",
    )
    .await;
    if let Err(e) = found {
        if ctx.is_cancelled() {
            return Err(e);
        }
        return Err(StepError::blocked(format!(
            "{} holds no Release {want}",
            s.release_manifest
        ))
        .with_remedy(
            "point software.k0rdent.release_manifest at the release.yaml of software.k0rdent.version",
        ));
    }
    ctx.checkpoint()?;
    ctx.progress(format!("patching Management kcm: spec.release = {want}"));
    let patch = serde_json::json!({"spec": {"release": want}}).to_string();
    run_tool(
        ctx,
        kc(&[
            "patch",
            "managements.k0rdent.mirantis.com",
            "kcm",
            "--type=merge",
            "-p",
            &patch,
        ]),
        "kubectl patch Management",
    )
    .await
}

/// Runs `install_k0rdent`.
pub async fn apply(ctx: &StepContext, s: &K0rdentSettings) -> Result<StepOutcome, StepError> {
    let helm = tools::check(&HELM, &s.tools)
        .await
        .map_err(|e| blocked_from(&e))?;
    let kubectl = tools::check(&KUBECTL, &s.tools)
        .await
        .map_err(|e| blocked_from(&e))?;
    if let Some(rec) = ctx.journal().latest_as::<ChildRecord>(JOURNAL_HELM) {
        rec.stop(HELM_GRACE, |m| ctx.progress(m))
            .await
            .map_err(|e| {
                StepError::blocked(e.to_string()).with_remedy("stop that helm, then deploy again")
            })?;
    }
    let f = facts(ctx, s).await?;
    let Some(releases) = f.releases.as_ref() else {
        return Err(StepError::transient(format!(
            "cannot list helm releases: {}",
            f.helm_error.as_deref().unwrap_or("the API did not answer")
        )));
    };
    let kubeconfig = &s.cluster.kubeconfig;
    let context = &s.cluster.context;
    let helm_cmd = |args: &[&str]| {
        Command::new(&helm.path)
            .args(args.iter().copied())
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--kube-context")
            .arg(context)
    };
    let want = release_name(&s.version);
    match release_action(releases) {
        ReleaseAction::Keep => {
            // Installed: a version change is k0rdent's own upgrade, never helm against Flux.
            if let Some(m) = &f.management
                && m.spec_release.as_deref() != Some(want.as_str())
            {
                upgrade(ctx, s, &kubectl.path, &want, m.spec_release.as_deref()).await?;
            }
        }
        ReleaseAction::RollBack => {
            ctx.progress(format!(
                "rolling back the {RELEASE} release a stopped helm left pending"
            ));
            run_tool(
                ctx,
                helm_cmd(&["rollback", RELEASE, "-n", &s.namespace]),
                "helm rollback",
            )
            .await?;
        }
        action => {
            if let ReleaseAction::ReinstallPending { revision } = &action {
                ctx.progress(format!(
                    "dropping the pending-install record (revision {revision}) a stopped helm left"
                ));
                let secret = format!("sh.helm.release.v1.{RELEASE}.v{revision}");
                let cmd = s.kubectl(
                    &kubectl.path,
                    &[
                        "-n",
                        &s.namespace,
                        "delete",
                        "secret",
                        &secret,
                        "--ignore-not-found",
                    ],
                );
                run_tool(ctx, cmd, "kubectl delete secret").await?;
            }
            ctx.checkpoint()?;
            ctx.progress(format!(
                "helm upgrade --install {RELEASE} {} {}",
                s.chart, s.version
            ));
            let timeout = format!("{}s", s.helm_timeout.as_secs());
            let cmd = helm_cmd(&[
                "upgrade",
                "--install",
                RELEASE,
                &s.chart,
                "--version",
                &s.version,
                "-n",
                &s.namespace,
                "--create-namespace",
                "--timeout",
                &timeout,
            ]);
            run_tool(ctx, cmd, "helm upgrade --install").await?;
        }
    }
    let f = facts(ctx, s).await?;
    match &f.management {
        Some(m) if m.ready && m.observed && m.status_release.as_deref() == Some(want.as_str()) => {
            Ok(StepOutcome::done(
                Outputs::new()
                    .with("release", RELEASE)
                    .with("management_release", want.clone()),
                Evidence::new()
                    .with("release", RELEASE)
                    .with("management_release", want)
                    .with("management", "Ready"),
            ))
        }
        Some(m) => Ok(StepOutcome::pending(
            POLL,
            format!(
                "waiting for Management kcm: ready={}, release={}{}",
                m.ready,
                m.status_release.as_deref().unwrap_or("none yet"),
                m.message
                    .as_deref()
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default()
            ),
        )),
        None => Ok(StepOutcome::pending(
            POLL,
            "waiting for the Management object kcm to appear",
        )),
    }
}
