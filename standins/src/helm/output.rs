//! The read-only commands and their output formats, shaped like Helm 3's: `list` (latest
//! revision per release, then the state filter), `history`, `status` and `version`.

use serde_json::{Value, json};

use super::actions::print_summary;
use super::args::ListArgs;
use super::invocation::Settings;
use super::record::Release;
use super::storage::Storage;
use super::{HelmError, Out};

/// The commit suffix printed after the version, as release builds of Helm print theirs.
const GIT_COMMIT: &str = "g3d8990f";
/// The Helm version the stand-in claims unless told otherwise.
const DEFAULT_VERSION: &str = "v3.19.5";

fn chart_label(r: &Release) -> String {
    format!("{}-{}", r.chart.metadata.name, r.chart.metadata.version)
}

/// Go's `time.Time.String()` layout, which `helm list` prints.
fn go_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S%.f +0000 UTC")
                .to_string()
        })
        .unwrap_or_default()
}

fn print_value(out: &mut Out, format: &str, value: &Value) -> Result<(), HelmError> {
    match format {
        "json" => writeln!(out, "{value}")?,
        "yaml" => write!(
            out,
            "{}",
            serde_yaml::to_string(value).map_err(|e| HelmError::Failed(e.to_string()))?
        )?,
        other => return Err(HelmError::Failed(format!("invalid format type {other:?}"))),
    }
    Ok(())
}

/// `helm list`.
pub async fn list(storage: &Storage, args: &ListArgs, out: &mut Out) -> Result<(), HelmError> {
    storage.reachable().await?;
    let all = storage.all(args.all_namespaces).await?;
    let mut latest: Vec<Release> = Vec::new();
    for r in all {
        match latest
            .iter_mut()
            .find(|l| l.name == r.name && l.namespace == r.namespace)
        {
            Some(l) if l.version < r.version => *l = r,
            Some(_) => {}
            None => latest.push(r),
        }
    }
    latest.retain(|r| args.shows(&r.info.status));
    latest.sort_by(|a, b| a.name.cmp(&b.name));
    if args.short {
        for r in &latest {
            writeln!(out, "{}", r.name)?;
        }
        return Ok(());
    }
    let rows: Vec<Value> = latest
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "namespace": r.namespace,
                "revision": r.version.to_string(),
                "updated": go_time(&r.info.last_deployed),
                "status": r.info.status,
                "chart": chart_label(r),
                "app_version": r.chart.metadata.app_version,
            })
        })
        .collect();
    if args.output != "table" {
        return print_value(out, &args.output, &Value::Array(rows));
    }
    writeln!(
        out,
        "NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION"
    )?;
    for r in &rows {
        let cell = |k: &str| r[k].as_str().unwrap_or("").to_string();
        let cells = [
            "name",
            "namespace",
            "revision",
            "updated",
            "status",
            "chart",
            "app_version",
        ]
        .map(cell);
        writeln!(out, "{}", cells.join("\t"))?;
    }
    Ok(())
}

/// `helm history`.
pub async fn history(
    storage: &Storage,
    name: &str,
    format: &str,
    max: usize,
    out: &mut Out,
) -> Result<(), HelmError> {
    storage.reachable().await?;
    let history = storage.history(name).await?;
    if history.is_empty() {
        return Err(HelmError::Failed("release: not found".into()));
    }
    let skip = history.len().saturating_sub(max);
    let rows: Vec<Value> = history[skip..]
        .iter()
        .map(|r| {
            json!({
                "revision": r.version,
                "updated": r.info.last_deployed,
                "status": r.info.status,
                "chart": chart_label(r),
                "app_version": r.chart.metadata.app_version,
                "description": r.info.description,
            })
        })
        .collect();
    if format != "table" {
        return print_value(out, format, &Value::Array(rows));
    }
    writeln!(
        out,
        "REVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION\tDESCRIPTION"
    )?;
    for r in &history[skip..] {
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}",
            r.version,
            go_time(&r.info.last_deployed),
            r.info.status,
            chart_label(r),
            r.chart.metadata.app_version,
            r.info.description
        )?;
    }
    Ok(())
}

/// `helm status`.
pub async fn status(
    storage: &Storage,
    name: &str,
    format: &str,
    revision: Option<u32>,
    out: &mut Out,
) -> Result<(), HelmError> {
    storage.reachable().await?;
    let history = storage.history(name).await?;
    let release = match revision {
        Some(v) => history.iter().find(|r| r.version == v),
        None => history.last(),
    }
    .ok_or_else(|| HelmError::Failed("release: not found".into()))?;
    if format == "table" {
        return print_summary(out, release);
    }
    let value = serde_json::to_value(release).map_err(|e| HelmError::Failed(e.to_string()))?;
    print_value(out, format, &value)
}

/// `helm version`.
pub fn version(
    settings: &Settings,
    short: bool,
    template: Option<&str>,
    out: &mut Out,
) -> Result<(), HelmError> {
    let claimed = settings
        .version
        .clone()
        .unwrap_or_else(|| DEFAULT_VERSION.to_string());
    let (bare, with_commit) = match claimed.split_once('+') {
        Some((bare, _)) => (bare.to_string(), claimed.clone()),
        None => (claimed.clone(), format!("{claimed}+{GIT_COMMIT}")),
    };
    if let Some(template) = template {
        writeln!(
            out,
            "{}",
            template
                .replace("{{.Version}}", &bare)
                .replace("{{ .Version }}", &bare)
        )?;
    } else if short {
        writeln!(out, "{with_commit}")?;
    } else {
        writeln!(
            out,
            "version.BuildInfo{{Version:\"{bare}\", GitCommit:\"{GIT_COMMIT}\", GitTreeState:\"clean\", GoVersion:\"go1.24.9\"}}"
        )?;
    }
    Ok(())
}
