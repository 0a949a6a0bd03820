//! The real `k0rdent` CLI in whole-pipeline tests, against the ARM emulator.
//!
//! The `k0rdent` binary belongs to another package, so cargo builds no copy for this one. A
//! test with its own `main` (`harness = false`) calls [`serve_as_cli`] first: started by
//! [`LabCli`] with [`CLI_ENV`] set, the test executable runs `k0rdent_cli::main`, exactly
//! what the `k0rdent` binary runs, in a process of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::{Emulator, LoggedRequest};
use k0rdent_core::FileStore;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::StateStore;

/// Set in the environment of a test executable that is to act as the `k0rdent` CLI.
pub const CLI_ENV: &str = "K0RDENT_LAB_AS_CLI";

/// In a process [`LabCli`] started, runs the CLI and returns its exit code; otherwise `None`
/// (the test itself goes on).
pub fn serve_as_cli() -> Option<ExitCode> {
    std::env::var_os(CLI_ENV).map(|_| k0rdent_cli::main())
}

/// How a CLI run ended.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct CliRun {
    /// The exit code (−1 when killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Wall time of the run.
    pub took: Duration,
}

impl CliRun {
    /// The steps a deploy started (its `> step: why` lines).
    pub fn started_steps(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("> "))
            .collect()
    }
}

/// The CLI of one deployment: its configuration `k0rdent.yaml` and state `state/` in `dir`,
/// the emulator's service principal, subscription and endpoints, a clean environment.
#[allow(missing_docs)]
#[derive(Debug)]
pub struct LabCli {
    pub emu: Emulator,
    /// Holds the configuration, the state and the CLI's `HOME`.
    pub dir: PathBuf,
}

impl LabCli {
    /// A CLI in `dir` (created) with `config` as its configuration.
    pub fn new(emu: Emulator, dir: &Path, config: &str) -> LabCli {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("k0rdent.yaml"), config).unwrap();
        LabCli {
            emu,
            dir: dir.to_owned(),
        }
    }

    /// The configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("k0rdent.yaml")
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Runs `k0rdent --config … --state-dir … args…` (stdin closed) and logs the run's
    /// exit code and wall time on stderr.
    pub fn run(&self, args: &[&str]) -> CliRun {
        let started = Instant::now();
        let o = Command::new(std::env::current_exe().unwrap())
            .env_clear()
            .env(CLI_ENV, "1")
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("USER", "lab")
            .env("AZURE_TENANT_ID", self.emu.tenant_id())
            .env("AZURE_CLIENT_ID", self.emu.client_id())
            .env("AZURE_CLIENT_SECRET", self.emu.client_secret().expose())
            .env("AZURE_AUTHORITY_HOST", self.emu.url())
            .env("AZURE_SUBSCRIPTION_ID", self.emu.subscription_id())
            .env("K0RDENT_ARM_ENDPOINT", self.emu.url())
            .arg("--config")
            .arg(self.config())
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let r = CliRun {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            took: started.elapsed(),
        };
        eprintln!(
            "$ k0rdent {} → {} in {:.2?}",
            args.join(" "),
            r.code,
            r.took
        );
        r
    }

    /// [`LabCli::run`], panicking with the output unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> CliRun {
        let r = self.run(args);
        assert_eq!(r.code, 0, "k0rdent {args:?}:\n{}{}", r.stdout, r.stderr);
        r
    }

    /// The recorded state.
    pub async fn state(&self) -> DeploymentState {
        FileStore::new(self.state_dir())
            .load()
            .await
            .unwrap()
            .expect("a recorded deployment")
    }

    /// The writes the emulator accepted so far.
    pub fn writes(&self) -> Vec<LoggedRequest> {
        self.emu
            .log()
            .entries()
            .into_iter()
            .filter(|e| e.mutating && (200..300).contains(&e.status))
            .collect()
    }

    /// Polls `vpn status` (every 0.5 s, up to `limit`) until it exits 0, i.e. every node
    /// answers through the tunnel; returns the last run.
    pub fn wait_vpn_alive(&self, limit: Duration) -> CliRun {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.run(&["vpn", "status"]);
            if r.code == 0 || Instant::now() > deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}
