//! One deployment for the whole-pipeline tests: the ARM emulator whose VMs are lab nodes,
//! the real CLI ([`LabCli`]) configured with the 1+1 lab fixture in the slot's tunnel network,
//! and the stand-in `k0sctl` and `helm` first in its configuration's `tools`, each logging
//! its invocations. The VM backend serves the fake Kubernetes API on the controller's tunnel
//! address once its k0s runs; the stand-in k0sctl registers the kubelet hosts on a loopback
//! listener of the same API (as the kubelets would, from inside the VNet); kcm's part is
//! played on it from the start ([`PipelineLab::api`]).
//!
//! Knobs read by the stand-ins' wrappers at each call, so they can change between runs:
//! [`PipelineLab::pause_k0sctl_after_install`] (k0sctl sits between `k0s install` and the
//! service start) and [`PipelineLab::helm_work`] (how long an install or upgrade works).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;
use k0rdent_ssh::wireguard::ResolvedNetwork;
use k0rdent_standins::kube::{FakeKube, KcmSimulation, KcmSimulationHandle, Listener};

use super::cli::LabCli;
use super::cmd;
use super::vm_backend::{LabVmBackend, LabVmOptions};
use crate::standins;

/// How long after the `Management` is first Ready the lab's Flux bumps the release.
pub const FLUX_BUMP_AFTER: Duration = Duration::from_secs(1);

/// The fixture: one controller and one worker.
pub const CONFIG: &str = include_str!("../../fixtures/lab-vms-1x1.yaml");
/// Its controller.
pub const CONTROLLER: &str = "k0s-controller-1";
/// Its worker.
pub const WORKER: &str = "k0s-worker-1";

/// A lab slot's VM backend and the ARM emulator over it: VMs boot in `boot_delay`, ARM
/// operations take `operation` (polled every 100 ms).
pub async fn emulated_vms(
    boot_delay: Duration,
    operation: Duration,
) -> (Arc<LabVmBackend>, Emulator) {
    emulated_vms_serving(boot_delay, operation, None).await
}

/// [`emulated_vms`] whose controllers serve `api` ([`LabVmOptions::api`]).
pub async fn emulated_vms_serving(
    boot_delay: Duration,
    operation: Duration,
    api: Option<FakeKube>,
) -> (Arc<LabVmBackend>, Emulator) {
    let timing = LabTiming {
        boot_delay,
        operation,
        latency: Duration::ZERO,
    };
    emulated_vms_timed(timing, api).await
}

/// How slow the lab's Azure is.
#[derive(Debug, Clone, Copy)]
pub struct LabTiming {
    /// From a VM's create or start until it answers.
    pub boot_delay: Duration,
    /// How long an ARM operation stays pending.
    pub operation: Duration,
    /// Added to every ARM request.
    pub latency: Duration,
}

impl Default for LabTiming {
    /// What the pipeline tests use: VMs boot in 0.5 s, operations take 0.2 s, no latency.
    fn default() -> Self {
        LabTiming {
            boot_delay: Duration::from_millis(500),
            operation: Duration::from_millis(200),
            latency: Duration::ZERO,
        }
    }
}

/// [`emulated_vms_serving`] with every timing given.
pub async fn emulated_vms_timed(
    timing: LabTiming,
    api: Option<FakeKube>,
) -> (Arc<LabVmBackend>, Emulator) {
    let backend = Arc::new(LabVmBackend::new(LabVmOptions {
        boot_delay: timing.boot_delay,
        api,
    }));
    let emu = Emulator::builder()
        .latency(timing.latency)
        .operation_duration(timing.operation)
        .retry_after(Duration::from_millis(100))
        .backend(backend.clone())
        .start()
        .await
        .unwrap();
    (backend, emu)
}

/// The stand-in tools' logs and knobs.
#[derive(Debug)]
pub struct Tools {
    /// Where the wrappers, logs, locks and knob files live.
    pub dir: PathBuf,
    /// The stand-in k0sctl's invocation log.
    pub k0sctl_log: PathBuf,
    /// The stand-in helm's invocation log.
    pub helm_log: PathBuf,
    /// The cluster's admin kubeconfig the stand-in k0sctl registers nodes with and serves.
    pub kubeconfig: PathBuf,
}

impl Tools {
    /// Invocations of `verb` (`apply`, `upgrade`, ...) in a stand-in's log.
    pub fn calls(log: &Path, verb: &str) -> usize {
        standins::invocations(log)
            .iter()
            .filter(|c| {
                c["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().skip(1).any(|x| x == verb))
            })
            .count()
    }

    /// `(k0sctl apply, helm upgrade)` invocations so far: the mutating runs.
    pub fn mutating_calls(&self) -> (usize, usize) {
        (
            Self::calls(&self.k0sctl_log, "apply"),
            Self::calls(&self.helm_log, "upgrade"),
        )
    }
}

/// The fake API the controllers serve, and where the first controller answers.
#[derive(Debug, Clone)]
pub struct ServedApi {
    /// The API's data.
    pub kube: FakeKube,
    /// The first controller's tunnel address (port 6443), where the kubeconfig points.
    pub address: IpAddr,
}

/// What keeps the API's loopback listener and kcm's part running.
#[derive(Debug)]
struct ApiRuntime {
    kube: FakeKube,
    _loopback: Listener,
    _kcm: KcmSimulationHandle,
}

/// See the module documentation.
#[derive(Debug)]
pub struct PipelineLab {
    /// The VMs.
    pub backend: Arc<LabVmBackend>,
    /// The CLI of the deployment.
    pub cli: LabCli,
    /// The stand-ins.
    pub tools: Tools,
    api: ApiRuntime,
}

impl PipelineLab {
    /// A lab slot, the emulator over it, the stand-ins and the CLI's configuration (the 1+1
    /// fixture, k0rdent 1.4.0, a 60 s cloud-init limit).
    pub async fn start() -> PipelineLab {
        Self::start_with(CONFIG).await
    }

    /// [`PipelineLab::start`] with another fixture (its `wireguard_network` must be
    /// `172.30.0.0/24`, replaced by the slot's).
    pub async fn start_with(fixture: &str) -> PipelineLab {
        Self::start_timed(fixture, LabTiming::default()).await
    }

    /// [`PipelineLab::start_with`] with the lab's Azure as slow as `timing` says.
    pub async fn start_timed(fixture: &str, timing: LabTiming) -> PipelineLab {
        let kube = FakeKube::new().unwrap();
        let (backend, emu) = emulated_vms_timed(timing, Some(kube.clone())).await;
        let slot = backend.slot();
        let dir = slot.dir().join("tools");
        std::fs::create_dir_all(&dir).unwrap();
        let tools = Tools {
            k0sctl_log: dir.join("k0sctl.log"),
            helm_log: dir.join("helm.log"),
            kubeconfig: dir.join("admin.kubeconfig"),
            dir,
        };
        let k0sctl = knob_wrapper(
            &tools,
            "k0sctl",
            &tools.k0sctl_log,
            &[(
                "K0RDENT_STANDIN_KUBECONFIG",
                tools.kubeconfig.display().to_string(),
            )],
            &[
                ("pause", "K0RDENT_STANDIN_K0SCTL_PAUSE_AFTER_INSTALL"),
                ("detach", "K0RDENT_STANDIN_K0SCTL_DETACH"),
            ],
        );
        let helm = knob_wrapper(
            &tools,
            "helm",
            &tools.helm_log,
            &[],
            &[("helm-work-ms", "K0RDENT_STANDIN_HELM_WORK_MS")],
        );
        let line = "wireguard_network: 172.30.0.0/24";
        let config = format!(
            "{}\nsoftware:\n  k0rdent:\n    version: \"1.4.0\"\ntimeouts:\n  cloud_init_timeout: 60\ntools:\n  k0sctl: {}\n  helm: {}\n",
            fixture.replace(line, &format!("wireguard_network: {}", slot.tunnel_net())),
            k0sctl.display(),
            helm.display()
        );
        let cli = LabCli::new(emu, &slot.dir().join("cli"), &config);
        let loopback = kube
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        std::fs::write(
            &tools.kubeconfig,
            kube.admin_kubeconfig(&loopback.url(), "k0s-cluster")
                .unwrap(),
        )
        .unwrap();
        // kcm's part, Flux's included: a second after the Management is first Ready, a new
        // revision of the release appears on its own; reruns must still run no helm.
        let kcm = kube.start_kcm_simulation(KcmSimulation {
            flux_bump_after: Some(FLUX_BUMP_AFTER),
            ..KcmSimulation::default()
        });
        PipelineLab {
            backend,
            cli,
            tools,
            api: ApiRuntime {
                kube,
                _loopback: loopback,
                _kcm: kcm,
            },
        }
    }

    /// While `Some(seconds)`, the stand-in k0sctl pauses that long between `k0s install`
    /// and the service start.
    pub fn pause_k0sctl_after_install(&self, seconds: Option<u32>) {
        self.knob("pause", seconds.map(|s| s.to_string()));
    }

    /// A thread that waits (up to 3 minutes) until the stand-in k0sctl has run `k0s install`
    /// on the controller (its service unit exists), then runs `then`; `None` if it never did.
    pub fn when_k0s_installed<R: Send + 'static>(
        &self,
        then: impl FnOnce(&LabVmBackend) -> R + Send + 'static,
    ) -> std::thread::JoinHandle<Option<R>> {
        let backend = self.backend.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(180) {
                let installed = backend
                    .with_node(CONTROLLER, |n| {
                        n.run(&["test", "-f", "/etc/systemd/system/k0scontroller.service"])
                            .is_ok()
                    })
                    .unwrap_or(false);
                if installed {
                    return Some(then(&backend));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        })
    }

    /// Kills (SIGKILL) every `k0rdent deploy -y` of the lab's CLI (this test binary run as
    /// the CLI, see [`super::cli`]).
    pub fn kill_deploys() {
        let exe = std::env::current_exe().unwrap();
        let pattern = format!("^{} deploy -y$", exe.display());
        let out = cmd::output("pgrep", &["-f", "--", &pattern]);
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            cmd::kill(pid.parse().unwrap());
        }
    }

    /// While `true`, the stand-in k0sctl's `apply` clears its parent-death signal: killed,
    /// the CLI leaves it running (the next run must find it by its journaled pid).
    pub fn detach_k0sctl(&self, on: bool) {
        self.knob("detach", on.then(|| "1".to_owned()));
    }

    /// While `Some(ms)`, a helm install or upgrade works that long.
    pub fn helm_work(&self, ms: Option<u64>) {
        self.knob("helm-work-ms", ms.map(|m| m.to_string()));
    }

    fn knob(&self, name: &str, value: Option<String>) {
        let path = self.tools.dir.join(name);
        match value {
            Some(v) => std::fs::write(path, v).unwrap(),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The fake API and the first controller's tunnel address; records the hub interface
    /// for the slot's sweep and waits for the VMs to boot. Needs `setup_vpn` recorded.
    pub async fn api(&self) -> ServedApi {
        let state = self.cli.state().await;
        let net = ResolvedNetwork::from_state(&state).unwrap();
        self.backend.slot().record_hub(net.interface.as_str());
        self.backend
            .wait_all_booted(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        let tip = net.node(CONTROLLER).unwrap().address;
        ServedApi {
            kube: self.api.kube.clone(),
            address: IpAddr::V4(tip),
        }
    }

    /// `k0rdent reset`, then waits for every VM and link to go and tears the slot down.
    pub fn finish(self, api: Option<ServedApi>) {
        let r = self.cli.ok(&["reset", "-y"]);
        // k0s is reset through the stand-in `k0sctl reset` whenever every node answers.
        assert!(!r.stderr.contains("k0sctl reset failed"), "{}", r.stderr);
        drop(api);
        assert!(
            self.backend.wait_all_deleted(Duration::from_secs(30)),
            "{:?}",
            self.backend.names()
        );
        // The VMs' NICs live in the slot's edge: no VM namespace is left once every VM is
        // deleted; teardown removes the edge and checks that nothing else is left.
        let slot = self.backend.slot();
        let left: Vec<String> = (0..super::slot::VMS)
            .map(|i| slot.netns(i))
            .filter(|ns| cmd::try_run("ip", &["netns", "pids", ns]).is_ok())
            .collect();
        assert!(left.is_empty(), "VM namespaces after reset: {left:?}");
        self.backend.teardown();
    }
}

/// A wrapper for stand-in `name` logging to `log`, with `env`, that also exports each
/// knob's variable (`.1`) from the file `.0` in the tools directory when it exists at call
/// time.
fn knob_wrapper(
    tools: &Tools,
    name: &str,
    log: &Path,
    env: &[(&str, String)],
    knobs: &[(&str, &str)],
) -> PathBuf {
    let mut all = vec![
        ("K0RDENT_STANDIN_LOG", log.display().to_string()),
        ("K0RDENT_STANDIN_DIR", tools.dir.display().to_string()),
    ];
    all.extend(env.iter().cloned());
    let path = standins::wrapper(&tools.dir, name, &all);
    let exports: String = knobs
        .iter()
        .map(|(file, var)| {
            let f = tools.dir.join(file);
            format!(
                "[ -f '{f}' ] && export {var}=$(cat '{f}')\n",
                f = f.display()
            )
        })
        .collect();
    let script = std::fs::read_to_string(&path)
        .unwrap()
        .replace("exec '", &format!("{exports}exec '"));
    std::fs::write(&path, script).unwrap();
    path
}
