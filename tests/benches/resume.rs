//! Resume benchmark: what a rerun costs when most of the deployment is done, against the same
//! binary forced to rerun every step, at 5 and at 50 VMs. The real pipeline runs in-process
//! (`k0rdent_cli::run_with`) against the ARM emulator with 50 ms per request and VMs that take
//! 2 s to provision. Prints a table.
//!
//! The deployment is made with `deploy --until create_vms`; the measured run is `deploy
//! --until setup_vpn`, whose new work (`setup_vpn`) needs no Azure write:
//! - **resume**: the state as the first run left it (every Azure step completed);
//! - **forced**: every recorded step set back to pending, so each one is applied again
//!   (idempotent PUTs for everything that exists).
//!
//! Columns: ARM requests (mutating, reads), SSH connections and child processes (none: the
//! phases measured reach no node and run no tool), wall time, and the time from the run's
//! start to its first step starting (one observation round on resume).
//!
//! Run: `cargo bench -p k0rdent-tests --bench resume`.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;
use k0rdent_azure::credential::CredentialSettings;
use k0rdent_cli::ExitStatus;
use k0rdent_cli::deployment::{AzureAccess, K0rdentFactory};
use k0rdent_core::FileStore;
use k0rdent_core::state::Status;
use k0rdent_core::store::StateStore;

struct Row {
    vms: usize,
    mode: &'static str,
    mutating: usize,
    reads: usize,
    wall: Duration,
    first_step: Option<Duration>,
}

fn config(vms: usize) -> String {
    let workers = vms - 3;
    format!(
        "metadata:\n  description: resume benchmark, {vms} VMs\n  owner: bench@localhost\n\
         azure:\n  location: westeurope\n  vm_image: Debian:debian-12:12-gen2:latest\n\
         network:\n  vnet_prefix: 10.0.0.0/16\n  subnet_prefix: 10.0.1.0/24\n  wireguard_network: 172.31.250.0/24\n\
         ssh:\n  username: k0rdent\n\
         vm_sizing:\n  controller:\n    size: Standard_B2s\n  worker:\n    size: Standard_B2s\n\
         cluster:\n  controllers:\n    count: 3\n    zones: [1, 2, 3]\n  workers:\n    count: {workers}\n    zones: [1, 2, 3]\n"
    )
}

fn access(emu: &Emulator) -> AzureAccess {
    AzureAccess {
        endpoint: Some(emu.url()),
        subscription: Some(emu.subscription_id()),
        credentials: CredentialSettings {
            tenant_id: Some(emu.tenant_id()),
            client_id: Some(emu.client_id()),
            client_secret: Some(emu.client_secret()),
            authority_host: Some(emu.url()),
            ..CredentialSettings::default()
        },
    }
}

fn k0rdent(factory: &Arc<K0rdentFactory>, dir: &Path, args: &[&str]) -> ExitStatus {
    let mut argv: Vec<std::ffi::OsString> = vec![
        "k0rdent".into(),
        "--config".into(),
        dir.join("k0rdent.yaml").into(),
        "--state-dir".into(),
        dir.join("state").into(),
    ];
    argv.extend(args.iter().map(Into::into));
    k0rdent_cli::run_with(argv, factory.clone())
}

/// From the event log's lines after `offset`: the first run's start to its first step start.
fn first_step(dir: &Path, offset: usize) -> Option<Duration> {
    let text = std::fs::read_to_string(dir.join("state/deployment-events.jsonl")).ok()?;
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
            "step_started" => return (at - started?).to_std().ok(),
            _ => {}
        }
    }
    None
}

fn events_len(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("state/deployment-events.jsonl"))
        .map(|t| t.len())
        .unwrap_or(0)
}

async fn measure(vms: usize, rt: &tokio::runtime::Handle) -> Vec<Row> {
    let emu = Emulator::builder()
        .latency(Duration::from_millis(50))
        .operation_duration(Duration::from_secs(2))
        .retry_after(Duration::from_millis(500))
        .start()
        .await
        .unwrap();
    let factory = Arc::new(K0rdentFactory::with_access(access(&emu)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k0rdent.yaml"), config(vms)).unwrap();
    let path = dir.path().to_owned();
    let run = |args: &'static [&'static str]| {
        let (factory, path) = (factory.clone(), path.clone());
        rt.spawn_blocking(move || k0rdent(&factory, &path, args))
    };
    let made = run(&["-y", "deploy", "--until", "create_vms"])
        .await
        .unwrap();
    assert_eq!(made, ExitStatus::Success, "{vms} VMs: the deployment");
    let mut rows = Vec::new();
    for mode in ["resume", "forced"] {
        // Each mode starts from the deployment as the first run left it.
        let store = FileStore::new(path.join("state"));
        let mut state = store.load().await.unwrap().unwrap();
        state.phases.remove("setup_vpn");
        if mode == "forced" {
            for rec in state.phases.values_mut() {
                rec.status = Status::Pending;
                for item in rec.items.values_mut() {
                    item.status = Status::Pending;
                }
            }
        }
        store.save(&mut state).await.unwrap();
        let before = emu.log().entries().len();
        let offset = events_len(&path);
        let start = Instant::now();
        let code = run(&["-y", "deploy", "--until", "setup_vpn"])
            .await
            .unwrap();
        let wall = start.elapsed();
        assert_eq!(code, ExitStatus::Success, "{vms} VMs, {mode}");
        let log = emu.log().entries();
        let new = &log[before..];
        rows.push(Row {
            vms,
            mode,
            mutating: new.iter().filter(|e| e.mutating).count(),
            reads: new.iter().filter(|e| !e.mutating).count(),
            wall,
            first_step: first_step(&path, offset),
        });
    }
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let handle = rt.handle().clone();
    let mut rows = Vec::new();
    for vms in [5, 50] {
        eprintln!("deploying {vms} VMs into the emulator...");
        rows.extend(rt.block_on(measure(vms, &handle)));
    }
    println!(
        "| {:>4} | {:<7} | {:>12} | {:>10} | {:>8} | {:>8} | {:>9} | {:>15} |",
        "VMs",
        "run",
        "ARM mutating",
        "ARM reads",
        "SSH conn",
        "children",
        "wall (s)",
        "first step (s)"
    );
    println!(
        "|{:->6}|{:-<9}|{:->14}|{:->12}|{:->10}|{:->10}|{:->11}|{:->17}|",
        "", "", "", "", "", "", "", ""
    );
    for r in &rows {
        println!(
            "| {:>4} | {:<7} | {:>12} | {:>10} | {:>8} | {:>8} | {:>9.2} | {:>15} |",
            r.vms,
            r.mode,
            r.mutating,
            r.reads,
            0,
            0,
            r.wall.as_secs_f64(),
            r.first_step
                .map_or("-".to_owned(), |d| format!("{:.2}", d.as_secs_f64()))
        );
    }
    let get = |vms: usize, mode: &str| {
        rows.iter()
            .find(|r| r.vms == vms && r.mode == mode)
            .unwrap()
    };
    let (r5, r50, f50) = (get(5, "resume"), get(50, "resume"), get(50, "forced"));
    println!(
        "\nresume: {} mutating requests at 5 VMs, {} at 50; {} requests at 5 VMs, {} at 50; \
         forced/resume at 50 VMs: {:.1}x",
        r5.mutating,
        r50.mutating,
        r5.mutating + r5.reads,
        r50.mutating + r50.reads,
        (f50.mutating + f50.reads) as f64 / (r50.mutating + r50.reads).max(1) as f64
    );
}
