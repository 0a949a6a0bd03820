//! `k0rdent state show|history|unlock`: work on the state directory directly, without the
//! lock (except `unlock`), so they work while a run is in progress.

use std::fmt::Write as _;

use k0rdent_core::store::{EventLog, StateStore};
use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

pub(crate) async fn show(ctx: &Ctx) -> Result<ExitStatus, CliError> {
    let state = ctx.store.load().await?;
    let holder = ctx.store.lock_holder().await?;
    if let Some(h) = &holder {
        ctx.printer
            .note(&format!("note: a run holds the lock: {h}"));
    }
    #[derive(Serialize)]
    struct Out<'a> {
        result: &'static str,
        state_dir: String,
        locked_by: Option<&'a k0rdent_core::store::LockHolder>,
        state: Option<&'a k0rdent_core::state::DeploymentState>,
    }
    ctx.printer.json(&Out {
        result: "state",
        state_dir: ctx.store.dir().display().to_string(),
        locked_by: holder.as_ref(),
        state: state.as_ref(),
    });
    match &state {
        Some(s) => {
            let yaml = serde_yaml::to_string(s).map_err(|e| CliError::Io {
                path: ctx.store.state_path(),
                source: std::io::Error::other(e),
            })?;
            ctx.printer.text(&yaml);
        }
        None => ctx
            .printer
            .text(&format!("No deployment state in {}.", ctx.store.location())),
    }
    Ok(ExitStatus::Success)
}

pub(crate) async fn history(ctx: &Ctx, last: Option<usize>) -> Result<ExitStatus, CliError> {
    let h = ctx.store.history().await?;
    if h.torn_tail {
        ctx.printer
            .note("note: the last line of the event log was cut short by a crash and is ignored");
    }
    if !h.unreadable_lines.is_empty() {
        ctx.printer.note(&format!(
            "note: unreadable event log lines ignored: {:?}",
            h.unreadable_lines
        ));
    }
    let skip = last.map_or(0, |n| h.events.len().saturating_sub(n));
    let mut text = String::new();
    for rec in h.events.iter().skip(skip) {
        ctx.printer.json(rec);
        let detail = serde_json::to_value(&rec.event).unwrap_or_default();
        let kind = detail.get("event").and_then(|v| v.as_str()).unwrap_or("?");
        let step = detail.get("step").and_then(|v| v.as_str()).unwrap_or("");
        let _ = writeln!(
            text,
            "{}  {}  {:<18} {}",
            rec.at.format("%Y-%m-%d %H:%M:%S"),
            rec.run_id,
            kind,
            step
        );
    }
    if h.events.is_empty() {
        text.push_str("No events recorded.\n");
    }
    ctx.printer.text(&text);
    Ok(ExitStatus::Success)
}

pub(crate) async fn unlock(ctx: &Ctx, force: bool) -> Result<ExitStatus, CliError> {
    let Some(holder) = ctx.store.lock_holder().await? else {
        ctx.printer.text("The state is not locked.");
        ctx.printer
            .json(&serde_json::json!({"result": "unlock", "released": null}));
        return Ok(ExitStatus::Success);
    };
    // A remote lease that is held is being renewed (a dead holder's lapses by itself):
    // breaking it takes --force.
    let remote = ctx.store.is_remote();
    if (holder.alive_here() == Some(true) || remote) && !force {
        return Err(CliError::LockHeld {
            holder: holder.to_string(),
            pid: holder.pid,
        });
    }
    if remote {
        ctx.printer.note(&format!(
            "warning: breaking the lease held by {holder}: its next save is refused and it stops"
        ));
    }
    let released = ctx.store.force_unlock().await?;
    ctx.printer
        .json(&serde_json::json!({"result": "unlock", "released": released}));
    ctx.printer
        .text(&format!("Released the lock held by {holder}."));
    Ok(ExitStatus::Success)
}
