//! The `config` check: the configuration a deploy would use (`--config`, else the one the
//! state records) parses and validates.

use std::path::{Path, PathBuf};

use k0rdent_core::state::DeploymentState;

use super::Check;
use crate::config::{self, Loaded};
use crate::request::Request;

const NAME: &str = "config";

/// The check, and the configuration when it loaded.
pub(super) struct Outcome {
    pub(super) check: Check,
    pub(super) loaded: Option<Loaded>,
}

/// Where the configuration is, as `deploy` would find it.
fn path(request: &Request, recorded: Option<&DeploymentState>) -> Option<PathBuf> {
    request.config.clone().or_else(|| {
        recorded
            .and_then(|s| s.config.as_ref())
            .map(|c| PathBuf::from(&c.path))
    })
}

pub(super) fn check(request: &Request, recorded: Option<&DeploymentState>) -> Outcome {
    let Some(path) = path(request, recorded) else {
        let remedy = if Path::new("k0rdent.yaml").is_file() {
            "pass --config k0rdent.yaml (or set K0RDENT_CONFIG)".to_owned()
        } else {
            "run `k0rdent config init` to write one, then pass it with --config".to_owned()
        };
        return Outcome {
            check: Check::fail(
                NAME,
                "no configuration: --config and K0RDENT_CONFIG are not set, and the state \
                 records none",
                Some(remedy),
            ),
            loaded: None,
        };
    };
    match config::load(&path) {
        Ok(loaded) => {
            let c = &loaded.config;
            let detail = format!(
                "{}: {} controller(s) {}, {} worker(s) {} in {}",
                path.display(),
                c.controllers.count,
                c.controllers.size,
                c.workers.count,
                c.workers.size,
                c.azure.location,
            );
            let check = match loaded.warnings.first() {
                None => Check::ok(NAME, detail),
                Some(w) => Check::warn(
                    NAME,
                    format!("{detail}; {} warning(s), first: {w}", loaded.warnings.len()),
                    "review the warnings; they do not stop a deploy",
                ),
            };
            Outcome {
                check,
                loaded: Some(loaded),
            }
        }
        Err(e) => {
            // Every problem on one line: the table has one line per check.
            let problems: Vec<String> = e.to_string().lines().map(str::to_owned).collect();
            Outcome {
                check: Check::fail(
                    NAME,
                    problems.join("; "),
                    Some(format!(
                        "fix {} (`k0rdent plan --config {}` shows the same problems)",
                        path.display(),
                        path.display()
                    )),
                ),
                loaded: None,
            }
        }
    }
}
