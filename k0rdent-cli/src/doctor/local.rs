//! The checks of this machine that need no configuration: the state directory (writable, a
//! probe file created and removed) and sudo (root, or `sudo -n true`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::{StateStore, StoreError};
use k0rdent_core::{FileStore, Remedy};
use k0rdent_process::Command;
use k0rdent_ssh::os;

use super::Check;

const STATE: &str = "state-dir";
const SUDO: &str = "sudo";

/// The state-directory check, and the recorded state when there is one.
pub(super) struct StateOutcome {
    pub(super) check: Check,
    pub(super) recorded: Option<DeploymentState>,
}

/// Creates and removes a probe file in `dir`, which must exist.
fn probe(dir: &Path) -> std::io::Result<()> {
    let file = dir.join(format!(".k0rdent-doctor-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)?;
    std::fs::remove_file(&file)
}

/// The nearest existing ancestor of `dir` (itself when it exists).
fn existing_ancestor(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors().find(|a| a.exists()).map(Path::to_path_buf)
}

pub(super) async fn state_dir(dir: &Path) -> StateOutcome {
    let shown = dir.display();
    let fail = |detail: String, remedy: &str| StateOutcome {
        check: Check::fail(STATE, detail, Some(remedy.to_owned())),
        recorded: None,
    };
    let move_on = "pass --state-dir with a directory (or move what is in the way)";
    if dir.exists() && !dir.is_dir() {
        return fail(format!("{shown} is a file, not a directory"), move_on);
    }
    if let Err(e) = crate::import::refuse_bash_state(dir) {
        return StateOutcome {
            check: Check::fail(STATE, e.to_string(), e.remedy().map(Cow::into_owned)),
            recorded: None,
        };
    }
    let Some(base) = existing_ancestor(dir) else {
        return fail(format!("{shown}: cannot resolve the path"), move_on);
    };
    if !base.is_dir() {
        return fail(
            format!("{shown}: {} is a file, not a directory", base.display()),
            move_on,
        );
    }
    if let Err(e) = probe(&base) {
        return fail(
            format!("{}: cannot create a file: {e}", base.display()),
            "make it writable for this user, or pass --state-dir with a writable directory",
        );
    }
    if !dir.exists() {
        return StateOutcome {
            check: Check::ok(
                STATE,
                format!(
                    "{shown} does not exist yet; deploy creates it in {} (writable)",
                    base.display()
                ),
            ),
            recorded: None,
        };
    }
    match FileStore::new(dir).load().await {
        Ok(Some(state)) => {
            let id = state.cluster_id.as_deref().unwrap_or("not prepared yet");
            StateOutcome {
                check: Check::ok(
                    STATE,
                    format!("{shown} is writable and holds deployment {id}"),
                ),
                recorded: Some(state),
            }
        }
        Ok(None) => StateOutcome {
            check: Check::ok(STATE, format!("{shown} is writable, no deployment yet")),
            recorded: None,
        },
        // Left by `k0rdent state migrate`: commands follow it (the keys stay here).
        Err(StoreError::Moved { pointer, .. }) => StateOutcome {
            check: Check::ok(
                STATE,
                format!(
                    "{shown} is writable and points to {}, where the deployment moved",
                    pointer.moved_to
                ),
            ),
            recorded: None,
        },
        Err(e) => StateOutcome {
            check: Check::fail(
                STATE,
                format!("{shown} is writable but its state is unusable: {e}"),
                e.remedy().map(Cow::into_owned),
            ),
            recorded: None,
        },
    }
}

/// Root, or sudo without a password prompt. sudo that needs a password only warns: `deploy`
/// and `vpn up` ask for it once in a terminal (never under `-y` or without one).
pub(super) async fn sudo() -> Check {
    if os::is_root() {
        return Check::ok(SUDO, "running as root");
    }
    let Some(sudo) = os::find_program("sudo") else {
        return Check::fail(
            SUDO,
            "not root, and sudo is not installed; bringing the WireGuard interface up needs root",
            Some("install sudo (and allow this user to use it), or run k0rdent as root".into()),
        );
    };
    let out = Command::new(&sudo)
        .args(["-n", "true"])
        .timeout(Duration::from_secs(10))
        .run()
        .await;
    match out {
        Ok(_) => Check::ok(SUDO, format!("`{} -n true` works", sudo.display())),
        Err(e) if e.stderr.contains("password is required") => Check::warn(
            SUDO,
            "sudo needs a password: deploy and `vpn up` ask for it once in a terminal, and fail \
             under -y or without a terminal",
            "run `sudo -v` just before `k0rdent deploy -y`, or run as root",
        ),
        Err(e) => Check::fail(
            SUDO,
            format!("`sudo -n true` failed: {e}"),
            Some(
                "allow this user to use sudo (`sudo -l` shows what it may run), or run k0rdent \
                 as root"
                    .into(),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[tokio::test]
    async fn a_state_path_that_is_a_file_fails_and_a_missing_one_passes_without_being_made() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        std::fs::write(&file, "x").unwrap();
        let out = state_dir(&file).await;
        assert_eq!(out.check.status, Status::Fail, "{:?}", out.check);
        assert!(out.check.detail.contains("is a file"), "{:?}", out.check);
        assert!(out.check.remedy.unwrap().contains("--state-dir"));

        let missing = dir.path().join("a/b/state");
        let out = state_dir(&missing).await;
        assert_eq!(out.check.status, Status::Ok, "{:?}", out.check);
        assert!(!dir.path().join("a").exists(), "doctor created a directory");
        // Only the file made above is left: the probe was removed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_state_dir_holding_a_migrate_pointer_passes_naming_where_it_points() {
        use k0rdent_core::state::{MovedTo, StatePointer};
        let dir = tempfile::tempdir().unwrap();
        let pointer = StatePointer::new(
            MovedTo::Remote {
                url: "azblob://acct/k0rdent/prod".into(),
            },
            None,
            3,
        );
        std::fs::write(
            dir.path().join(k0rdent_core::store::STATE_FILE),
            pointer.render().unwrap(),
        )
        .unwrap();
        let out = state_dir(dir.path()).await;
        assert_eq!(out.check.status, Status::Ok, "{:?}", out.check);
        assert!(
            out.check
                .detail
                .contains("points to azblob://acct/k0rdent/prod"),
            "{:?}",
            out.check
        );
    }
}
