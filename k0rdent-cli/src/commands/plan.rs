//! `k0rdent plan` and `k0rdent status`: observe and decide, change nothing, take no lock.

use std::fmt::Write as _;

use k0rdent_core::{
    Observation,
    engine::PlanReport,
    plan::{Decision, Reason},
};
use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// 3 when something would block a deploy (a gate, an unknown observation, a corrupt
/// journal, a reset in progress, a replace awaiting confirmation); else 2 when there are
/// pending changes or drift; else 3 when only phases this build cannot run are left; else 0.
fn exit_for(report: &PlanReport) -> ExitStatus {
    let plan = &report.plan;
    let blocked = |root_only: bool| {
        plan.entries.iter().any(|e| {
            e.decision == Decision::Blocked
                && !(root_only
                    && matches!(
                        e.reason,
                        Reason::Unavailable { .. }
                            | Reason::DependencyBlocked { .. }
                            | Reason::DependencyFailed { .. }
                    ))
        })
    };
    if blocked(true) {
        ExitStatus::Blocked
    } else if plan.has_changes() || report.has_drift() {
        ExitStatus::Changes
    } else if blocked(false) {
        ExitStatus::Blocked
    } else {
        ExitStatus::Success
    }
}

pub(crate) async fn plan(ctx: &Ctx, until: Option<String>) -> Result<ExitStatus, CliError> {
    let report = ctx
        .engine(until, crate::pipeline::Mode::Preview, "plan")
        .await?
        .plan()
        .await?;
    #[derive(Serialize)]
    struct Out<'a> {
        result: &'static str,
        plan: &'a k0rdent_core::plan::Plan,
        observer_failures: &'a [(String, String)],
    }
    ctx.printer.json(&Out {
        result: "plan",
        plan: &report.plan,
        observer_failures: &report.observer_failures,
    });
    let mut text = String::new();
    for (observer, error) in &report.observer_failures {
        let _ = writeln!(text, "! could not observe {observer}: {error}");
    }
    let _ = write!(text, "{}", report.plan);
    ctx.printer.text(&text);
    Ok(exit_for(&report))
}

fn observed(o: &Observation) -> String {
    match o {
        Observation::Done { evidence } if !evidence.is_empty() => {
            let facts: Vec<String> = evidence.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("present ({})", facts.join(", "))
        }
        other => other.to_string(),
    }
}

pub(crate) async fn status(ctx: &Ctx, until: Option<String>) -> Result<ExitStatus, CliError> {
    let report = ctx
        .engine(until, crate::pipeline::Mode::ReadOnly, "plan")
        .await?
        .plan()
        .await?;
    #[derive(Serialize)]
    struct Row<'a> {
        step: &'a str,
        recorded: &'a str,
        observed: &'a Observation,
        decision: Decision,
        reason: &'a k0rdent_core::plan::Reason,
        drift: bool,
    }
    let rows: Vec<Row<'_>> = report
        .plan
        .entries
        .iter()
        .filter_map(|e| {
            let (_, o) = report.observations.iter().find(|(s, _)| s == &e.step)?;
            Some(Row {
                step: e.step.as_str(),
                recorded: e.status.as_str(),
                observed: o,
                decision: e.decision,
                reason: &e.reason,
                drift: matches!(e.reason, k0rdent_core::plan::Reason::Drift { .. }),
            })
        })
        .collect();
    #[derive(Serialize)]
    struct Out<'a> {
        result: &'static str,
        steps: &'a [Row<'a>],
        observer_failures: &'a [(String, String)],
    }
    ctx.printer.json(&Out {
        result: "status",
        steps: &rows,
        observer_failures: &report.observer_failures,
    });
    let mut text = String::new();
    if report.state.is_none() {
        let _ = writeln!(
            text,
            "No deployment recorded in {} yet.",
            ctx.store.dir().display()
        );
    }
    for (observer, error) in &report.observer_failures {
        let _ = writeln!(text, "! could not observe {observer}: {error}");
    }
    let width = rows.iter().map(|r| r.step.len()).max().unwrap_or(0);
    for r in &rows {
        let mark = if r.drift { "DRIFT " } else { "" };
        let _ = writeln!(
            text,
            "{:<width$}  {:<11}  {}{}",
            r.step,
            r.recorded,
            mark,
            observed(r.observed)
        );
    }
    let drift = rows.iter().filter(|r| r.drift).count();
    let _ = writeln!(
        text,
        "{} steps, {} drifted; `k0rdent plan` shows what deploy would do.",
        rows.len(),
        drift
    );
    ctx.printer.text(&text);
    Ok(exit_for(&report))
}
