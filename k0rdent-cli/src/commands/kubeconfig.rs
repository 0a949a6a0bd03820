//! `k0rdent kubeconfig [--export]`: where the cluster's kubeconfig is (written by
//! `install_k0s`, 0600, its server the first controller's tunnel address).

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;

use crate::cluster::kubeconfig::KUBECONFIG_FILE;

pub(crate) async fn run(ctx: &Ctx, export: bool) -> Result<ExitStatus, CliError> {
    let path = ctx.store.dir().join(KUBECONFIG_FILE);
    if !path.is_file() {
        return Err(CliError::usage(
            format!(
                "no kubeconfig at {}: k0s is not installed yet",
                path.display()
            ),
            "run `k0rdent deploy` (install_k0s writes it)",
        ));
    }
    let abs = std::path::absolute(&path).map_err(|source| CliError::Io {
        path: path.clone(),
        source,
    })?;
    let shown = abs.display().to_string();
    ctx.printer
        .json(&serde_json::json!({"result": "kubeconfig", "path": shown}));
    if export {
        ctx.printer.text(&format!(
            "export KUBECONFIG={}",
            k0rdent_ssh::ssh::shell_quote(&shown)
        ));
    } else {
        ctx.printer.text(&shown);
    }
    Ok(ExitStatus::Success)
}
