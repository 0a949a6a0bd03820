//! Resume benchmark: what a rerun costs after a deployment was interrupted inside
//! `install_k0s`, against the same binary forced to rerun every step, at 5 and at 50 VMs.
//!
//! Everything is real except Azure, k0sctl and helm: the lab (the ARM emulator whose VMs are
//! network namespaces with sshd, cloud-init and wireguard-go, behind the slot's edge) with
//! 50 ms per ARM request, ARM operations pending 3 s and VMs booting 2 s after create; the
//! real CLI (this binary, started as `k0rdent`) with its WireGuard hub; the stand-in k0sctl
//! over SSH through the tunnel.
//!
//! Per size: `deploy --until connect_vpn`; then `deploy --until install_k0s` SIGKILLed while
//! `k0sctl apply` works (it pauses between `k0s install` and the service start). Measured,
//! both with `deploy --until install_k0s`:
//! - **resume**: the state as the kill left it;
//! - **forced**: every recorded step set back to pending, so each is applied again
//!   (idempotent PUTs for what exists, the VPN steps, `k0sctl apply`).
//!
//! Columns: ARM requests (mutating, reads), SSH connections (`Accepted publickey` in the
//! VMs' sshd logs, the stand-in k0sctl's included), child processes (every process the run
//! started, directly or not: strace counts the execs), wall time, and the time from the
//! run's start to its first step starting, with the ARM requests made before it (one
//! observation round on resume).
//!
//! Run (as root, like the lab tests): `cargo bench -p k0rdent-tests --bench resume` (`-- 5`
//! for one size).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use k0rdent_core::FileStore;
use k0rdent_core::state::Status;
use k0rdent_core::store::StateStore;
use k0rdent_tests::lab;
use k0rdent_tests::lab::cli::serve_as_cli;
use k0rdent_tests::lab::pipeline::{CONFIG, LabTiming, PipelineLab};

struct Row {
    vms: usize,
    mode: &'static str,
    mutating: usize,
    reads: usize,
    ssh: usize,
    children: usize,
    programs: BTreeMap<String, usize>,
    wall: Duration,
    first_step: Option<Duration>,
    reads_before_first_step: usize,
}

/// The 1+1 lab fixture with 3 controllers and `vms - 3` workers.
fn config(vms: usize) -> String {
    let cluster = "cluster:\n  controllers:\n    count: 1\n    zones: [1]\n  workers:\n    count: 1\n    zones: [2]\n";
    assert!(
        CONFIG.contains(cluster),
        "the 1+1 fixture's cluster changed"
    );
    CONFIG.replace(
        cluster,
        &format!(
            "cluster:\n  controllers:\n    count: 3\n    zones: [1, 2, 3]\n  workers:\n    count: {}\n    zones: [1, 2, 3]\n",
            vms - 3
        ),
    )
}

/// From the event log after byte `offset`: the run's start to its first step start, and
/// that start's time.
fn first_step(
    state_dir: &Path,
    offset: usize,
) -> Option<(Duration, chrono::DateTime<chrono::Utc>)> {
    let text = std::fs::read_to_string(state_dir.join("deployment-events.jsonl")).ok()?;
    let mut started = None;
    for line in text.get(offset..)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let kind = v["event"]["event"]
            .as_str()
            .or_else(|| v["event"].as_str())
            .unwrap_or("");
        let at = chrono::DateTime::parse_from_rfc3339(v["at"].as_str()?).ok()?;
        match kind {
            "run_started" if started.is_none() => started = Some(at),
            "step_started" => {
                return Some((
                    (at - started?).to_std().ok()?,
                    at.with_timezone(&chrono::Utc),
                ));
            }
            _ => {}
        }
    }
    None
}

fn events_len(state_dir: &Path) -> usize {
    std::fs::metadata(state_dir.join("deployment-events.jsonl"))
        .map(|m| usize::try_from(m.len()).unwrap())
        .unwrap_or(0)
}

/// `Accepted publickey` lines in every VM's sshd log.
fn ssh_accepted(lab: &PipelineLab) -> usize {
    lab.backend
        .names()
        .iter()
        .map(|vm| {
            lab.backend
                .with_node(vm, |n| n.sshd.log().matches("Accepted publickey").count())
                .unwrap_or(0)
        })
        .sum()
}

/// Processes that exec'ed in an `strace -f -e trace=execve` output, but the first (the CLI),
/// and how many of them ran each program (by its last exec).
fn children(trace: &Path) -> (usize, BTreeMap<String, usize>) {
    let text = std::fs::read_to_string(trace).unwrap();
    let mut last: BTreeMap<&str, String> = BTreeMap::new();
    for l in text
        .lines()
        .filter(|l| l.contains("execve") && l.trim_end().ends_with("= 0"))
    {
        let Some(pid) = l.split_whitespace().next() else {
            continue;
        };
        let program = l
            .split_once("execve(\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(p, _)| p.rsplit('/').next().unwrap_or(p).to_owned())
            .unwrap_or_default();
        last.insert(pid, program);
    }
    let mut by_program: BTreeMap<String, usize> = BTreeMap::new();
    for program in last.values().skip(1) {
        *by_program.entry(program.clone()).or_default() += 1;
    }
    (last.len().saturating_sub(1), by_program)
}

/// One measured `deploy --until install_k0s`.
fn measure(lab: &PipelineLab, vms: usize, mode: &'static str) -> Row {
    let cli = &lab.cli;
    let state_dir = cli.state_dir();
    let offset = events_len(&state_dir);
    let arm_before = cli.emu.log().entries().len();
    let ssh_before = ssh_accepted(lab);
    let scratch = tempfile::tempdir().unwrap();
    let trace = scratch.path().join("trace");
    let trace_arg = trace.display().to_string();
    let strace = [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=execve,execveat",
        "-o",
        &trace_arg,
    ];
    let start = Instant::now();
    let (run, _) =
        cli.run_killed_polling_under(&strace, &["deploy", "-y", "--until", "install_k0s"], |_| {
            None
        });
    let wall = start.elapsed();
    assert_eq!(run.code, 0, "{vms} VMs, {mode}:\n{}", run.stderr);
    let log = cli.emu.log().entries();
    let new = &log[arm_before..];
    let first = first_step(&state_dir, offset);
    // The first step's wall-clock time as an Instant, to compare with the request log's.
    let reads_before_first_step = first.map_or(0, |(_, at)| {
        let ago = (chrono::Utc::now() - at).to_std().unwrap_or_default();
        let at = Instant::now() - ago;
        new.iter().filter(|e| !e.mutating && e.at < at).count()
    });
    let (children, programs) = children(&trace);
    Row {
        vms,
        mode,
        mutating: new.iter().filter(|e| e.mutating).count(),
        reads: new.iter().filter(|e| !e.mutating).count(),
        ssh: ssh_accepted(lab) - ssh_before,
        children,
        programs,
        wall,
        first_step: first.map(|(d, _)| d),
        reads_before_first_step,
    }
}

async fn bench(vms: usize) -> Vec<Row> {
    let timing = LabTiming {
        boot_delay: Duration::from_secs(2),
        operation: Duration::from_secs(3),
        latency: Duration::from_millis(50),
    };
    let lab = PipelineLab::start_timed(&config(vms), timing).await;
    let cli = &lab.cli;
    let made = Instant::now();
    cli.ok(&["deploy", "-y", "--until", "connect_vpn"]);
    eprintln!(
        "{vms} VMs: deployed through connect_vpn in {:.1?}",
        made.elapsed()
    );
    let api = lab.api().await;

    // The interruption: SIGKILL while k0sctl works inside install_k0s.
    lab.pause_k0sctl_after_install(Some(2));
    let (run, killed) = cli.run_killed_when(
        &["deploy", "-y", "--until", "install_k0s"],
        Duration::from_millis(500),
        |v| {
            v["event"] == "step_progress"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("k0sctl apply"))
        },
    );
    assert!(
        killed,
        "{vms} VMs: never reached k0sctl apply:\n{}",
        run.stderr
    );
    lab.pause_k0sctl_after_install(None);
    let state = cli.state().await;
    assert_ne!(
        state.phases.get("install_k0s").map(|p| p.status),
        Some(Status::Completed),
        "the kill landed inside install_k0s"
    );

    let mut rows = vec![measure(&lab, vms, "resume")];
    let store = FileStore::new(cli.state_dir());
    let mut state = store.load().await.unwrap().unwrap();
    for rec in state.phases.values_mut() {
        rec.status = Status::Pending;
        for item in rec.items.values_mut() {
            item.status = Status::Pending;
        }
    }
    store.save(&mut state).await.unwrap();
    rows.push(measure(&lab, vms, "forced"));
    lab.finish(Some(api));
    rows
}

fn main() -> ExitCode {
    if let Some(code) = serve_as_cli() {
        return code;
    }
    lab::require_lab();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Positional arguments pick sizes (`-- 5`); cargo's own flags are ignored.
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![5, 50];
    }
    let mut rows = Vec::new();
    for vms in sizes.iter().copied() {
        eprintln!("deploying {vms} VMs into the lab...");
        rows.extend(rt.block_on(bench(vms)));
    }
    println!(
        "| {:>4} | {:<7} | {:>12} | {:>9} | {:>8} | {:>8} | {:>8} | {:>14} | {:>19} |",
        "VMs",
        "run",
        "ARM mutating",
        "ARM reads",
        "SSH conn",
        "children",
        "wall (s)",
        "first step (s)",
        "reads before it"
    );
    println!(
        "|{:->6}|{:-<9}|{:->14}|{:->11}|{:->10}|{:->10}|{:->10}|{:->16}|{:->21}|",
        "", "", "", "", "", "", "", "", ""
    );
    for r in &rows {
        println!(
            "| {:>4} | {:<7} | {:>12} | {:>9} | {:>8} | {:>8} | {:>8.2} | {:>14} | {:>19} |",
            r.vms,
            r.mode,
            r.mutating,
            r.reads,
            r.ssh,
            r.children,
            r.wall.as_secs_f64(),
            r.first_step
                .map_or("-".to_owned(), |d| format!("{:.2}", d.as_secs_f64())),
            r.reads_before_first_step
        );
    }
    for r in &rows {
        let programs: Vec<String> = r.programs.iter().map(|(p, n)| format!("{p} {n}")).collect();
        println!(
            "{} VMs, {}: children by program: {}",
            r.vms,
            r.mode,
            programs.join(", ")
        );
    }
    let get = |vms: usize, mode: &str| rows.iter().find(|r| r.vms == vms && r.mode == mode);
    let (Some(r5), Some(r50), Some(f50)) = (get(5, "resume"), get(50, "resume"), get(50, "forced"))
    else {
        return ExitCode::SUCCESS;
    };
    let total = |r: &Row| r.mutating + r.reads;
    let ratio = total(f50) as f64 / total(r50).max(1) as f64;
    println!(
        "\nresume: {} mutating ARM requests at 5 VMs, {} at 50 (target 0); {} ARM requests at 5 \
         VMs, {} at 50 (target: equal); forced/resume at 50 VMs: {ratio:.1}x (target >= 10x)",
        r5.mutating,
        r50.mutating,
        total(r5),
        total(r50),
    );
    ExitCode::SUCCESS
}
