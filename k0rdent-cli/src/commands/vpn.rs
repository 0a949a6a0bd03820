//! `k0rdent vpn up|down|status`.

use super::Ctx;
use crate::args::VpnAction;
use crate::error::CliError;
use crate::exit::ExitStatus;

pub(crate) async fn run(ctx: &Ctx, action: VpnAction) -> Result<ExitStatus, CliError> {
    // The tunnel is described by the deployment: without a pipeline there is none yet.
    ctx.factory.deployment(&ctx.request, &ctx.store).await?;
    Err(CliError::NoPhases(format!(
        "`vpn {}` needs the VPN phases, which are not part of this build yet",
        match action {
            VpnAction::Up => "up",
            VpnAction::Down => "down",
            VpnAction::Status => "status",
        }
    )))
}
