//! What the stand-in keeps about its own runs, for the tests that drive the product: a JSON
//! line per invocation in `K0RDENT_STANDIN_LOG`, and an exclusive lock per configuration so
//! that two overlapping runs for the same cluster are caught (real k0sctl takes a lock on
//! every host, `phase/lock.go`; the stand-in's is local and refuses at once).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use serde_json::json;

use super::failure::Failure;

/// The environment variables whose presence and value are recorded.
pub const RECORDED_ENV: [&str; 4] = [
    "SSH_KNOWN_HOSTS",
    "KUBECONFIG",
    "K0RDENT_STANDIN_ROOT",
    "K0RDENT_STANDIN_KUBECONFIG",
];

/// Appends `{"tool":"k0sctl","argv":[...],"pid":N,"cwd":...,"env":{NAME: value or null}}`
/// to `log` as one line (one `write` on an append-mode file, so concurrent runs do not
/// interleave).
///
/// # Errors
/// The log cannot be opened or written.
pub fn record(log: &Path, argv: &[String]) -> Result<(), Failure> {
    let env: serde_json::Map<String, serde_json::Value> = RECORDED_ENV
        .iter()
        .map(|k| ((*k).to_owned(), std::env::var(k).ok().into()))
        .collect();
    let line = json!({
        "tool": "k0sctl",
        "argv": argv,
        "pid": std::process::id(),
        "cwd": std::env::current_dir().ok().map(|d| d.display().to_string()),
        "env": env,
    });
    let mut text = line.to_string();
    text.push('\n');
    File::options()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Failure::io(format!("append to {}", log.display()), e))
}

/// An exclusive lock, released when dropped (or when the process dies, however it dies).
#[derive(Debug)]
pub struct ConfigLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// Where the lock for `config` lives: in `dir` (named after the configuration's absolute
/// path) when given, else `<config>.lock`.
pub fn lock_path(config: &Path, dir: Option<&Path>) -> PathBuf {
    let abs = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    match dir {
        Some(d) => {
            let flat: String = abs
                .display()
                .to_string()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            d.join(format!("k0sctl{flat}.lock"))
        }
        None => {
            let mut p = abs.into_os_string();
            p.push(".lock");
            PathBuf::from(p)
        }
    }
}

/// Takes the lock for `config` without waiting.
///
/// # Errors
/// [`Failure::Locked`] when another run holds it; [`Failure::Io`] when the file cannot be
/// created.
pub fn lock(config: &Path, dir: Option<&Path>) -> Result<ConfigLock, Failure> {
    let path = lock_path(config, dir);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::io(format!("open lock {}", path.display()), e))?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            return Err(Failure::Locked(format!(
                "another k0sctl (stand-in) is already running for {} (lock {} is held)",
                config.display(),
                path.display()
            )));
        }
        Err(e) => {
            return Err(Failure::io(
                format!("lock {}", path.display()),
                std::io::Error::from(e),
            ));
        }
    }
    Ok(ConfigLock { _file: file, path })
}
