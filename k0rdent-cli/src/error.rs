//! The CLI's error type: every failure carries what went wrong and, where known, what to do.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use k0rdent_core::{
    Remedy,
    engine::{ConfigError, EngineError},
    store::StoreError,
};

use crate::exit::ExitStatus;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The engine could not run (includes a lock held by another run).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine settings are invalid (e.g. an unknown `--until` phase).
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// The configuration is unusable (one line per problem).
    #[error(transparent)]
    Config(crate::config::ConfigError),
    /// Bad arguments or input, or a library error the CLI reports as such.
    #[error("{message}")]
    Usage {
        /// The `error:` line.
        message: String,
        /// The `hint:` line.
        remedy: Option<String>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    #[allow(missing_docs)]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Interrupted (Ctrl-C or SIGTERM) before the run started; nothing was changed.
    #[error("interrupted before anything was changed")]
    Interrupted,
    /// Keys that the deployment's VMs use are not on this machine (another machine deployed
    /// them): nothing is generated in their place.
    #[error(
        "this machine lacks private keys of deployment {cluster} that its VMs use: {} (looked in {})",
        missing.join(", "),
        dir.display()
    )]
    KeysMissing {
        /// The cluster id.
        cluster: String,
        /// The missing key names.
        missing: Vec<String>,
        /// Where they were looked for.
        dir: PathBuf,
        /// The host of the last recorded run (likely the one that has them).
        run_host: Option<String>,
        /// `--keys`, when given.
        keys_url: Option<String>,
    },
    /// The lock is held by a live process on this machine and `--force` was not given.
    #[error("the state is locked by {holder}, which is still running")]
    LockHeld {
        /// The holder as the lock describes it (pid, host, command, run, since).
        holder: String,
        /// The holder's pid, for the `kill` the remedy suggests.
        pid: u32,
    },
}

impl CliError {
    /// A usage error with a remedy.
    pub fn usage(message: impl Into<String>, remedy: impl Into<String>) -> Self {
        CliError::Usage {
            message: message.into(),
            remedy: Some(remedy.into()),
        }
    }

    /// A usage error that says what `error` says, with its [`Remedy`].
    pub fn usage_from(error: &(impl fmt::Display + Remedy + ?Sized)) -> Self {
        CliError::Usage {
            message: error.to_string(),
            remedy: error.remedy().map(Cow::into_owned),
        }
    }

    /// The exit status this error maps to.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CliError::Engine(e) if e.is_locked() => ExitStatus::Locked,
            CliError::Store(StoreError::Locked { .. }) | CliError::LockHeld { .. } => {
                ExitStatus::Locked
            }
            CliError::Interrupted => ExitStatus::Interrupted,
            CliError::KeysMissing { .. } => ExitStatus::Blocked,
            _ => ExitStatus::Error,
        }
    }
}

/// The engine's and the store's own remedies; the CLI's for the rest.
impl Remedy for CliError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            CliError::Engine(e) => e.remedy(),
            CliError::Store(e) => e.remedy(),
            CliError::Settings(ConfigError::UnknownUntil { until, phases }) => {
                Some(match closest(until.as_str(), phases) {
                    Some(p) => format!("did you mean `--until {p}`?").into(),
                    None => "`k0rdent plan` lists the phases".into(),
                })
            }
            CliError::Settings(_) => None,
            CliError::Usage { remedy, .. } => remedy.as_deref().map(Cow::Borrowed),
            CliError::Config(_) => Some("fix the configuration file and run again".into()),
            CliError::Io { path, source } => k0rdent_core::store::io_remedy(path, source),
            CliError::Interrupted => Some("run the command again when you are ready".into()),
            CliError::KeysMissing {
                dir,
                run_host,
                keys_url,
                ..
            } => Some(keys_missing_remedy(dir, run_host.as_deref(), keys_url.as_deref()).into()),
            CliError::LockHeld { pid, .. } => Some(
                format!(
                    "wait for it, stop it (kill {pid}), or break the lock with `k0rdent state unlock --force`"
                )
                .into(),
            ),
        }
    }
}

/// How to bring missing keys: from the machine that has them (the host of the last recorded
/// run), or from the vault.
fn keys_missing_remedy(
    dir: &std::path::Path,
    host: Option<&str>,
    keys_url: Option<&str>,
) -> String {
    let here = k0rdent_core::store::hostname();
    let (from, copy) = match host {
        Some(h) if h == here => (
            format!("{h} (this host, another state directory), which ran the deployment last,"),
            "cp -rp OTHER_STATE_DIR/keys".to_owned(),
        ),
        Some(h) => (
            format!("{h}, which ran the deployment last,"),
            format!("scp -rp {h}:STATE_DIR/keys"),
        ),
        None => (
            "the machine that deployed it".to_owned(),
            "scp -rp HOST:STATE_DIR/keys".to_owned(),
        ),
    };
    let parent = dir
        .parent()
        .map_or_else(|| ".".to_owned(), |p| p.display().to_string());
    match keys_url {
        Some(url) => format!(
            "{url} has none of them: run from {from} or copy its keys/ directory here and run \
             without --keys; keys are never regenerated while VMs use them"
        ),
        None => format!(
            "copy the keys/ directory from {from} to {} (keep it 0700 and the files 0600: `{copy} \
             {parent}`), or, if the deployment keeps its keys in Azure Key Vault, run with --keys \
             keyvault://VAULT (or K0RDENT_KEYS); keys are never regenerated while VMs use them",
            dir.display(),
        ),
    }
}

/// What to do when a key in `keys/` could not be used: when the system refused to read it,
/// the file is there and only its owner or mode is wrong — restoring it from a backup would
/// not help; otherwise it is missing or damaged.
pub fn key_remedy(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return "the key file exists but this user may not read it: run as the user that \
                    deployed, or fix the owner and mode of keys/ (`ls -l` it)"
                .to_owned();
        }
        if let Some(StoreError::Io { source, .. }) = e.downcast_ref::<StoreError>()
            && source.kind() == std::io::ErrorKind::PermissionDenied
        {
            return key_remedy(source);
        }
        cause = e.source();
    }
    "restore keys/ from a backup (keys are never regenerated silently)".to_owned()
}

/// The candidate within two edits of `word` (the nearest first), as a "did you mean".
fn closest<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edits(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_phase_gets_the_nearest_one() {
        let phases: Vec<String> = ["setup_network", "create_vms", "install_k0s"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest("create_vm", &phases), Some("create_vms"));
        assert_eq!(closest("instal_k0s", &phases), Some("install_k0s"));
        assert_eq!(closest("everything", &phases), None);
        assert_eq!(edits("kitten", "sitting"), 3);
    }
}
