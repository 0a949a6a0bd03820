//! Benchmarks: planning a 10,000-step pipeline, and one state save with 1,000 resources.
//! Targets on the reference machine: plan < 10 ms, save < 5 ms.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k0rdent_core::plan::{PlanFacts, PlanGraph, StepSpec};
use k0rdent_core::state::EvidenceRecord;
use k0rdent_core::{
    Evidence, FileStore, Observation, Outputs, StepId,
    fingerprint::Fingerprint,
    plan::plan,
    state::{DeploymentState, Status},
    store::StateStore,
};

fn id(s: &str) -> StepId {
    StepId::parse(s).expect("valid id")
}

/// prepare → network → 9,996 VMs → setup_vpn (depends on all VMs) → connect_vpn.
fn big_graph() -> PlanGraph {
    let mut specs = vec![
        StepSpec::new(id("prepare_deployment"), vec![]),
        StepSpec::new(id("setup_network"), vec![id("prepare_deployment")]),
    ];
    for i in 0..9_996 {
        specs.push(StepSpec::new(
            id(&format!("create_vms/vm-{i}")),
            vec![id("setup_network")],
        ));
    }
    specs.push(StepSpec::new(id("setup_vpn"), vec![id("create_vms")]));
    specs.push(StepSpec::new(id("connect_vpn"), vec![id("setup_vpn")]));
    PlanGraph::new(specs).expect("valid graph")
}

fn fp(i: usize) -> Fingerprint {
    Fingerprint::builder().input("i", &i).finish()
}

fn deployed(graph: &PlanGraph) -> (DeploymentState, PlanFacts) {
    let mut state = DeploymentState::default();
    let mut facts = PlanFacts::default();
    for i in 0..graph.len() {
        let sid = &graph.spec(i).id;
        let r = state.record_mut(sid);
        r.status = Status::Completed;
        r.fingerprint = Some(fp(i));
        facts.fingerprints.push(fp(i));
        facts
            .observations
            .push(Observation::done(Evidence::new().with("ok", "yes")));
        facts.journal_faults.push(None);
    }
    (state, facts)
}

fn bench_plan(c: &mut Criterion) {
    let graph = big_graph();
    let (state, facts) = deployed(&graph);
    assert_eq!(graph.len(), 10_000);
    c.bench_function("plan 10k steps, all verified (rerun)", |b| {
        b.iter(|| {
            black_box(plan(
                black_box(&graph),
                black_box(&state),
                black_box(&facts),
            ))
        })
    });
    let fresh_state = DeploymentState::default();
    let mut fresh = facts.clone();
    for o in &mut fresh.observations {
        *o = Observation::absent("not found");
    }
    c.bench_function("plan 10k steps, fresh deployment", |b| {
        b.iter(|| black_box(plan(&graph, &fresh_state, &fresh)))
    });
}

fn state_with_resources(n: usize) -> DeploymentState {
    let mut s = DeploymentState {
        cluster_id: Some("k0rdent-bench01".into()),
        ..DeploymentState::default()
    };
    for i in 0..n {
        let r = s.record_mut(&id(&format!("create_vms/k0s-worker-{i}")));
        r.status = Status::Completed;
        r.attempts = 1;
        r.fingerprint = Some(fp(i));
        r.outputs = Outputs::new()
            .with("vm_id", format!("{:08x}-1111-2222-3333-{:012x}", i, i))
            .with("public_ip", format!("198.51.100.{}", i % 250))
            .with("private_ip", format!("10.0.{}.{}", i / 250, i % 250));
        r.evidence = Some(EvidenceRecord {
            observed_at: chrono::Utc::now(),
            facts: Evidence::new()
                .with("provisioning_state", "Succeeded")
                .with("power_state", "PowerState/running"),
        });
    }
    s.settings = BTreeMap::from([("wireguard.port".into(), 51820.into())]);
    s
}

fn bench_save(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::new(dir.path());
    let mut state = state_with_resources(1_000);
    store.save_sync(&mut state).expect("first save");
    c.bench_function(
        "save state with 1,000 resources (fsync, rename, backup)",
        |b| b.iter(|| store.save_sync(&mut state).expect("save")),
    );
    // The engine's path: `StateStore::save`, which copies the state to tokio's blocking pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function(
        "save state with 1,000 resources via StateStore (blocking pool)",
        |b| {
            b.iter(|| {
                rt.block_on(StateStore::save(&store, &mut state))
                    .expect("save")
            })
        },
    );
    c.bench_function("render state with 1,000 resources (state emitter)", |b| {
        b.iter(|| black_box(k0rdent_core::state::render_state(&state).expect("render")))
    });
    let dir2 = tempfile::tempdir().expect("tempdir");
    let nobackup = FileStore::new(dir2.path()).with_backups(0);
    let mut s2 = state_with_resources(1_000);
    nobackup.save_sync(&mut s2).expect("first save");
    c.bench_function("save state with 1,000 resources, no backups", |b| {
        b.iter(|| nobackup.save_sync(&mut s2).expect("save"))
    });
    let size = std::fs::metadata(store.state_path())
        .map(|m| m.len())
        .unwrap_or(0);
    #[allow(clippy::print_stdout)]
    {
        println!("state file size with 1,000 resources: {size} bytes");
    }
}

criterion_group!(benches, bench_plan, bench_save);
criterion_main!(benches);
