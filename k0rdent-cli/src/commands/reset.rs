//! `k0rdent reset`.

use std::io::{BufRead, IsTerminal};

use k0rdent_core::state::RunOutcome;
use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

fn confirm(ctx: &Ctx) -> Result<bool, CliError> {
    if ctx.request.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "reset deletes the deployment and needs confirmation",
            "run `k0rdent reset -y` to confirm without a prompt",
        ));
    }
    ctx.printer.note(&format!(
        "This tears down the deployment recorded in {} (its Azure resources included) and archives its state.\nType 'yes' to continue:",
        ctx.store.dir().display()
    ));
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Io {
            path: "stdin".into(),
            source: e,
        })?;
    Ok(line.trim() == "yes")
}

pub(crate) async fn run(ctx: &Ctx) -> Result<ExitStatus, CliError> {
    let engine = ctx
        .engine(None, crate::pipeline::Mode::Locked, "reset")
        .await?;
    if !confirm(ctx)? {
        ctx.printer.note("Reset cancelled; nothing was changed.");
        return Ok(ExitStatus::Error);
    }
    let report = engine.reset().await?;
    #[derive(Serialize)]
    struct Out<'a> {
        result: &'static str,
        #[serde(flatten)]
        report: &'a k0rdent_core::engine::ResetReport,
    }
    ctx.printer.json(&Out {
        result: "reset",
        report: &report,
    });
    let text = match (&report.outcome, &report.archived_to, &report.failed) {
        (RunOutcome::Succeeded, Some(to), _) => {
            format!("Reset complete; the state was archived to {to}.")
        }
        (RunOutcome::Succeeded, None, _) => "Nothing to reset.".to_owned(),
        (_, _, Some((step, e))) => format!(
            "Reset stopped at {step}: {e}\nThe reset marker stays: `k0rdent reset` continues, `deploy` refuses until it is finished."
        ),
        _ => "Reset interrupted; run `k0rdent reset` again to finish it.".to_owned(),
    };
    ctx.printer.text(&text);
    Ok(ExitStatus::of_run(report.outcome))
}
