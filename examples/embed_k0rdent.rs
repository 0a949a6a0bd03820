//! The k0rdent-on-Azure pipeline embedded in another program, without the `k0rdent` command:
//! build the pipeline from a configuration file, run it on the engine with your own options,
//! and read the report.
//!
//! So that it runs anywhere (and in CI) it talks to the ARM emulator on 127.0.0.1 instead of
//! Azure; give [`AzureAccess::from_env`] instead and the same code deploys to your
//! subscription. It deploys up to `create_vms` (resource group, network, VMs), then plans
//! again to show that nothing is left to do.
//!
//! Run it with `cargo run -p k0rdent-examples --example embed_k0rdent`.

#![allow(clippy::print_stdout)] // An example program: it reports to its user on stdout.

use std::sync::Arc;
use std::time::Duration;

use k0rdent_arm_emulator::Emulator;
use k0rdent_azure::credential::CredentialSettings;
use k0rdent_azure::steps::CREATE_VMS_ID;
use k0rdent_cli::args::OutputFormat;
use k0rdent_cli::deployment::{AzureAccess, K0rdentFactory};
use k0rdent_cli::request::Request;
use k0rdent_cli::{Mode, PipelineFactory};
use k0rdent_core::id::RunId;
use k0rdent_core::plan::Decision;
use k0rdent_core::state::RunOutcome;
use k0rdent_core::store::{LockHolder, StateStore};
use k0rdent_core::{Engine, FileStore};

/// A 3-controller, 2-worker cluster in the configuration schema of the Bash tool, with sizes
/// and a region the emulator's catalog offers.
const CONFIG: &str = include_str!("../tests/fixtures/lab-3x2.yaml");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let emulator = Emulator::builder()
        .operation_duration(Duration::from_millis(20))
        .start()
        .await?;
    let access = AzureAccess {
        endpoint: Some(emulator.url()),
        subscription: Some(emulator.subscription_id()),
        credentials: CredentialSettings {
            tenant_id: Some(emulator.tenant_id()),
            client_id: Some(emulator.client_id()),
            client_secret: Some(emulator.client_secret()),
            authority_host: Some(emulator.url()),
            ..CredentialSettings::default()
        },
    };

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("k0rdent.yaml");
    std::fs::write(&config, CONFIG)?;
    let request = Request {
        config: Some(config),
        state_dir: dir.path().join("state"),
        yes: true,
        state_url: None,
        keys_url: None,
        output: OutputFormat::Text,
    };
    let store = Arc::new(FileStore::new(&request.state_dir));
    let factory = K0rdentFactory::with_access(access);

    // What `k0rdent deploy` does before it runs anything: check the configuration and the
    // credentials (writing nothing), take the deployment's lock, then build the pipeline.
    factory.preflight(&request, &store, Mode::Prepare).await?;
    let lock = store
        .lock(&LockHolder::current(RunId::generate(), "embed-example"))
        .await?;
    let deployment = factory.deployment(&request, &store, Mode::Prepare).await?;
    let steps = deployment.pipeline.steps().len();
    let engine = Engine::builder(deployment.pipeline, store.clone())
        .holding_lock(lock)
        .concurrency(deployment.concurrency)
        .until(Some(CREATE_VMS_ID))
        .build()?;

    let report = engine.deploy().await?;
    println!("deploy --until create_vms: {:?}", report.outcome);
    for step in &report.steps {
        println!("  ran {}", step.step);
    }
    anyhow::ensure!(
        report.outcome == RunOutcome::Succeeded,
        "the deployment did not converge:\n{}",
        report.final_plan
    );
    drop(engine); // releases the lock

    // A read-only look, as `k0rdent plan` takes it: no lock, nothing changed.
    let deployment = factory.deployment(&request, &store, Mode::ReadOnly).await?;
    let engine = Engine::builder(deployment.pipeline, store.clone())
        .until(Some(CREATE_VMS_ID))
        .build()?;
    let preview = engine.plan().await?;
    println!("plan after it, of {steps} steps:\n{}", preview.plan);
    // The preview judges the whole pipeline: the phases after `create_vms` are not in this
    // build yet and plan as blocked. Everything up to `create_vms` must be verified done.
    let done_phases = ["prepare_deployment", "setup_network", "create_vms"];
    let left: Vec<_> = preview
        .plan
        .entries
        .iter()
        .filter(|e| done_phases.contains(&e.step.phase()) && e.decision != Decision::Skip)
        .map(|e| e.step.to_string())
        .collect();
    anyhow::ensure!(left.is_empty(), "still to do after converging: {left:?}");
    println!("{} requests reached the ARM emulator", emulator.log().len());
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `cargo test` runs the example exactly as `cargo run --example` does.
    #[test]
    fn runs() {
        if let Err(e) = super::main() {
            panic!("the example failed: {e:#}");
        }
    }
}
