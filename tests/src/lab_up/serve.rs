//! `k0rdent-lab serve DIR`: the lab itself, in the background until SIGTERM or SIGINT. It
//! takes a lab slot, starts the ARM emulator over the slot's VM backend with the fake API on
//! the controllers and kcm's part played on it, writes the configuration, the `bin/`
//! wrappers and the `export` lines, and on the signal deletes every VM, sweeps the slot (the
//! hub interface the CLI brought up included) and checks that nothing is left.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k0rdent_arm_emulator::Emulator;
use k0rdent_standins::kube::{FakeKube, KcmSimulation};

use super::{AS_ENV, CLEAN_MARK, LabHome, quote};
use crate::lab::vm_backend::{LabVmBackend, LabVmOptions};

const CONFIG: &str = include_str!("../../fixtures/lab-up-3x2.yaml");

/// How long a VM takes from create or start until it answers: gates really wait.
const BOOT_DELAY: Duration = Duration::from_secs(2);
/// How long an ARM operation stays in progress.
const OPERATION: Duration = Duration::from_millis(400);

/// Runs the lab until a signal; the result says whether `down` left nothing behind.
///
/// # Errors
/// Why the lab could not start or did not clean up.
pub fn serve(home: &LabHome) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio: {e}"))?;
    rt.block_on(run(home))
}

async fn run(home: &LabHome) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    // A closed terminal does not take the lab down; `down` does.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;

    let kube = FakeKube::new().map_err(|e| e.to_string())?;
    let backend = Arc::new(LabVmBackend::new(LabVmOptions {
        boot_delay: BOOT_DELAY,
        api: Some(kube.clone()),
    }));
    let started = start(home, &kube, &backend).await;
    let result = match started {
        Ok((emu, _loopback, _kcm)) => {
            eprintln!(
                "{}{}, emulator {}, pid {}",
                super::UP_MARK,
                backend.slot().n,
                emu.url(),
                std::process::id()
            );
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => {}
                }
            }
            eprintln!("lab going down: deleting {:?}", backend.names());
            Ok(())
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(home.env_file());
    let b = backend.clone();
    let down = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.shutdown()))
    })
    .await;
    let _ = std::fs::remove_file(home.pid_file());
    match down {
        Ok(Ok(())) => {
            eprintln!("{CLEAN_MARK}");
            result
        }
        Ok(Err(_)) => Err("tearing the lab down failed (see the panic above)".into()),
        Err(e) => Err(format!("tearing the lab down: {e}")),
    }
}

type Started = (
    Emulator,
    k0rdent_standins::kube::Listener,
    k0rdent_standins::kube::KcmSimulationHandle,
);

async fn start(
    home: &LabHome,
    kube: &FakeKube,
    backend: &Arc<LabVmBackend>,
) -> Result<Started, String> {
    let emu = Emulator::builder()
        .operation_duration(OPERATION)
        .retry_after(Duration::from_millis(200))
        .backend(backend.clone())
        .start()
        .await
        .map_err(|e| format!("starting the ARM emulator: {e}"))?;
    let tools = home.tools_dir();
    std::fs::create_dir_all(&tools).map_err(|e| format!("{}: {e}", tools.display()))?;
    // Where the stand-in k0sctl registers kubelet hosts, as the kubelets themselves would
    // from inside the VNet. The operator reaches the API only through the controllers.
    let loopback = kube
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let admin = kube
        .admin_kubeconfig(&loopback.url(), "k0s-cluster")
        .map_err(|e| e.to_string())?;
    write(&home.admin_kubeconfig(), &admin, 0o600)?;
    let kcm = kube.start_kcm_simulation(KcmSimulation {
        flux_bump_after: Some(Duration::from_secs(3)),
        ..KcmSimulation::default()
    });
    let config = CONFIG.replace(
        "wireguard_network: 172.30.0.0/24",
        &format!("wireguard_network: {}", backend.slot().tunnel_net()),
    );
    write(&home.config(), &config, 0o644)?;
    write_wrappers(home)?;
    let env = [
        ("AZURE_TENANT_ID", emu.tenant_id()),
        ("AZURE_CLIENT_ID", emu.client_id()),
        ("AZURE_CLIENT_SECRET", emu.client_secret().expose().clone()),
        ("AZURE_AUTHORITY_HOST", emu.url()),
        ("AZURE_SUBSCRIPTION_ID", emu.subscription_id()),
        ("K0RDENT_ARM_ENDPOINT", emu.url()),
        ("K0RDENT_CONFIG", home.config().display().to_string()),
        ("K0RDENT_STATE_DIR", home.state_dir().display().to_string()),
    ];
    let mut text: String = env
        .iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect();
    text.push_str(&format!(
        "export PATH={}:\"$PATH\"\n",
        quote(&home.bin_dir().display().to_string())
    ));
    write(
        &home.pid_file(),
        &format!("{}\n", std::process::id()),
        0o644,
    )?;
    // Last, and whole at once: `up` waits for this file.
    let tmp = home.dir.join(".env.tmp");
    write(&tmp, &text, 0o600)?;
    std::fs::rename(&tmp, home.env_file()).map_err(|e| format!("{}: {e}", tmp.display()))?;
    Ok((emu, loopback, kcm))
}

/// `bin/k0rdent`, `bin/k0sctl` and `bin/helm`: this executable as the CLI and the stand-ins.
fn write_wrappers(home: &LabHome) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("this executable: {e}"))?;
    let exe = quote(&exe.display().to_string());
    let tools = home.tools_dir();
    let t = |f: &str| quote(&tools.join(f).display().to_string());
    let bin = home.bin_dir();
    std::fs::create_dir_all(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let wrappers = [
        ("k0rdent", String::new()),
        (
            "k0sctl",
            format!(
                "export K0RDENT_STANDIN_LOG={}\nexport K0RDENT_STANDIN_DIR={}\nexport K0RDENT_STANDIN_KUBECONFIG={}\n",
                t("k0sctl.log"),
                t(""),
                t("admin.kubeconfig")
            ),
        ),
        (
            "helm",
            format!(
                "export K0RDENT_STANDIN_LOG={}\nexport K0RDENT_STANDIN_DIR={}\n",
                t("helm.log"),
                t("")
            ),
        ),
    ];
    for (name, env) in wrappers {
        let script = format!(
            "#!/bin/sh\n# Written by k0rdent-lab: {name} in the lab ({}).\n{env}export {AS_ENV}={name}\nexec {exe} \"$@\"\n",
            if name == "k0rdent" {
                "the real k0rdent CLI"
            } else {
                "a stand-in"
            }
        );
        write(&bin.join(name), &script, 0o755)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), String> {
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| format!("{}: {e}", path.display()))
}
