//! `k0rdent vpn up|down|status`: the hub side of the WireGuard tunnel on this machine.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k0rdent_core::{state::DeploymentState, store::StateStore};
use k0rdent_ssh::wireguard::{
    ProbeOptions, ResolvedNetwork, Transition, VpnGate, VpnInterface, hub_config_from_store,
};
use serde::Serialize;

use super::Ctx;
use crate::args::VpnAction;
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
            }
            ctx.printer.json(&Out {
                result: "vpn_status",
                interface: net.interface.to_string(),
                report: &report,
            });
            ctx.printer.text(&crate::view::tunnel::render(&report, |t| {
                ctx.printer.table(t)
            }));
            Ok(if report.all_alive() {
                ExitStatus::Success
            } else {
                ExitStatus::Blocked
            })
        }
        VpnAction::Up { .. } | VpnAction::Down { .. } => {
            let ips = public_ips(&state)?;
            let hub = hub_config_from_store(&*ctx.store, &net, &ips)
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
            if iface.is_up() != matches!(action, VpnAction::Up { .. }) {
                iface = iface.with_privilege(crate::sudo::privilege(ctx.request.yes).await?);
            }
            let result = if matches!(action, VpnAction::Up { .. }) {
                iface.up().await
            } else {
                iface.down().await
            };
            let t = result.map_err(|e| CliError::usage_from(&e))?;
            let what = match (action, t) {
                (_, Transition::Changed) => "done",
                (VpnAction::Up { .. }, _) => "already up",
                _ => "already down",
            };
            ctx.printer.json(&serde_json::json!({"result": "vpn", "interface": net.interface.to_string(), "outcome": what}));
            ctx.printer.text(&format!("{}: {what}", net.interface));
            Ok(ExitStatus::Success)
        }
    }
}
