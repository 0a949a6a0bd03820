//! `k0rdent doctor`: runs the checks of [`crate::doctor`] and prints them as a table (text)
//! or as one JSON object with every check (`--output json`). Exit code 0 when nothing failed,
//! 1 otherwise.

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

pub(super) async fn run(ctx: &Ctx) -> Result<ExitStatus, CliError> {
    let report = tokio::select! {
        r = crate::doctor::run(&ctx.request) => r,
        () = ctx.cancel.cancelled() => return Err(CliError::Interrupted),
    };
    let table = ctx.printer.table(&report.table());
    ctx.printer.text(&format!("{table}\n{}", report.summary()));
    ctx.printer.json(&serde_json::json!({
        "checks": report.checks,
        "passed": report.passed(),
        "summary": report.summary(),
    }));
    Ok(if report.passed() {
        ExitStatus::Success
    } else {
        ExitStatus::Error
    })
}
