//! `k0rdent import-bash-state DIR`: adopts a deployment the Bash tool made (see
//! [`crate::import`]). Prints what was imported and never a key.

use std::path::Path;

use k0rdent_core::id::RunId;
use k0rdent_core::store::{LockHolder, StateStore};

use super::Ctx;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::import;

pub(crate) async fn run(ctx: &Ctx, dir: &Path) -> Result<ExitStatus, CliError> {
    let bash = import::read_dir(dir).map_err(|e| {
        CliError::usage(
            e.to_string(),
            "pass the Bash tool's directory (the one holding .clusterid and state/)",
        )
    })?;
    let config = import::config_path(ctx.request.config.as_deref(), &bash);
    let loaded = crate::config::load(&config).map_err(CliError::Config)?;
    let config_abs = std::path::absolute(&loaded.path).unwrap_or_else(|_| loaded.path.clone());
    let loaded = crate::config::Loaded {
        path: config_abs,
        ..loaded
    };
    let mut imported =
        import::map(&bash, &loaded, chrono::Utc::now()).map_err(|e| CliError::usage_from(&e))?;
    let _lock = ctx
        .store
        .lock(&LockHolder::current(RunId::generate(), "import-bash-state"))
        .await?;
    import::write(&ctx.store, &mut imported).await?;
    for w in &imported.warnings {
        ctx.printer.note(&format!("warning: {w}"));
    }
    let s = &imported.state;
    let id = s.cluster_id.clone().unwrap_or_default();
    let keys: Vec<&str> = imported.secrets.iter().map(|(n, _)| n.as_str()).collect();
    ctx.printer.json(&serde_json::json!({
        "result": "imported",
        "cluster_id": id,
        "from": dir.display().to_string(),
        "config": loaded.path.display().to_string(),
        "state_dir": ctx.store.dir().display().to_string(),
        "nodes": s.nodes.keys().collect::<Vec<_>>(),
        "keys": keys,
    }));
    ctx.printer.text(&format!(
        "Imported {id} from {} ({} nodes, {} keys into {}/keys).\n\
         The configuration recorded is {}.\n\
         Run `k0rdent plan --state-dir {}` to see what exists and will be skipped.",
        dir.display(),
        s.nodes.len(),
        keys.len(),
        ctx.store.dir().display(),
        loaded.path.display(),
        ctx.store.dir().display(),
    ));
    Ok(ExitStatus::Success)
}
