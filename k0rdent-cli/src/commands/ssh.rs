//! `k0rdent ssh NODE [-- CMD]`: OpenSSH to a node through the tunnel, with the admin key and
//! only the pinned host keys (`StrictHostKeyChecking yes` against the state's
//! `known_hosts`; the user's own `known_hosts` and ssh config cannot loosen it). The tunnel
//! is probed first: a node that does not answer gets the tunnel's diagnosis and exit 3, not
//! an SSH timeout.

use std::sync::Arc;

use k0rdent_core::state::{DeploymentState, keys};
use k0rdent_core::store::StateStore;
use k0rdent_ssh::ssh::write_known_hosts;
use k0rdent_ssh::ssh::{
    ConnectOptions, NodeTarget, Route, SshConnector, SshCredentials, StatePins,
};
use k0rdent_ssh::wireguard::{TunnelExpectation, TunnelProbe};

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

fn no_deployment() -> CliError {
    CliError::usage(
        "no deployment in this state directory",
        "run `k0rdent deploy` first, or pass --state-dir",
    )
}

/// Pins the node's host keys on first contact (through our own connector, which reads them
/// over the authenticated session) and records them, so OpenSSH can check them strictly.
async fn pin_first(
    ctx: &Ctx,
    state: &mut DeploymentState,
    target: &NodeTarget,
    user: &str,
    exp: TunnelExpectation,
) -> Result<(), CliError> {
    let creds = SshCredentials::from_store(&*ctx.store, user)
        .await
        .map_err(|e| CliError::usage_from(&e))?;
    let connector = SshConnector::new(
        creds,
        ConnectOptions::default(),
        Route::Tunnel {
            probe: TunnelProbe::default(),
            expectation: Arc::new(exp),
        },
    );
    let pins = StatePins::new(state.clone());
    connector
        .connect(target, &pins)
        .await
        .map_err(|e| CliError::usage_from(&e))?;
    let pinned = pins.snapshot().await;
    let keys = pinned
        .nodes
        .get(&target.name)
        .map(|n| n.ssh_host_keys.clone())
        .unwrap_or_default();
    // Record them unless a run holds the lock (it pins the same keys when it connects).
    if let Ok(lock) = ctx
        .store
        .lock(&k0rdent_core::store::LockHolder::current(
            k0rdent_core::id::RunId::generate(),
            "ssh",
        ))
        .await
    {
        if let Some(mut fresh) = ctx.store.load().await? {
            if let Some(n) = fresh.nodes.get_mut(&target.name) {
                n.ssh_host_keys = keys.clone();
            }
            ctx.store.save(&mut fresh).await?;
        }
        drop(lock);
    }
    if let Some(n) = state.nodes.get_mut(&target.name) {
        n.ssh_host_keys = keys;
    }
    Ok(())
}

pub(crate) async fn run(ctx: &Ctx, node: &str, command: &[String]) -> Result<ExitStatus, CliError> {
    let mut state = ctx.store.load().await?.ok_or_else(no_deployment)?;
    let loaded = crate::deployment::load_config(&ctx.request, Some(&state))?;
    let user = loaded.config.ssh_user.to_string();
    let target = NodeTarget::tunnel(&state, node).ok_or_else(|| {
        let known: Vec<&str> = state.nodes.keys().map(String::as_str).collect();
        CliError::usage(
            format!("no node {node} with a tunnel address in this deployment"),
            format!("the nodes are: {}", known.join(", ")),
        )
    })?;
    // Every key the VMs use, named at once, before pinning connects with the admin key.
    crate::deployment::missing_keys::require(&ctx.store, &state, ctx.request.keys_url.as_deref())
        .await?;
    let exp = TunnelExpectation::from_state(&state)
        .map_err(|e| CliError::usage(e.to_string(), "run `k0rdent deploy` so the VPN is set up"))?;
    if let Some(h) = TunnelProbe::default().check_peer(&exp, node).await
        && !h.is_alive()
    {
        ctx.printer.text(&format!("{h}"));
        if let Some(r) = k0rdent_core::Remedy::remedy(&h) {
            ctx.printer.text(&format!("hint: {r}"));
        }
        return Ok(ExitStatus::Blocked);
    }
    if state
        .nodes
        .get(node)
        .is_none_or(|n| n.ssh_host_keys.is_empty())
    {
        pin_first(ctx, &mut state, &target, &user, exp).await?;
    }
    let known_hosts = write_known_hosts(&ctx.store, &state)?;
    let key = ctx.store.keys_dir().join(keys::SSH_ADMIN);
    let ssh = k0rdent_ssh::os::find_program("ssh").ok_or_else(|| {
        CliError::usage("ssh was not found on PATH", "install the OpenSSH client")
    })?;
    let opt = |k: &str, v: &str| ["-o".to_owned(), format!("{k}={v}")];
    let mut args: Vec<String> = Vec::new();
    for (k, v) in [
        ("UserKnownHostsFile", known_hosts.display().to_string()),
        ("GlobalKnownHostsFile", "/dev/null".to_owned()),
        ("StrictHostKeyChecking", "yes".to_owned()),
        ("IdentitiesOnly", "yes".to_owned()),
        ("IdentityFile", key.display().to_string()),
        ("ConnectTimeout", "10".to_owned()),
    ] {
        args.extend(opt(k, &v));
    }
    args.extend(["-l".to_owned(), user, target.addr.ip().to_string()]);
    if !command.is_empty() {
        args.push("--".to_owned());
        args.extend(command.iter().cloned());
    }
    k0rdent_process::Command::new(ssh)
        .args(args)
        .foreground()
        .run()
        .await
        .map_err(|e| CliError::usage(e.to_string(), "see ssh's message above"))?;
    Ok(ExitStatus::Success)
}
