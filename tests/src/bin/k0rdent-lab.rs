//! A local k0rdent deployment that needs no Azure account: the real `k0rdent` CLI and
//! pipeline against the ARM emulator on 127.0.0.1.
//!
//! `k0rdent-lab [DIR]` deploys a 3-controller/2-worker cluster's infrastructure
//! (`deploy --until create_vms`) into a fresh emulator, shows `status`, and deploys again
//! (nothing to do). The configuration and state land in DIR (default `./lab-state`) so you can
//! look at them with `k0rdent --state-dir DIR/state state show|history`. The lab deletes only
//! what it wrote: a DIR it made is reused (its previous configuration and state replaced), any
//! other non-empty DIR is refused. The emulator lives only as long as this process, so the run
//! is one-shot.

#![allow(clippy::print_stderr)] // A demo binary: it talks to the user on stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use std::sync::Arc;
use std::time::Duration;

use k0rdent_arm_emulator::Emulator;
use k0rdent_azure::credential::CredentialSettings;
use k0rdent_cli::ExitStatus;
use k0rdent_cli::deployment::{AzureAccess, K0rdentFactory};
use k0rdent_tests::lab_dir;

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

/// Deploy a 3-controller/2-worker k0rdent cluster's infrastructure against a local ARM
/// emulator — the real `k0rdent` CLI and pipeline, no Azure account.
///
/// Runs `deploy --until create_vms`, `status`, and `deploy` again (nothing to do). The
/// emulator lives only as long as this process.
#[derive(Debug, Parser)]
#[command(name = "k0rdent-lab", version, max_term_width = 100)]
struct Args {
    /// Where the lab writes its configuration (`k0rdent-lab.yaml`) and state (`state/`).
    /// Created if missing; a directory the lab made before is reused (only those two entries
    /// are replaced); any other non-empty directory is refused.
    #[arg(value_name = "DIR", default_value = "lab-state")]
    dir: PathBuf,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // --help and --version are successes; usage errors exit 1, as in `k0rdent`.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let dir = match std::path::absolute(&args.dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}: {e}", args.dir.display());
            return ExitCode::from(1);
        }
    };
    match lab_dir::prepare(&dir) {
        Ok(true) => eprintln!(
            "Reusing {} (made by k0rdent-lab): replacing its {} and {}/.",
            dir.display(),
            lab_dir::CONFIG_FILE,
            lab_dir::STATE_DIR
        ),
        Ok(false) => {}
        Err(e) => {
            eprintln!("error: {e}\nhint: {}", e.remedy());
            return ExitCode::from(1);
        }
    }
    let config = dir.join(lab_dir::CONFIG_FILE);
    if let Err(e) = std::fs::write(&config, CONFIG) {
        eprintln!("error: {}: {e}", config.display());
        return ExitCode::from(1);
    }
    let access = match start_emulator() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: cannot start the ARM emulator: {e}");
            return ExitCode::from(1);
        }
    };
    let factory = Arc::new(K0rdentFactory::with_access(access));
    let state = dir.join(lab_dir::STATE_DIR);
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
