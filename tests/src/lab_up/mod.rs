//! `k0rdent-lab up|down|status|run`: the lab as a background service on one machine — the
//! ARM emulator whose VMs are network namespaces ([`crate::lab::vm_backend`]), the fake
//! Kubernetes API on every controller whose k0s runs, kcm's part played on it — and the
//! directory that tells the plain `k0rdent` CLI how to reach it.
//!
//! The lab directory ([`LabHome`]) holds, besides the user's own files:
//! - `env`: the `export` lines `up` prints (Azure variables naming the emulator, `PATH` with
//!   `bin/` first, `K0RDENT_CONFIG`, `K0RDENT_STATE_DIR`);
//! - `bin/`: `k0rdent`, `k0sctl` and `helm` — this executable acting as the real CLI and as
//!   the stand-ins (`K0RDENT_LAB_AS`, see [`AS_ENV`]);
//! - `tools/`: the stand-ins' invocation logs and locks, the admin kubeconfig the stand-in
//!   k0sctl registers nodes with;
//! - `k0rdent-lab.yaml` (3 controllers, 2 workers) and `state/`;
//! - `lab.pid` and `lab.log`: the running lab's process and its log.

pub mod control;
pub mod demo;
pub mod serve;

use std::path::{Path, PathBuf};

/// Set by the `bin/` wrappers: which program this executable is to be (`k0rdent`, `k0sctl`,
/// `helm`).
pub const AS_ENV: &str = "K0RDENT_LAB_AS";

/// How the lab's log line saying it is up begins; the slot number follows.
pub const UP_MARK: &str = "lab up: slot ";

/// The line the lab's log ends with when `down` removed everything.
pub const CLEAN_MARK: &str = "lab down: nothing left";

/// The lab directory's paths.
#[derive(Debug, Clone)]
pub struct LabHome {
    /// The directory (absolute).
    pub dir: PathBuf,
}

#[allow(missing_docs)]
impl LabHome {
    /// The lab in `dir` (made absolute against the working directory).
    ///
    /// # Errors
    /// The working directory cannot be read.
    pub fn new(dir: &Path) -> std::io::Result<LabHome> {
        Ok(LabHome {
            dir: std::path::absolute(dir)?,
        })
    }

    pub fn env_file(&self) -> PathBuf {
        self.dir.join("env")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("lab.pid")
    }
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("lab.log")
    }
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }
    pub fn tools_dir(&self) -> PathBuf {
        self.dir.join("tools")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join(crate::lab_dir::CONFIG_FILE)
    }
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(crate::lab_dir::STATE_DIR)
    }
    /// The kubeconfig `k0rdent deploy` writes (what `kubectl` uses, unmodified).
    pub fn kubeconfig(&self) -> PathBuf {
        self.state_dir().join("kubeconfig")
    }
    /// The admin kubeconfig the stand-in k0sctl registers nodes with (as their kubelets
    /// would, from inside the VNet, not through the operator's tunnel).
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.tools_dir().join("admin.kubeconfig")
    }

    /// The running lab's pid: the one in `lab.pid` while that process is alive and is a
    /// `k0rdent-lab serve` of this directory.
    pub fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours = args.iter().any(|a| a == "serve")
            && args.iter().any(|a| Path::new(a) == self.dir.as_path());
        ours.then_some(pid)
    }

    /// The running (or last) lab's headline from its log (`lab up: slot N, emulator URL,
    /// pid P`) and its slot number.
    pub fn headline(&self) -> Option<(String, u8)> {
        let log = std::fs::read_to_string(self.log_file()).ok()?;
        let line = log.lines().find(|l| l.starts_with(UP_MARK))?;
        let slot = line[UP_MARK.len()..].split(',').next()?.parse().ok()?;
        Some((line.to_owned(), slot))
    }

    /// The variables of `env` as `(name, value)`, `PATH` with the lab's `bin/` put before
    /// `current_path`.
    ///
    /// # Errors
    /// `env` is missing or has a line that is not `export NAME='VALUE'`.
    pub fn env_vars(&self, current_path: &str) -> Result<Vec<(String, String)>, String> {
        let path = self.env_file();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{}: {e} (is the lab up?)", path.display()))?;
        let mut vars = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = || format!("{}:{}: not an export line: {line}", path.display(), n + 1);
            let rest = line.strip_prefix("export ").ok_or_else(bad)?;
            let (name, value) = rest.split_once('=').ok_or_else(bad)?;
            let value = if name == "PATH" {
                let own = value
                    .strip_suffix(":\"$PATH\"")
                    .and_then(unquote)
                    .ok_or_else(bad)?;
                format!("{own}:{current_path}")
            } else {
                unquote(value).ok_or_else(bad)?
            };
            vars.push((name.to_owned(), value));
        }
        Ok(vars)
    }
}

/// `'text'` with `'\''` for quotes → `text`.
fn unquote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("'\\''", "'"))
}

/// `text` single-quoted for a POSIX shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_lines_read_back_with_path_prepended() {
        let t = tempfile::tempdir().unwrap();
        let home = LabHome::new(t.path()).unwrap();
        std::fs::write(
            home.env_file(),
            format!(
                "export A={}\nexport PATH={}:\"$PATH\"\n",
                quote("it's"),
                quote("/lab/bin")
            ),
        )
        .unwrap();
        assert_eq!(
            home.env_vars("/usr/bin").unwrap(),
            vec![
                ("A".to_owned(), "it's".to_owned()),
                ("PATH".to_owned(), "/lab/bin:/usr/bin".to_owned())
            ]
        );
        std::fs::write(home.env_file(), "A=b\n").unwrap();
        let e = home.env_vars("/usr/bin").unwrap_err();
        assert!(e.contains("env:1: not an export line"), "{e}");
    }
}
