//! `k0rdent plan` and `k0rdent status`: observe and decide, change nothing, take no lock.

use std::fmt::Write as _;

use k0rdent_core::{
    Observation,
    engine::PlanReport,
    plan::{Decision, Plan, Reason},
    remedy::Hint,
};
use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::view::{Cell, Paint, Table};

/// How a decision is coloured: green adds, yellow changes, red blocks or replaces, dim is
/// nothing to do.
fn paint(d: Decision) -> Paint {
    match d {
        Decision::Run => Paint::Green,
        Decision::Resume | Decision::Rerun => Paint::Yellow,
        Decision::Replace | Decision::Blocked => Paint::Red,
        Decision::Skip | Decision::Disabled => Paint::Dim,
    }
}

/// The plan as a table (STEP, ACTION, REASON: a reason on every line, a remedy under a
/// blocked one) and its one-line summary.
fn plan_text(ctx: &Ctx, plan: &Plan) -> String {
    if !plan.has_changes() && !plan.is_blocked() {
        return format!(
            "Nothing to do: all {} steps are up to date.\n",
            plan.entries.len()
        );
    }
    let mut table = Table::new(&["STEP", "ACTION", "REASON"]);
    for e in &plan.entries {
        let action = if e.provisional {
            format!("{}*", e.decision.as_str())
        } else {
            e.decision.as_str().to_owned()
        };
        table.row(vec![
            Cell::new(e.step.as_str()),
            Cell::painted(action, paint(e.decision)),
            Cell::new(e.message.as_ref()),
        ]);
        if e.decision == Decision::Blocked
            && let Some(hint) = Hint::of(&e.reason)
        {
            table.under(hint.to_string());
        }
    }
    let mut text = ctx.printer.table(&table);
    let summary: Vec<String> = plan
        .counts()
        .iter()
        .map(|(d, n)| format!("{n} {}", d.as_str()))
        .collect();
    let _ = writeln!(text, "Plan: {}.", summary.join(", "));
    if plan.entries.iter().any(|e| e.provisional) {
        let _ = writeln!(text, "(* re-planned after the steps before it have run)");
    }
    text
}

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
    text.push_str(&plan_text(ctx, &report.plan));
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
        /// The reason in words.
        message: &'a str,
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
                message: e.message.as_ref(),
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
    let mut table = Table::new(&["STEP", "RECORDED", "OBSERVED", "NEXT"]).shrinking(&[2, 3]);
    for r in &rows {
        let (mark, paint_observed) = if r.drift {
            ("DRIFT ", Paint::Yellow)
        } else {
            ("", Paint::Plain)
        };
        let next = format!("{}: {}", r.decision.as_str(), r.message);
        table.row(vec![
            Cell::new(r.step),
            Cell::new(r.recorded),
            Cell::painted(format!("{mark}{}", observed(r.observed)), paint_observed),
            Cell::painted(next, paint(r.decision)),
        ]);
    }
    if !table.is_empty() {
        text.push_str(&ctx.printer.table(&table));
    }
    let drift = rows.iter().filter(|r| r.drift).count();
    let pending = report
        .plan
        .entries
        .iter()
        .filter(|e| e.decision.executes())
        .count();
    let blocked = report
        .plan
        .entries
        .iter()
        .filter(|e| e.decision == Decision::Blocked)
        .count();
    let _ = writeln!(
        text,
        "{} steps: {} drifted, {} pending, {} blocked; `k0rdent plan` shows what deploy would do.",
        rows.len(),
        drift,
        pending,
        blocked
    );
    ctx.printer.text(&text);
    Ok(exit_for(&report))
}
