//! `k0rdent vpn up|down|status`: the hub side of the WireGuard tunnel on this machine.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k0rdent_core::id::RunId;
use k0rdent_core::store::LockHolder;
use k0rdent_core::{state::DeploymentState, store::StateStore};
use k0rdent_ssh::wireguard::{
    ProbeOptions, ResolvedNetwork, Transition, VpnGate, VpnInterface, hub_config_from_store,
};
use serde::Serialize;

use super::Ctx;
use crate::args::VpnAction;
use crate::deployment::vpn::{hub_elsewhere, hub_here, hub_is_here, takeover_message};
use crate::error::CliError;
use crate::exit::ExitStatus;

fn network(
    state: Option<&DeploymentState>,
) -> Result<(DeploymentState, ResolvedNetwork), CliError> {
    let state = state.cloned().ok_or_else(|| {
        CliError::usage(
            "no deployment in this state directory",
            "run `k0rdent deploy` first",
        )
    })?;
    let net = ResolvedNetwork::from_state(&state).map_err(|e| {
        CliError::usage(
            e.to_string(),
            "run `k0rdent deploy --until create_vms` first",
        )
    })?;
    Ok((state, net))
}

fn public_ips(state: &DeploymentState) -> Result<BTreeMap<String, IpAddr>, CliError> {
    let mut ips = BTreeMap::new();
    for (name, node) in &state.nodes {
        match node.public_ip.as_deref().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => {
                ips.insert(name.clone(), ip);
            }
            _ => {
                return Err(CliError::usage(
                    format!("no public IP is recorded for {name}"),
                    "run `k0rdent deploy --until create_vms` so the VMs and their IPs exist",
                ));
            }
        }
    }
    Ok(ips)
}

pub(crate) async fn run(ctx: &Ctx, action: VpnAction) -> Result<ExitStatus, CliError> {
    let recorded = ctx.store.load().await?;
    let (state, net) = network(recorded.as_ref())?;
    match action {
        VpnAction::Status => {
            let report = VpnGate::new(ProbeOptions::default())
                .report(&state)
                .await
                .map_err(|e| CliError::usage(e.to_string(), "run `k0rdent deploy` first"))?;
            #[derive(Serialize)]
            struct Out<'a> {
                result: &'static str,
                interface: String,
                report: &'a k0rdent_ssh::wireguard::TunnelReport,
                #[serde(skip_serializing_if = "Option::is_none")]
                hub: Option<&'a k0rdent_core::state::VpnHub>,
            }
            ctx.printer.json(&Out {
                result: "vpn_status",
                interface: net.interface.to_string(),
                report: &report,
                hub: state.vpn_hub.as_ref(),
            });
            ctx.printer.text(&crate::view::tunnel::render(&report, |t| {
                ctx.printer.table(t)
            }));
            if let Some(h) = &state.vpn_hub {
                let since = h.since.format("%Y-%m-%d %H:%M UTC");
                ctx.printer.text(&match hub_elsewhere(Some(h)) {
                    None => format!("Hub: this machine ({}, since {since})", h.host),
                    Some(_) => format!(
                        "Hub: {} (since {since}); `k0rdent vpn up` here takes it over",
                        h.host
                    ),
                });
            }
            Ok(if report.all_alive() {
                ExitStatus::Success
            } else {
                ExitStatus::Blocked
            })
        }
        VpnAction::Up { .. } => {
            // Another machine's hub is taken over only under the lock (a live run elsewhere
            // makes this exit 4 naming it); recording this machine when nothing is recorded
            // yet is done if the lock is free, and skipped otherwise (the run holding it
            // records the hub when it connects).
            let elsewhere = hub_elsewhere(state.vpn_hub.as_ref()).is_some();
            let holder = LockHolder::current(RunId::generate(), "vpn up");
            let lock = if elsewhere {
                Some(ctx.store.lock(&holder).await?)
            } else if state.vpn_hub.is_none() {
                ctx.store.lock(&holder).await.ok()
            } else {
                None
            };
            // Under the lock, the state as it is now (another machine may have moved it).
            let state = match &lock {
                Some(_) => ctx.store.load().await?.unwrap_or(state),
                None => state,
            };
            let previous = hub_elsewhere(state.vpn_hub.as_ref()).cloned();
            if let Some(previous) = &previous {
                ctx.printer.note(&format!(
                    "warning: {}",
                    takeover_message(previous, net.interface.as_str())
                ));
            }
            let outcome = switch(ctx, &state, &net, true).await?;
            if lock.is_some() && !hub_is_here(state.vpn_hub.as_ref()) {
                let mut st = state;
                st.vpn_hub = Some(hub_here());
                ctx.store.save(&mut st).await?;
            }
            drop(lock);
            report(
                ctx,
                &net,
                outcome,
                previous.as_ref().map(|h| h.host.as_str()),
            );
            Ok(ExitStatus::Success)
        }
        VpnAction::Down { .. } => {
            let outcome = switch(ctx, &state, &net, false).await?;
            report(ctx, &net, outcome, None);
            Ok(ExitStatus::Success)
        }
    }
}

/// Brings the hub interface up or down; what happened (`done`, `already up`, ...).
async fn switch(
    ctx: &Ctx,
    state: &DeploymentState,
    net: &ResolvedNetwork,
    up: bool,
) -> Result<&'static str, CliError> {
    let ips = public_ips(state)?;
    let hub = hub_config_from_store(&*ctx.store, net, &ips)
        .await
        .map_err(|e| CliError::usage(e.to_string(), crate::error::key_remedy(&e)))?;
    hub.write(&*ctx.store)
        .await
        .map_err(|e| CliError::usage_from(&e))?;
    let mut iface = VpnInterface::new(
        net.interface.clone(),
        ctx.store.keys_dir().join(hub.file_name()),
    );
    // Ask for a password (if at all) only when wg-quick will run.
    if iface.is_up() != up {
        iface = iface.with_privilege(crate::sudo::privilege(ctx.request.yes).await?);
    }
    let result = if up {
        iface.up().await
    } else {
        iface.down().await
    };
    let t = result.map_err(|e| CliError::usage_from(&e))?;
    Ok(match (up, t) {
        (_, Transition::Changed) => "done",
        (true, _) => "already up",
        _ => "already down",
    })
}

/// The result; `took_over_from` is the machine that was the hub before this `vpn up`.
fn report(ctx: &Ctx, net: &ResolvedNetwork, what: &str, took_over_from: Option<&str>) {
    let mut out = serde_json::json!({"result": "vpn", "interface": net.interface.to_string(), "outcome": what});
    if let Some(host) = took_over_from {
        out["took_over_from"] = serde_json::Value::from(host);
    }
    ctx.printer.json(&out);
    ctx.printer.text(&format!("{}: {what}", net.interface));
}
