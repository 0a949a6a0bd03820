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

use super::cmd;

/// Set in the environment of a test executable that is to act as the `k0rdent` CLI.
pub const CLI_ENV: &str = "K0RDENT_LAB_AS_CLI";

/// In a process [`LabCli`] started, runs the CLI and returns its exit code; otherwise `None`
/// (the test itself goes on).
pub fn serve_as_cli() -> Option<ExitCode> {
    std::env::var_os(CLI_ENV).map(|_| k0rdent_cli::main())
}

/// One test of a suite with its own `main` ([`harness`]).
pub type LabTest = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// The `main` of a lab suite with `harness = false`: acts as the CLI when [`LabCli`] started
/// it, else checks the lab's needs ([`crate::lab::require_lab`]) and runs each test in turn on
/// a two-thread runtime (those whose name contains a positional argument, when given), printing
/// cargo's `test SUITE::NAME ... ok` line with its time. A
/// failing test panics, which fails the suite.
pub fn harness(suite: &str, tests: &[(&str, LabTest)]) -> ExitCode {
    if let Some(code) = serve_as_cli() {
        return code;
    }
    crate::lab::require_lab();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Like libtest: positional arguments are filters on the test names (flags are ignored).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            eprintln!("test {suite}::{name} ... filtered out");
            continue;
        }
        let start = Instant::now();
        rt.block_on(test());
        eprintln!(
            "test {suite}::{name} ... ok ({:.1} s)",
            start.elapsed().as_secs_f64()
        );
    }
    ExitCode::SUCCESS
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
        let o = self.command(args).stdin(Stdio::null()).output().unwrap();
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

    /// Runs `k0rdent -o json args…` and, `delay` after the first JSON event for which
    /// `fire` is true, kills it with SIGKILL (a crash, a closed laptop): what it wrote until
    /// then, and whether it was killed (`false`: it ended on its own, `fire` never held).
    pub fn run_killed_when(
        &self,
        args: &[&str],
        delay: Duration,
        fire: impl FnMut(&serde_json::Value) -> bool,
    ) -> (CliRun, bool) {
        self.run_signalled_when(args, delay, rustix::process::Signal::KILL, fire)
    }

    /// [`LabCli::run_killed_when`] with another signal (SIGINT: Ctrl-C), the run then left
    /// to end on its own.
    pub fn run_signalled_when(
        &self,
        args: &[&str],
        delay: Duration,
        signal: rustix::process::Signal,
        mut fire: impl FnMut(&serde_json::Value) -> bool,
    ) -> (CliRun, bool) {
        use std::io::{BufRead, Read};
        let (started, mut child) = self.spawn_json(args);
        let mut err = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut stdout = String::new();
        let mut killed = false;
        for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
            let Ok(line) = line else { break };
            if !killed && serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| fire(&v)) {
                std::thread::sleep(delay);
                let pid = rustix::process::Pid::from_child(&child);
                rustix::process::kill_process(pid, signal).unwrap();
                killed = true;
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let status = child.wait().unwrap();
        let r = ended(
            args,
            started,
            status,
            stdout,
            errors.join().unwrap(),
            killed,
        );
        (r, killed)
    }

    /// Runs `k0rdent -o json args…` and kills it with SIGKILL as soon as `fire` holds
    /// (polled every millisecond): what it wrote, and whether it was killed.
    pub fn run_killed_polling(&self, args: &[&str], fire: impl Fn() -> bool) -> (CliRun, bool) {
        self.run_killed_polling_under(&[], args, |pid| fire().then_some(pid))
    }

    /// Runs `k0rdent -o json args…` as the child of `wrapper` (a command and its arguments,
    /// `strace …` say; empty: none) and SIGKILLs the process `fire` names as soon as it names
    /// one; `fire` is polled every millisecond with the pid of the process started (the
    /// wrapper's, when there is one). What the CLI wrote, and whether a kill was sent.
    pub fn run_killed_polling_under(
        &self,
        wrapper: &[&str],
        args: &[&str],
        mut fire: impl FnMut(i32) -> Option<i32>,
    ) -> (CliRun, bool) {
        use std::io::Read;
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let cli = self.command(&all);
        let mut c = match wrapper.split_first() {
            None => self.command(&all),
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(cli.get_program()).args(cli.get_args());
                c.env_clear();
                for (k, v) in cli.get_envs() {
                    if let Some(v) = v {
                        c.env(k, v);
                    }
                }
                c
            }
        };
        let started = Instant::now();
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let read = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = r.read_to_string(&mut s);
                s
            })
        };
        let out = read(Box::new(child.stdout.take().unwrap()));
        let err = read(Box::new(child.stderr.take().unwrap()));
        let pid = i32::try_from(child.id()).unwrap();
        let mut killed = false;
        while child.try_wait().unwrap().is_none() {
            if let Some(target) = fire(pid) {
                cmd::kill(target);
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let status = child.wait().unwrap();
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        (ended(args, started, status, out, err, killed), killed)
    }

    /// `k0rdent -o json args…` started with stdout and stderr piped.
    fn spawn_json(&self, args: &[&str]) -> (Instant, std::process::Child) {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let child = self
            .command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (Instant::now(), child)
    }

    /// The command [`LabCli::run`] runs, to start it another way (its stdio not set).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.env_clear()
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
            .env("K0RDENT_CONFIG", self.config())
            .env("K0RDENT_STATE_DIR", self.state_dir())
            .args(args);
        c
    }

    /// [`LabCli::run`], panicking with the output unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> CliRun {
        let r = self.run(args);
        assert_eq!(r.code, 0, "k0rdent {args:?}:\n{}{}", r.stdout, r.stderr);
        r
    }

    /// Every file under the state directory's `keys/` and its content (empty before the
    /// first run made it).
    pub fn key_files(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.state_dir().join("keys"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_file())
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read(e.path()).unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The recorded state.
    pub async fn state(&self) -> DeploymentState {
        FileStore::new(self.state_dir())
            .load()
            .await
            .unwrap()
            .expect("a recorded deployment")
    }

    /// The recorded state, or an empty one before the first run recorded anything.
    pub async fn state_or_default(&self) -> DeploymentState {
        FileStore::new(self.state_dir())
            .load()
            .await
            .unwrap()
            .unwrap_or_default()
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

    /// One ARM request to the emulator behind the CLI's back, as `az` or the portal would
    /// send it (with `curl` and a token the emulator issued): `(HTTP status, body)`.
    /// `path` starts at `/subscriptions/…`, api-version included.
    pub fn arm(&self, method: &str, path: &str) -> (u16, String) {
        self.arm_with(method, path, None)
    }

    /// [`LabCli::arm`] with a JSON body (a PUT of a whole resource, say).
    pub fn arm_with(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let token = self.emu.issue_token();
        let mut c = Command::new("curl");
        c.args(["-sS", "-X", method, "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {}", token.expose()));
        match body {
            Some(b) => c.args(["-H", "Content-Type: application/json", "--data-binary", b]),
            None => c.args(["-H", "Content-Length: 0"]),
        };
        let o = c.arg(format!("{}{path}", self.emu.url())).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", &out));
        (code.trim().parse().unwrap_or(0), body.to_owned())
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

/// A `-o json` run that ended (or was killed), logged like [`LabCli::run`].
fn ended(
    args: &[&str],
    started: Instant,
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    killed: bool,
) -> CliRun {
    let r = CliRun {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        took: started.elapsed(),
    };
    eprintln!(
        "$ k0rdent -o json {} → {} in {:.2?}{}",
        args.join(" "),
        r.code,
        r.took,
        if killed { " (killed)" } else { "" }
    );
    r
}
