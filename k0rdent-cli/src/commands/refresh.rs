//! `k0rdent refresh`.

use std::fmt::Write as _;

use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

pub(crate) async fn run(ctx: &Ctx) -> Result<ExitStatus, CliError> {
    let report = ctx
        .engine(None, crate::pipeline::Mode::Locked, "refresh")
        .await?
        .refresh()
        .await?;
    #[derive(Serialize)]
    struct Out<'a> {
        result: &'static str,
        #[serde(flatten)]
        report: &'a k0rdent_core::engine::RefreshReport,
    }
    ctx.printer.json(&Out {
        result: "refresh",
        report: &report,
    });
    let mut text = format!("Verified {} steps.\n", report.verified.len());
    for (step, d) in &report.drifted {
        let _ = writeln!(text, "drift: {step}: {d}");
    }
    for (step, r) in &report.unknown {
        let _ = writeln!(text, "unknown: {step}: {r}");
    }
    for step in &report.journals_cleared {
        let _ = writeln!(
            text,
            "cleared the unreadable journal of {step}; it runs again on the next deploy"
        );
    }
    ctx.printer.text(&text);
    Ok(ExitStatus::Success)
}
