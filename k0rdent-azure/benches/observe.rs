//! Must-show 2: how many ARM requests (and how long) one bulk observation of a deployment takes,
//! for 5, 50 and 200 VMs, against the emulator with 50 ms latency per request.
//!
//! Run with `cargo bench -p k0rdent-azure --bench observe`. Each deployment is first created
//! through the real engine and steps (without latency), then observed.

#![allow(clippy::print_stdout, clippy::unwrap_used)] // a bench binary prints its table

use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::{Emulator, fixtures};
use k0rdent_azure::AzureDeployment;
use k0rdent_core::{Engine, MemoryStore, Pipeline, state::RunOutcome};

async fn measure(vms: usize) -> (usize, Duration, usize, String) {
    let emu = Emulator::builder()
        .operation_duration(Duration::from_millis(1))
        .retry_after(Duration::from_millis(1))
        .start()
        .await
        .unwrap();
    let spec = fixtures::spec("k0rdent-bench001", 3, vms - 3);
    let azure = AzureDeployment::with_tuning(emu.client(), spec, fixtures::fast_tuning()).unwrap();
    let pipeline = azure.add_to(Pipeline::builder()).build().unwrap();
    let engine = Engine::builder(pipeline, Arc::new(MemoryStore::new()))
        .concurrency(20)
        .build()
        .unwrap();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded);
    let observer = azure.observer();
    // Warm the token cache so only ARM reads are counted.
    observer.gather().await.unwrap();
    emu.set_latency(Duration::from_millis(50));
    let mark = emu.log().len();
    let t0 = Instant::now();
    let facts = observer.gather().await.unwrap();
    let wall = t0.elapsed();
    let requests = emu.log().len() - mark;
    assert_eq!(facts.vms.len(), vms);
    assert_eq!(facts.requests as usize, requests);
    let kinds: Vec<String> = emu
        .log()
        .counts_since(mark)
        .into_iter()
        .map(|((m, t), n)| format!("{n}× {m} {t}"))
        .collect();
    (requests, wall, facts.resources.len(), kinds.join(", "))
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| VMs | ARM requests | wall time | resources seen |");
        println!("|----:|-------------:|----------:|---------------:|");
        let mut detail = Vec::new();
        for n in [5, 50, 200] {
            let (requests, wall, resources, kinds) = measure(n).await;
            println!(
                "| {n:>3} | {requests:>12} | {:>6.0} ms | {resources:>14} |",
                wall.as_secs_f64() * 1000.0
            );
            detail.push(format!("{n} VMs: {kinds}"));
        }
        println!("\nper request kind (50 ms latency each, lists run in parallel):");
        for d in detail {
            println!("  {d}");
        }
    });
}
