//! `k0rdent render k0sctl|hub`, from the recorded state: the k0sctl configuration
//! `install_k0s` would apply, and the hub's wg-quick file as `setup_vpn` writes it — with its
//! private key left out (it never prints; the file itself is `keys/<interface>.conf`, 0600,
//! for `wg-quick up` or the WireGuard app).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k0rdent_core::store::StateStore;
use k0rdent_ssh::wireguard::{ResolvedNetwork, hub_config_from_store};

use super::Ctx;
use crate::args::RenderTarget;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// The file with its `PrivateKey` line replaced by where the key is.
fn redacted(text: &str, key_file: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with("PrivateKey") {
                format!("PrivateKey = <not printed: {key_file}>")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The k0sctl configuration from the recorded state and the configuration's k0s version and
/// admin user — the document `install_k0s` writes to `<state-dir>/k0sctl.yaml` and applies.
fn k0sctl(ctx: &Ctx, state: &k0rdent_core::state::DeploymentState) -> Result<String, CliError> {
    let loaded = crate::deployment::load_config(&ctx.request, Some(state))?;
    let c = &loaded.config;
    let input = crate::deployment::k0s::hosts::k0sctl_input(
        state,
        &c.software.k0s_version,
        c.ssh_user.as_str(),
        ctx.store.dir(),
        &crate::deployment::removed_nodes(state, &loaded),
    )
    .map_err(|e| {
        CliError::usage(
            e.to_string(),
            "the VMs must exist first: `k0rdent deploy --until create_vms`",
        )
    })?;
    crate::k0s::render_k0sctl_yaml(&input)
        .map_err(|e| CliError::usage(e.to_string(), "report this as a bug"))
}

pub(crate) async fn run(ctx: &Ctx, target: RenderTarget) -> Result<ExitStatus, CliError> {
    let state = ctx.store.load().await?.ok_or_else(|| {
        CliError::usage(
            "no deployment in this state directory",
            "run `k0rdent deploy` first",
        )
    })?;
    match target {
        RenderTarget::K0sctl => {
            let text = k0sctl(ctx, &state)?;
            ctx.printer
                .json(&serde_json::json!({"result": "render", "target": "k0sctl", "text": text}));
            ctx.printer.text(text.trim_end());
            Ok(ExitStatus::Success)
        }
        RenderTarget::Hub => {
            let net = ResolvedNetwork::from_state(&state).map_err(|e| {
                CliError::usage(
                    e.to_string(),
                    "run `k0rdent deploy --until create_vms` first",
                )
            })?;
            let ips: BTreeMap<String, IpAddr> = state
                .nodes
                .iter()
                .filter_map(|(n, r)| Some((n.clone(), r.public_ip.as_deref()?.parse().ok()?)))
                .collect();
            crate::deployment::missing_keys::require(
                &ctx.store,
                &state,
                ctx.request.keys_url.as_deref(),
            )
            .await?;
            let hub = hub_config_from_store(&*ctx.store, &net, &ips)
                .await
                .map_err(|e| {
                    CliError::usage(
                        e.to_string(),
                        "the VMs must exist first: `k0rdent deploy --until create_vms`",
                    )
                })?;
            let file = ctx.store.keys_dir().join(hub.file_name());
            let text = redacted(
                hub.text.expose(),
                &format!(
                    "keys/{} (the full file is {})",
                    k0rdent_core::state::keys::WIREGUARD_HUB,
                    file.display()
                ),
            );
            ctx.printer.json(&serde_json::json!({
                "result": "render", "target": "hub", "file": file.display().to_string(), "text": text
            }));
            ctx.printer.text(text.trim_end());
            Ok(ExitStatus::Success)
        }
    }
}
