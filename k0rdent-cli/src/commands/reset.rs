//! `k0rdent reset`.

use std::io::{BufRead, IsTerminal};

use k0rdent_core::state::{DeploymentState, RunOutcome};
use k0rdent_core::store::StateStore;
use serde::Serialize;

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// What a reset takes away, line by line, for the prompt: the subscription, the resource
/// group, the VMs and the local files.
fn what_goes(ctx: &Ctx, state: Option<&DeploymentState>) -> String {
    let Some(state) = state else {
        return format!(
            "  nothing is recorded in {}; only what the configuration names is looked for\n",
            ctx.store.dir().display()
        );
    };
    let cluster = state.cluster_id.as_deref().unwrap_or("(not prepared)");
    let named_group = state
        .cluster_id
        .as_ref()
        .map(|c| format!("{c}-resgrp"))
        .unwrap_or_else(|| "(none recorded)".to_owned());
    let subscription = state
        .azure
        .as_ref()
        .map_or("(none recorded)".to_owned(), |a| a.subscription_id.clone());
    let group = crate::deployment::load_config(&ctx.request, Some(state))
        .ok()
        .and_then(|l| l.config.azure.resource_group.map(|g| g.to_string()))
        .unwrap_or(named_group);
    // The VMs whose creation ever started: they may exist.
    let vms: Vec<String> = match crate::deployment::prepare::vm_presence(state) {
        k0rdent_ssh::wireguard::VmPresence::Known(names) => names.into_iter().collect(),
        k0rdent_ssh::wireguard::VmPresence::Unknown => Vec::new(),
    };
    let dir = ctx.store.dir().display();
    format!(
        "  deployment      {cluster}\n\
         \x20 subscription    {subscription}\n\
         \x20 resource group  {group}, with every resource in it\n\
         \x20 VMs             {} ({})\n\
         \x20 local files     {dir}/keys (SSH and WireGuard keys), the kubeconfig and known_hosts;\n\
         \x20                 the state and event log are archived under {dir}/archive\n",
        vms.len(),
        if vms.is_empty() {
            "none".to_owned()
        } else {
            vms.join(", ")
        }
    )
}

fn confirm(ctx: &Ctx, state: Option<&DeploymentState>) -> Result<bool, CliError> {
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
        "This tears down, in reverse order:\n{}Type 'yes' to continue:",
        what_goes(ctx, state)
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
    let state = ctx.store.load().await?;
    if !confirm(ctx, state.as_ref())? {
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
