//! Shared setup for the emulator tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use k0rdent_arm_emulator::{Emulator, EmulatorBuilder, fixtures};
use k0rdent_azure::AzureDeployment;
use k0rdent_azure::spec::AzureSpec;
use k0rdent_core::{Engine, MemoryStore, Pipeline, event::RecordingSink};

pub const CLUSTER: &str = "k0rdent-t3st1234";

/// A fast emulator: operations take 20 ms, Retry-After is 10 ms.
pub fn fast_emulator() -> EmulatorBuilder {
    Emulator::builder()
        .operation_duration(Duration::from_millis(20))
        .retry_after(Duration::from_millis(10))
}

pub struct Lab {
    pub emu: Emulator,
    pub spec: AzureSpec,
    pub store: Arc<MemoryStore>,
    pub memory: Option<MemoryStore>,
}

impl Lab {
    pub async fn new(controllers: usize, workers: usize) -> Lab {
        Self::with(
            fast_emulator(),
            fixtures::spec(CLUSTER, controllers, workers),
        )
        .await
    }

    pub async fn with(b: EmulatorBuilder, spec: AzureSpec) -> Lab {
        let emu = b.start().await.expect("emulator starts");
        let mem = MemoryStore::new();
        Lab {
            emu,
            spec,
            store: Arc::new(mem.clone()),
            memory: Some(mem),
        }
    }

    pub fn azure(&self) -> AzureDeployment {
        self.azure_for(self.spec.clone())
    }

    pub fn azure_for(&self, spec: AzureSpec) -> AzureDeployment {
        AzureDeployment::with_tuning(self.emu.client(), spec, fixtures::fast_tuning())
            .expect("valid spec")
    }

    pub fn engine(&self, azure: &AzureDeployment, confirm: bool) -> (Engine, Arc<RecordingSink>) {
        let sink = Arc::new(RecordingSink::new());
        let pipeline = azure
            .add_to(Pipeline::builder())
            .build()
            .expect("valid pipeline");
        let engine = Engine::builder(pipeline, self.store.clone())
            .concurrency(10)
            .confirm_replace(confirm)
            .stop_grace(Duration::from_secs(2))
            .sink(sink.clone())
            .build()
            .expect("engine");
        (engine, sink)
    }

    pub fn state(&self) -> k0rdent_core::state::DeploymentState {
        self.memory
            .as_ref()
            .and_then(|m| m.state())
            .expect("state saved")
    }
}

/// Writes in a log slice, as "METHOD type/name" lines (sorted), for assertions.
pub fn writes(entries: &[k0rdent_arm_emulator::LoggedRequest]) -> Vec<String> {
    let mut v: Vec<String> = entries
        .iter()
        .filter(|e| e.mutating && e.status != 429)
        .map(|e| {
            let tail: Vec<&str> = e.path.rsplit('/').take(2).collect();
            format!(
                "{} {}",
                e.method,
                tail.into_iter().rev().collect::<Vec<_>>().join("/")
            )
        })
        .collect();
    v.sort();
    v
}
