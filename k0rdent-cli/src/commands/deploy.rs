//! `k0rdent deploy`.

use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;
use k0rdent_core::{engine::RunReport, state::RunOutcome};

#[derive(Serialize)]
struct Result<'a> {
    result: &'static str,
    #[serde(flatten)]
    report: &'a RunReport,
}

pub(crate) async fn run(
    ctx: &Ctx,
    until: Option<String>,
) -> std::result::Result<ExitStatus, CliError> {
    let engine = ctx
        .engine(until, crate::pipeline::Mode::Prepare, "deploy")
        .await?;
    let report = engine.deploy().await?;
    ctx.printer.json(&Result {
        result: "deploy",
        report: &report,
    });
    let text = match report.outcome {
        RunOutcome::Succeeded => "Deployment converged.".to_owned(),
        RunOutcome::Interrupted => {
            "Interrupted. The state is saved; run `k0rdent deploy` again to continue.".to_owned()
        }
        RunOutcome::Blocked => format!(
            "Blocked. Nothing unsafe was attempted; what is left:\n{}",
            report.final_plan
        ),
        RunOutcome::Failed | RunOutcome::Crashed => format!(
            "Failed. Fix the error above and run `k0rdent deploy` again; finished steps are kept.\n{}",
            report.final_plan
        ),
    };
    ctx.printer.text(&text);
    Ok(ExitStatus::of_run(report.outcome))
}
