//! A local k0rdent deployment that needs no Azure account: the real `k0rdent` CLI and
//! pipeline against the ARM emulator on 127.0.0.1.
//!
//! `k0rdent-lab [DIR]` deploys a 3-controller/2-worker cluster's infrastructure
//! (`deploy --until create_vms`) into a fresh emulator, shows `status`, and deploys again
//! (nothing to do). The state lands in DIR (default `./lab-state`, emptied first) so you can
//! look at it with `k0rdent --state-dir DIR state show|history`. The emulator lives only as
//! long as this process, so the run is one-shot.

#![allow(clippy::print_stderr)] // A demo binary: it talks to the user on stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k0rdent_azure::credential::CredentialSettings;
use k0rdent_azure::emulator::Emulator;
use k0rdent_cli::ExitStatus;
use k0rdent_cli::deployment::{AzureAccess, K0rdentFactory};

const CONFIG: &str = include_str!("../../fixtures/lab-3x2.yaml");

fn start_emulator() -> Result<AzureAccess, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            let emu = match Emulator::builder()
                .latency(Duration::from_millis(10))
                .operation_duration(Duration::from_millis(500))
                .start()
                .await
            {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let access = AzureAccess {
                endpoint: Some(emu.url()),
                subscription: Some(emu.subscription_id()),
                credentials: CredentialSettings {
                    tenant_id: Some(emu.tenant_id()),
                    client_id: Some(emu.client_id()),
                    client_secret: Some(emu.client_secret()),
                    authority_host: Some(emu.url()),
                    ..CredentialSettings::default()
                },
            };
            let _ = tx.send(Ok(access));
            // Serve until the process exits.
            std::future::pending::<()>().await;
        });
    });
    rx.recv().map_err(|e| e.to_string())?
}

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("lab-state"), PathBuf::from);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("k0rdent-lab: {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    let config = dir.join("k0rdent-lab.yaml");
    if let Err(e) = std::fs::write(&config, CONFIG) {
        eprintln!("k0rdent-lab: {}: {e}", config.display());
        return ExitCode::from(1);
    }
    let access = match start_emulator() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("k0rdent-lab: cannot start the ARM emulator: {e}");
            return ExitCode::from(1);
        }
    };
    let factory = Arc::new(K0rdentFactory::with_access(access));
    let state = dir.join("state");
    let k0rdent = |args: &[&str]| {
        let mut argv = vec![
            "k0rdent".into(),
            "--config".into(),
            config.clone().into_os_string(),
            "--state-dir".into(),
            state.clone().into_os_string(),
        ];
        argv.extend(args.iter().map(Into::into));
        eprintln!("\n$ k0rdent {}", args.join(" "));
        k0rdent_cli::run_with(argv, factory.clone())
    };
    let first = k0rdent(&["-y", "deploy", "--until", "create_vms"]);
    if first != ExitStatus::Success {
        return first.into();
    }
    k0rdent(&["status"]);
    let again = k0rdent(&["-y", "deploy", "--until", "create_vms"]);
    eprintln!(
        "\nThe state is in {}; try `k0rdent --state-dir {} state history`.",
        state.display(),
        state.display()
    );
    again.into()
}
