//! The mutating commands, following Helm 3's actions: a record written `pending-*` first,
//! the work, then `deployed` (the previous deployed revision `superseded`) or `failed` when
//! the work fails or SIGTERM/SIGINT interrupts it; an upgrade over a pending record is
//! refused with Helm's message. A SIGKILL leaves the pending record behind, as with Helm.

use std::io::Write as _;

use serde_json::json;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::args::UpgradeArgs;
use super::invocation::Settings;
use super::record::{self, Chart, ChartMetadata, Info, Release, is_pending};
use super::storage::Storage;
use super::{HelmError, Out};

/// SIGTERM and SIGINT, caught for the duration of an action as Helm's context does.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> Result<Self, HelmError> {
        let handler = |kind| {
            signal(kind).map_err(|e| HelmError::Harness(format!("installing signal handlers: {e}")))
        };
        Ok(Signals {
            term: handler(SignalKind::terminate())?,
            int: handler(SignalKind::interrupt())?,
        })
    }
}

/// The simulated Kubernetes work; `Err` is the reason it failed.
async fn work(settings: &Settings, signals: &mut Signals) -> Result<(), String> {
    tokio::select! {
        _ = tokio::time::sleep(settings.work) => {}
        _ = signals.term.recv() => return Err("context canceled".into()),
        _ = signals.int.recv() => return Err("context canceled".into()),
    }
    match &settings.fail {
        Some(message) => Err(message.clone()),
        None => Ok(()),
    }
}

fn chart_name(reference: &str) -> String {
    let last = reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(reference);
    last.strip_suffix(".tgz").unwrap_or(last).to_string()
}

/// Prints the block Helm prints after install, upgrade and status.
pub fn print_summary(out: &mut Out, release: &Release) -> Result<(), HelmError> {
    let deployed = chrono::DateTime::parse_from_rfc3339(&release.info.last_deployed)
        .map(|t| t.format("%a %b %e %H:%M:%S %Y").to_string())
        .unwrap_or_default();
    writeln!(
        out,
        "NAME: {}\nLAST DEPLOYED: {deployed}\nNAMESPACE: {}\nSTATUS: {}\nREVISION: {}\nTEST SUITE: None",
        release.name, release.namespace, release.info.status, release.version
    )?;
    Ok(())
}

/// `helm upgrade [--install]` and `helm install`.
pub async fn upgrade(
    storage: &Storage,
    args: &UpgradeArgs,
    install_only: bool,
    settings: &Settings,
    out: &mut Out,
) -> Result<(), HelmError> {
    let mut signals = Signals::install()?;
    storage.reachable().await?;
    let version = args.version.clone().ok_or_else(|| {
        HelmError::Failed(
            "the stand-in needs --version to know which chart version it installs".into(),
        )
    })?;
    let name = chart_name(&args.chart);
    let chart = Chart {
        metadata: ChartMetadata {
            name: name.clone(),
            version: version.clone(),
            app_version: version.clone(),
            api_version: "v2".into(),
        },
        templates: Vec::new(),
        values: json!({}),
    };
    let config = json!({"set": args.set});
    if let Some(reference) = args.chart.strip_prefix("oci://") {
        // Helm reports an OCI pull on stderr; clients must not mistake it for an error.
        let mut stderr = std::io::stderr();
        let digest: String = (0..64)
            .map(|i| char::from(b"0123456789abcdef"[(i * 7 + version.len()) % 16]))
            .collect();
        let _ = writeln!(
            stderr,
            "Pulled: {reference}:{version}\nDigest: sha256:{digest}"
        );
    }
    let history = storage.history(&args.name).await?;
    let uninstalled = history
        .last()
        .is_none_or(|r| r.info.status == "uninstalled");
    if install_only || (args.install && uninstalled) {
        if install_only && !uninstalled {
            return Err(HelmError::Failed(
                "INSTALLATION FAILED: cannot re-use a name that is still in use".into(),
            ));
        }
        if !install_only {
            writeln!(
                out,
                "Release \"{}\" does not exist. Installing it now.",
                args.name
            )?;
        }
        return install(
            storage,
            args,
            chart,
            config,
            history.last().map_or(1, |r| r.version + 1),
            settings,
            &mut signals,
            out,
        )
        .await;
    }
    let fail = |m: String| HelmError::Failed(format!("UPGRADE FAILED: {m}"));
    let last = history
        .last()
        .ok_or_else(|| fail(format!("\"{}\" has no deployed releases", args.name)))?
        .clone();
    if is_pending(&last.info.status) {
        return Err(fail(
            "another operation (install/upgrade/rollback) is in progress".into(),
        ));
    }
    let current = match history.iter().rev().find(|r| r.info.status == "deployed") {
        Some(r) => r.clone(),
        None if matches!(last.info.status.as_str(), "failed" | "superseded") => last.clone(),
        None => return Err(fail(format!("\"{}\" has no deployed releases", args.name))),
    };
    let now = record::now();
    let mut next = Release {
        name: args.name.clone(),
        info: Info {
            first_deployed: current.info.first_deployed.clone(),
            last_deployed: now,
            deleted: String::new(),
            description: "Preparing upgrade".into(),
            status: "pending-upgrade".into(),
            notes: String::new(),
        },
        chart,
        config,
        manifest: String::new(),
        version: last.version + 1,
        namespace: storage.namespace().to_string(),
    };
    storage
        .create(&next)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if let Err(reason) = work(settings, &mut signals).await {
        next.info.status = "failed".into();
        next.info.description = format!("Upgrade \"{}\" failed: {reason}", args.name);
        storage.update(&next).await?;
        return Err(fail(reason));
    }
    let mut superseded = current;
    superseded.info.status = "superseded".into();
    storage.update(&superseded).await?;
    next.info.status = "deployed".into();
    next.info.description = "Upgrade complete".into();
    storage.update(&next).await?;
    writeln!(
        out,
        "Release \"{}\" has been upgraded. Happy Helming!",
        args.name
    )?;
    print_summary(out, &next)
}

#[allow(clippy::too_many_arguments)]
async fn install(
    storage: &Storage,
    args: &UpgradeArgs,
    chart: Chart,
    config: serde_json::Value,
    revision: u32,
    settings: &Settings,
    signals: &mut Signals,
    out: &mut Out,
) -> Result<(), HelmError> {
    let fail = |m: String| HelmError::Failed(format!("INSTALLATION FAILED: {m}"));
    if args.create_namespace {
        storage
            .ensure_namespace()
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let now = record::now();
    let mut release = Release {
        name: args.name.clone(),
        info: Info {
            first_deployed: now.clone(),
            last_deployed: now,
            deleted: String::new(),
            description: "Initial install underway".into(),
            status: "pending-install".into(),
            notes: String::new(),
        },
        chart,
        config,
        manifest: String::new(),
        version: revision,
        namespace: storage.namespace().to_string(),
    };
    storage
        .create(&release)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if let Err(reason) = work(settings, signals).await {
        release.info.status = "failed".into();
        release.info.description = format!("Release \"{}\" failed: {reason}", args.name);
        storage.update(&release).await?;
        return Err(fail(reason));
    }
    release.info.status = "deployed".into();
    release.info.description = "Install complete".into();
    storage.update(&release).await?;
    print_summary(out, &release)
}

/// `helm rollback NAME [REVISION]`.
pub async fn rollback(
    storage: &Storage,
    name: &str,
    revision: Option<u32>,
    settings: &Settings,
    out: &mut Out,
) -> Result<(), HelmError> {
    let mut signals = Signals::install()?;
    storage.reachable().await?;
    let history = storage.history(name).await?;
    let current = history
        .last()
        .ok_or_else(|| HelmError::Failed("release: not found".into()))?;
    let wanted = revision
        .filter(|r| *r > 0)
        .unwrap_or(current.version.saturating_sub(1));
    let previous = history
        .iter()
        .find(|r| r.version == wanted)
        .ok_or_else(|| HelmError::Failed(format!("release has no {wanted} version")))?;
    let mut target = Release {
        name: name.to_string(),
        info: Info {
            first_deployed: current.info.first_deployed.clone(),
            last_deployed: record::now(),
            deleted: String::new(),
            description: format!("Rollback to {wanted}"),
            status: "pending-rollback".into(),
            notes: previous.info.notes.clone(),
        },
        chart: previous.chart.clone(),
        config: previous.config.clone(),
        manifest: previous.manifest.clone(),
        version: current.version + 1,
        namespace: current.namespace.clone(),
    };
    storage.create(&target).await?;
    if let Err(reason) = work(settings, &mut signals).await {
        let mut superseded = current.clone();
        superseded.info.status = "superseded".into();
        storage.update(&superseded).await?;
        target.info.status = "failed".into();
        target.info.description = format!("Rollback \"{name}\" failed: {reason}");
        storage.update(&target).await?;
        return Err(HelmError::Failed(format!(
            "Rollback \"{name}\" failed: {reason}"
        )));
    }
    for deployed in history.iter().filter(|r| r.info.status == "deployed") {
        let mut superseded = deployed.clone();
        superseded.info.status = "superseded".into();
        storage.update(&superseded).await?;
    }
    target.info.status = "deployed".into();
    storage.update(&target).await?;
    writeln!(out, "Rollback was a success! Happy Helming!")?;
    Ok(())
}

/// `helm uninstall NAME [--keep-history]`.
pub async fn uninstall(
    storage: &Storage,
    name: &str,
    keep_history: bool,
    out: &mut Out,
) -> Result<(), HelmError> {
    storage.reachable().await?;
    let history = storage.history(name).await?;
    let not_found = || {
        HelmError::Failed(format!(
            "uninstall: Release not loaded: {name}: release: not found"
        ))
    };
    let mut last = history.last().ok_or_else(not_found)?.clone();
    if last.info.status == "uninstalled" && keep_history {
        return Err(HelmError::Failed(format!(
            "the release named {name:?} is already deleted"
        )));
    }
    last.info.status = "uninstalling".into();
    last.info.deleted = record::now();
    storage.update(&last).await?;
    if keep_history {
        last.info.status = "uninstalled".into();
        last.info.description = "Uninstallation complete".into();
        storage.update(&last).await?;
    } else {
        for r in &history {
            storage.delete(r).await?;
        }
    }
    writeln!(out, "release \"{name}\" uninstalled")?;
    Ok(())
}
