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
    let again = rerun_command(&ctx.request, until.as_deref());
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
            format!("Interrupted. The state is saved; run `{again}` again to continue.")
        }
        RunOutcome::Blocked => format!(
            "Blocked. Nothing unsafe was attempted; what is left:\n{}",
            report.final_plan
        ),
        RunOutcome::Failed | RunOutcome::Crashed => format!(
            "Failed. Fix the error above and run `{again}` again; finished steps are kept.\n{}",
            report.final_plan
        ),
    };
    ctx.printer.text(&text);
    Ok(ExitStatus::of_run(report.outcome))
}

/// The `deploy` command line to give again: the flags the user gave that change what it
/// does (`-y`, a state directory other than the default, `--until`).
fn rerun_command(request: &crate::request::Request, until: Option<&str>) -> String {
    let mut out = String::from("k0rdent deploy");
    if request.yes {
        out.push_str(" -y");
    }
    let dir = request.state_dir.to_string_lossy();
    if !matches!(dir.as_ref(), "state" | "./state") {
        out.push_str(&format!(" --state-dir {dir}"));
    }
    if let Some(u) = until {
        out.push_str(&format!(" --until {u}"));
    }
    out
}
