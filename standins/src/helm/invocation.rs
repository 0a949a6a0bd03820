//! What the stand-in records about each run and the lock that refuses overlapping runs,
//! both driven by the environment the test harness sets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::HelmError;

/// Knobs a test sets through the environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `K0RDENT_STANDIN_LOG`: JSON-lines file each invocation is appended to.
    pub log: Option<PathBuf>,
    /// `K0RDENT_STANDIN_DIR`: where the lock file lives (else next to the log).
    pub dir: Option<PathBuf>,
    /// `K0RDENT_STANDIN_HELM_WORK_MS`: how long an install/upgrade/rollback "works".
    pub work: Duration,
    /// `K0RDENT_STANDIN_HELM_FAIL`: makes the work fail with this message.
    pub fail: Option<String>,
    /// `K0RDENT_STANDIN_HELM_VERSION`: the version `helm version` reports.
    pub version: Option<String>,
}

impl Settings {
    /// Reads the knobs from the process environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Settings {
            log: var("K0RDENT_STANDIN_LOG").map(PathBuf::from),
            dir: var("K0RDENT_STANDIN_DIR").map(PathBuf::from),
            work: Duration::from_millis(
                var("K0RDENT_STANDIN_HELM_WORK_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(300),
            ),
            fail: var("K0RDENT_STANDIN_HELM_FAIL"),
            version: var("K0RDENT_STANDIN_HELM_VERSION"),
        }
    }

    fn lock_path(&self) -> Option<PathBuf> {
        match (&self.dir, &self.log) {
            (Some(dir), _) => Some(dir.join("helm.lock")),
            (None, Some(log)) => Some(log.with_file_name("helm.lock")),
            (None, None) => None,
        }
    }
}

/// Appends one JSON line: argv, and `KUBECONFIG` (null when unset) and every `HELM_*`.
pub fn record(settings: &Settings, argv: &[String]) -> Result<(), HelmError> {
    let Some(log) = &settings.log else {
        return Ok(());
    };
    let mut env = Map::new();
    env.insert(
        "KUBECONFIG".into(),
        std::env::var("KUBECONFIG").map_or(Value::Null, Value::String),
    );
    let mut helm_vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("HELM_"))
        .collect();
    helm_vars.sort();
    for (k, v) in helm_vars {
        env.insert(k, Value::String(v));
    }
    let line = json!({"tool": "helm", "pid": std::process::id(), "argv": argv, "env": env});
    let mut text = line.to_string();
    text.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| HelmError::Harness(format!("appending to {}: {e}", log.display())))
}

/// Takes the invocation lock, held until the returned file is dropped (process exit).
pub fn lock(settings: &Settings) -> Result<Option<File>, HelmError> {
    let Some(path) = settings.lock_path() else {
        return Ok(None);
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HelmError::Harness(format!("opening lock {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(HelmError::Harness(format!(
            "another stand-in helm invocation is running (lock {} is held); overlapping helm runs are refused",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(HelmError::Harness(format!(
            "locking {}: {e}",
            path.display()
        ))),
    }
}
