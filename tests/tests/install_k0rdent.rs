//! `install_k0rdent` through the engine with the stand-in helm and the real kubectl against
//! the fake Kubernetes API, served inside the controller's network namespace on its tunnel
//! address (so both tools reach it only through the real WireGuard tunnel), with kcm played
//! by the fake API: the `Management` appears after the install, turns Ready later, and a
//! Flux-like bump moves the helm revision on its own.
//!
//! Proves: one `helm upgrade --install` (explicit kubeconfig and context, no `--wait`, no
//! `KUBECONFIG`), readiness by polling `Management`, a rerun that runs no helm even after
//! Flux moved the revision; and a tunnel cut while helm runs stops helm within seconds
//! (SIGTERM: the release is `failed`), blocks the run naming the node, and the next run
//! installs again.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_cli::cluster::observer::ClusterObserver;
use k0rdent_cli::deployment::k0rdent::{InstallK0rdentStep, K0rdentSettings};
use k0rdent_cli::tools::{self, KUBECTL};
use k0rdent_core::state::RunOutcome;
use k0rdent_core::store::StateStore;
use k0rdent_core::{Engine, Pipeline};
use k0rdent_standins::kube::{FakeKube, KcmSimulation, Listener, NodeSpec, Resource};
use k0rdent_testkit::{FakeObserver, FakeStep, FakeWorld};
use k0rdent_tests::lab::netns;
use k0rdent_tests::lab::tunnel::Tunnel;
use k0rdent_tests::standins;

struct Setup {
    t: Tunnel,
    kube: FakeKube,
    _listener: Listener,
    bin: tempfile::TempDir,
    observer: ClusterObserver,
    world: Arc<FakeWorld>,
}

impl Setup {
    async fn start(node: &str, helm_work_ms: u64) -> Setup {
        let t = Tunnel::up(&[node], None).await;
        t.wait_all_alive(Duration::from_secs(10))
            .await
            .unwrap_or_else(|r| panic!("{r}"));
        let tip = t.node_ip(node);
        let mut state = t.store.load().await.unwrap().unwrap();
        state
            .nodes
            .get_mut(node)
            .unwrap()
            .attributes
            .insert("k0s_role".into(), "controller+worker".into());
        t.store.save(&mut state).await.unwrap();
        let cluster_id = state.cluster_id.clone().unwrap();

        let kube = FakeKube::with_sans(vec![IpAddr::V4(tip)]).unwrap();
        let listener = kube
            .serve_std(netns::bind_in(
                &t.lab.node(node).netns,
                SocketAddr::new(IpAddr::V4(tip), 6443),
            ))
            .unwrap();
        kube.put_node(&NodeSpec::new(node).role("control-plane"))
            .unwrap();
        let kubeconfig = t.store.dir().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kube.admin_kubeconfig(&format!("https://{tip}:6443"), &cluster_id)
                .unwrap(),
        )
        .unwrap();
        let bin = tempfile::tempdir().unwrap();
        let helm = standins::wrapper(
            bin.path(),
            "helm",
            &[
                (
                    "K0RDENT_STANDIN_LOG",
                    bin.path().join("helm.log").display().to_string(),
                ),
                ("K0RDENT_STANDIN_DIR", bin.path().display().to_string()),
                ("K0RDENT_STANDIN_HELM_WORK_MS", helm_work_ms.to_string()),
            ],
        );
        let observer = ClusterObserver {
            kubeconfig,
            kubectl: Some(tools::locate(&KUBECTL, &BTreeMap::new()).unwrap()),
            helm: Some(helm),
            namespace: "kcm-system".into(),
            context: cluster_id,
        };
        let world = FakeWorld::new();
        world.create(&k0rdent_testkit::sid("install_k0s"), "v1");
        Setup {
            t,
            kube,
            _listener: listener,
            bin,
            observer,
            world,
        }
    }

    fn log(&self) -> PathBuf {
        self.bin.path().join("helm.log")
    }

    fn helm_calls(&self, verb: &str) -> Vec<serde_json::Value> {
        standins::invocations(&self.log())
            .into_iter()
            .filter(|c| c["argv"][1] == verb)
            .collect()
    }

    fn pipeline(&self) -> Pipeline {
        self.pipeline_for(
            "1.4.0",
            "https://github.com/k0rdent/kcm/releases/download/v1.4.0/release.yaml",
        )
    }

    /// The pipeline asking for k0rdent `version`, whose Release is in `manifest`.
    fn pipeline_for(&self, version: &str, manifest: &str) -> Pipeline {
        let settings = K0rdentSettings {
            version: version.into(),
            chart: "oci://ghcr.io/k0rdent/kcm/charts/kcm".into(),
            namespace: "kcm-system".into(),
            release_manifest: manifest.into(),
            tools: BTreeMap::from([("helm".to_owned(), self.observer.helm.clone().unwrap())]),
            cluster: self.observer.clone(),
            helm_timeout: Duration::from_secs(60),
        };
        Pipeline::builder()
            .step(FakeStep::new("install_k0s", &self.world))
            .step(InstallK0rdentStep::new(settings))
            .observer(self.observer.clone())
            .observer(FakeObserver(self.world.clone()))
            .build()
            .unwrap()
    }

    async fn deploy(&self) -> k0rdent_core::engine::RunReport {
        Engine::builder(self.pipeline(), Arc::new(self.t.store.clone()))
            .phase_time_limit("install_k0rdent", Duration::from_secs(120))
            .build()
            .unwrap()
            .deploy()
            .await
            .unwrap()
    }

    fn release_status(&self) -> Vec<String> {
        self.kube
            .list(Resource::Secrets, Some("kcm-system"), "owner=helm,name=kcm")
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "v{}:{}",
                    s["metadata"]["labels"]["version"].as_str().unwrap_or("?"),
                    s["metadata"]["labels"]["status"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }
}

fn ran(r: &k0rdent_core::engine::RunReport) -> Vec<String> {
    r.steps.iter().map(|s| s.step.to_string()).collect()
}

fn wait_for_file_line(path: &Path, needle: &str, limit: Duration) {
    let start = Instant::now();
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            start.elapsed() < limit,
            "no {needle:?} in {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcm_is_installed_once_and_a_rerun_runs_no_helm_even_after_flux_moved_the_revision() {
    let s = Setup::start("ctl-k", 300).await;
    let _sim = s.kube.start_kcm_simulation(KcmSimulation {
        appear_after: Duration::from_millis(800),
        ready_after: Duration::from_millis(800),
        flux_bump_after: Some(Duration::from_millis(500)),
        ..KcmSimulation::default()
    });
    let r = s.deploy().await;
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:#?}", r.final_plan);
    assert!(
        ran(&r).contains(&"install_k0rdent".to_owned()),
        "{:?}",
        ran(&r)
    );
    let installs = s.helm_calls("upgrade");
    assert_eq!(installs.len(), 1, "{installs:#?}");
    let argv: Vec<&str> = installs[0]["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for want in [
        "--install",
        "kcm",
        "--version",
        "1.4.0",
        "--create-namespace",
        "--kubeconfig",
        "--kube-context",
    ] {
        assert!(argv.contains(&want), "{want} missing: {argv:?}");
    }
    assert!(!argv.contains(&"--wait"), "{argv:?}");
    assert!(
        installs[0]["env"]["KUBECONFIG"].is_null(),
        "{:?}",
        installs[0]
    );
    let state = s.t.store.load().await.unwrap().unwrap();
    let outputs = &state.phases["install_k0rdent"].outputs;
    assert_eq!(outputs.get_str("management_release"), Some("kcm-1-4-0"));
    assert_eq!(
        outputs.get("revision"),
        None,
        "the helm revision is not an output"
    );

    // Flux moves the revision on its own; a rerun still runs no helm install or upgrade.
    let start = Instant::now();
    while !s
        .release_status()
        .iter()
        .any(|r| r.starts_with("v2:deployed"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            s.release_status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s.deploy().await;
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(ran(&r), Vec::<String>::new());
    assert_eq!(s.helm_calls("upgrade").len(), 1);
    assert!(
        s.helm_calls("list").iter().all(|c| c["argv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "-a"))
    );

    // An upgrade to 1.5.0 is k0rdent's own: unconfirmed it blocks (it restarts k0rdent's
    // controllers); confirmed, the Release from the manifest is applied (the real kubectl) and
    // Management.spec.release patched, kcm reconciles it, and helm is never run against Flux.
    let manifest = s.bin.path().join("release-1.5.0.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: k0rdent.mirantis.com/v1beta1\nkind: Release\nmetadata:\n  name: kcm-1-5-0\n  annotations:\n    helm.sh/resource-policy: keep\nspec:\n  version: 1.5.0\n  kcm:\n    template: kcm-1-5-0\n  capi:\n    template: cluster-api-1-0-8\n",
    )
    .unwrap();
    let upgrade = |confirm: bool| {
        Engine::builder(
            s.pipeline_for("1.5.0", manifest.to_str().unwrap()),
            Arc::new(s.t.store.clone()),
        )
        .phase_time_limit("install_k0rdent", Duration::from_secs(120))
        .confirm_replace(confirm)
        .build()
        .unwrap()
    };
    let r = upgrade(false).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Blocked, "{:#?}", r.final_plan);
    assert_eq!(ran(&r), Vec::<String>::new());
    let r = upgrade(true).deploy().await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:#?}", r.final_plan);
    assert_eq!(ran(&r), ["install_k0rdent"]);
    let m = s.kube.management().unwrap();
    assert_eq!(m["spec"]["release"], "kcm-1-5-0", "{m}");
    assert_eq!(m["status"]["release"], "kcm-1-5-0", "{m}");
    assert_eq!(s.helm_calls("upgrade").len(), 1, "no helm for an upgrade");
    let state = s.t.store.load().await.unwrap().unwrap();
    assert_eq!(
        state.phases["install_k0rdent"]
            .outputs
            .get_str("management_release"),
        Some("kcm-1-5-0")
    );
    let r = upgrade(true).deploy().await.unwrap();
    assert_eq!(ran(&r), Vec::<String>::new(), "upgraded: nothing to do");

    // reset: the cluster answers, so Management is deleted and the release uninstalled.
    let r = Engine::builder(s.pipeline(), Arc::new(s.t.store.clone()))
        .confirm_replace(true)
        .build()
        .unwrap()
        .reset()
        .await
        .unwrap();
    println!("{r:?}");
    assert!(s.kube.management().is_none(), "Management kcm deleted");
    assert_eq!(
        s.release_status(),
        Vec::<String>::new(),
        "release uninstalled"
    );
    assert_eq!(s.helm_calls("uninstall").len(), 1);
    s.t.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_cut_while_helm_runs_stops_it_and_blocks_then_the_next_run_installs_again() {
    let s = Setup::start("ctl-c", 8_000).await;
    let _sim = s.kube.start_kcm_simulation(KcmSimulation::default());
    let log = s.log();
    let cut = {
        let log = log.clone();
        let node = s.t.lab.node("ctl-c");
        let ns = node.netns.clone();
        let pids = node.wireguard_pids();
        std::thread::spawn(move || {
            wait_for_file_line(&log, "\"upgrade\"", Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(500));
            let at = Instant::now();
            for p in pids {
                k0rdent_tests::lab::cmd::kill(p);
            }
            let _ = ns;
            at
        })
    };
    let r = s.deploy().await;
    let cut_at = cut.join().unwrap();
    let stopped_after = cut_at.elapsed();
    assert_eq!(r.outcome, RunOutcome::Blocked, "{:#?}", r.final_plan);
    let entry = r
        .final_plan
        .entries
        .iter()
        .find(|e| e.step.to_string() == "install_k0rdent")
        .unwrap();
    assert!(entry.message.contains("ctl-c"), "{}", entry.message);
    // The run ended within seconds of the cut, long before helm's 8 s of work.
    println!("run ended {stopped_after:?} after the cut");
    assert!(stopped_after < Duration::from_secs(5), "{stopped_after:?}");
    // helm got SIGTERM but could not reach the API to record a failure: the release is left
    // pending-install, and no helm of ours runs any more.
    assert_eq!(s.release_status(), ["v1:pending-install"]);
    let helm_bin = standins::binary("helm").display().to_string();
    assert!(
        k0rdent_tests::lab::cmd::output("pgrep", &["-f", &helm_bin])
            .stdout
            .is_empty(),
        "helm still runs"
    );

    // The tunnel comes back; the next run installs again and finishes.
    let node = s.t.lab.node("ctl-c");
    let _ = node.wg_quick("down", "wg0");
    node.wg_quick("up", "wg0").unwrap();
    let peer = s.t.net.node("ctl-c").unwrap().public_key.clone();
    s.t.vpn.reinitiate(&peer).await.unwrap();
    s.t.wait_all_alive(Duration::from_secs(20))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    // The pending record of the dead helm is dropped and kcm installed again.
    let r = s.deploy().await;
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{:#?}", r.final_plan);
    assert_eq!(s.helm_calls("upgrade").len(), 2);
    assert_eq!(s.release_status(), ["v1:deployed"]);
    s.t.finish().await;
}
