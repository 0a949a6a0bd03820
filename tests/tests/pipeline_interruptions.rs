//! The interruption matrix through the real `k0rdent` CLI on lab VMs: one deployment walked
//! through every phase, the CLI killed with SIGKILL (a crash, a closed laptop) once inside each
//! phase and once at its end, before the next phase starts, and resumed by the next `deploy`
//! each time. Inside `install_k0s` the kill lands during `k0sctl apply`, inside
//! `install_k0rdent` during `helm upgrade --install` (the release left as the killed helm left
//! it).
//!
//! Proves, for every run after a kill: no step recorded completed before it is started again
//! (verified work is skipped), and the walk ends in a converged deployment — `status` exit 0,
//! a rerun starts nothing — whose VMs were never recreated (Azure vmIds unchanged), whose keys
//! were never regenerated (every key file unchanged since `prepare_deployment`), with one
//! `k0sctl apply` and one `helm upgrade` per run that reached them.
//!
//! A second walk: 35 SIGKILLs chained at events inside the phases — ARM operations pending
//! (NSG, VNet, public IP, NIC, VM), the Azure preflight gate passed, between the state
//! file's temporary write and its rename, one VM done while the other is not, `wg-quick up`
//! under way, each install gate passed, `k0sctl apply` at four moments (it pauses between
//! `k0s install` and the service start), `helm upgrade` at three, helm's pending release
//! record written (seen in the API), kcm reconciling — each resumed run starting no completed
//! step, the walk ending with no Azure resource created twice (one 201 per path).
//!
//! And a third walk with Ctrl-C (SIGINT) at ten moments — inside and at the end of phases,
//! as `install_k0s` starts, during `k0sctl apply`, during `helm upgrade` — each run exiting
//! 130 with no tool left running, the next starting no completed step, converging with the
//! same VMs and keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use k0rdent_core::FileStore;
use k0rdent_core::state::{DeploymentState, Status};
use k0rdent_core::store::STATE_FILE;
use k0rdent_standins::kube::{FakeKube, Resource};
use k0rdent_tests::lab::cli::{CliRun, LabCli, harness};
use k0rdent_tests::lab::pipeline::{CONTROLLER, PipelineLab, ServedApi, WORKER};
use k0rdent_tests::lab::transcript;
use k0rdent_tests::lab::{agreement, cmd};
use serde_json::Value;

fn main() -> ExitCode {
    harness(
        "pipeline_interruptions",
        &[
            (
                "every_phase_killed_inside_and_at_its_end_then_resumed",
                || Box::pin(every_phase_killed_inside_and_at_its_end_then_resumed()),
            ),
            ("ten_ctrl_c_at_phases_then_resumed", || {
                Box::pin(ten_ctrl_c_at_phases_then_resumed())
            }),
            ("kills_at_events_chained", || {
                Box::pin(kills_at_events_chained())
            }),
        ],
    )
}

/// Where in a phase the CLI is killed.
#[derive(Debug, Clone, Copy)]
enum At {
    /// `delay` after the phase's first step started (or after its progress line containing
    /// the text, when given).
    Inside(Option<&'static str>, Duration),
    /// As soon as its last step completed, before the next phase starts.
    End,
}

impl At {
    fn is_end(self) -> bool {
        matches!(self, At::End)
    }

    /// How long after its event the signal lands.
    fn delay(self) -> Duration {
        match self {
            At::Inside(_, d) => d,
            At::End => Duration::ZERO,
        }
    }
}

/// Slows the tools of `phase` down so a signal lands while they work: k0sctl pauses 3 s
/// between `k0s install` and the service start, a helm install or upgrade works 10 s.
fn slow_tools(lab: &PipelineLab, phase: &str) {
    match phase {
        "install_k0s" => lab.pause_k0sctl_after_install(Some(3)),
        "install_k0rdent" => lab.helm_work(Some(10_000)),
        _ => {}
    }
}

/// The phases, their steps' count (create_vms: one per VM) and where each kill lands inside.
const PHASES: [(&str, usize, At); 7] = [
    ("prepare_deployment", 1, At::Inside(None, Duration::ZERO)),
    (
        "setup_network",
        1,
        At::Inside(None, Duration::from_millis(300)),
    ),
    (
        "create_vms",
        2,
        At::Inside(None, Duration::from_millis(700)),
    ),
    ("setup_vpn", 1, At::Inside(None, Duration::ZERO)),
    ("connect_vpn", 1, At::Inside(None, Duration::ZERO)),
    (
        "install_k0s",
        1,
        At::Inside(Some("k0sctl apply"), Duration::from_millis(1500)),
    ),
    (
        "install_k0rdent",
        1,
        At::Inside(Some("helm upgrade"), Duration::from_millis(1500)),
    ),
];

fn phase_of(v: &Value) -> &str {
    v["step"]
        .as_str()
        .unwrap_or("")
        .split('/')
        .next()
        .unwrap_or("")
}

/// The event predicate for a kill at `at` in `phase` (of `steps` steps).
fn trigger(phase: &'static str, steps: usize, at: At) -> impl FnMut(&Value) -> bool {
    let mut completed = 0;
    move |v| match at {
        At::Inside(None, _) => v["event"] == "step_started" && phase_of(v) == phase,
        At::Inside(Some(text), _) => {
            v["event"] == "step_progress"
                && phase_of(v) == phase
                && v["message"].as_str().is_some_and(|m| m.contains(text))
        }
        At::End => {
            if v["event"] == "step_completed" && phase_of(v) == phase {
                completed += 1;
            }
            completed == steps
        }
    }
}

/// Steps recorded completed.
fn completed_steps(state: &DeploymentState) -> BTreeSet<String> {
    let mut done = BTreeSet::new();
    for (phase, rec) in &state.phases {
        if rec.items.is_empty() {
            if rec.status == Status::Completed {
                done.insert(phase.clone());
            }
        } else {
            for (item, r) in &rec.items {
                if r.status == Status::Completed {
                    done.insert(format!("{phase}/{item}"));
                }
            }
        }
    }
    done
}

/// Panics if `run` started a step that `before` records completed.
fn assert_skips_verified(run: &CliRun, before: &BTreeSet<String>, label: &str) {
    let events = transcript::decisive_events(&run.stdout);
    let redone: Vec<&str> = transcript::started(&events)
        .into_iter()
        .filter(|s| before.contains(*s))
        .collect();
    assert!(
        redone.is_empty(),
        "{label}: completed steps started again: {redone:?}\n{events}\n{}",
        run.stderr
    );
}

async fn every_phase_killed_inside_and_at_its_end_then_resumed() {
    let lab = PipelineLab::start().await;
    let mut pins = BTreeSet::new();
    let (cli, tools) = (&lab.cli, &lab.tools);
    let mut api = None;
    let mut keys = BTreeMap::new();
    let mut vm_ids = BTreeMap::new();
    let mut kills = 0;
    for (phase, steps, inside) in PHASES {
        for at in [inside, At::End] {
            let label = format!("{phase} {at:?}");
            slow_tools(&lab, phase);
            let before = completed_steps(&cli.state_or_default().await);
            let delay = at.delay();
            let (run, killed) = if phase == "prepare_deployment" {
                // Its work happens before the pipeline exists (no step events): killed as
                // soon as its first key file appears, or once it is recorded.
                let keys = cli.state_dir().join("keys");
                let state = cli.state_dir().join(STATE_FILE);
                cli.run_killed_polling(&["deploy", "-y"], || match at {
                    At::Inside(..) => {
                        std::fs::read_dir(&keys).is_ok_and(|mut d| d.next().is_some())
                    }
                    At::End => state.exists(),
                })
            } else {
                cli.run_killed_when(&["deploy", "-y"], delay, trigger(phase, steps, at))
            };
            assert!(
                killed,
                "{label}: the run ended (exit {}) before the kill:\n{}{}",
                run.code,
                transcript::decisive_events(&run.stdout),
                run.stderr
            );
            // The kill at the end of the last phase may find the run already exited.
            if (phase, at.is_end()) != ("install_k0rdent", true) {
                assert_eq!(run.code, -1, "{label}");
            }
            kills += 1;
            assert_skips_verified(&run, &before, &label);
            pins_kept(cli, &mut pins, &label);
            lab.pause_k0sctl_after_install(None);
            lab.helm_work(None);
            let state = cli.state_or_default().await;
            eprintln!(
                "  killed {label}: recorded completed now: {:?}",
                completed_steps(&state)
            );
            // The kill landed where it was meant to: inside, the phase is not complete; at
            // its end, it is.
            let done = completed_steps(&state)
                .iter()
                .filter(|s| s.split('/').next() == Some(phase))
                .count();
            assert_eq!(
                done == steps,
                at.is_end(),
                "{label}: {done} of {steps} steps done"
            );
            match (phase, at) {
                ("prepare_deployment", At::End) => keys = cli.key_files(),
                ("create_vms", At::End) => {
                    for vm in [CONTROLLER, WORKER] {
                        vm_ids.insert(vm, cli.emu.vm(vm).unwrap().vm_id);
                    }
                }
                // The controller's API answers on its tunnel address from here on.
                ("setup_vpn", At::End) => api = Some(lab.api().await),
                ("install_k0rdent", At::Inside(..)) => {
                    assert_eq!(
                        state.phases["install_k0rdent"].status,
                        Status::InProgress,
                        "{label}"
                    );
                    let plan = cli.run(&["plan"]);
                    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
                    transcript::settings().bind(|| {
                        insta::assert_snapshot!("killed_mid_helm_upgrade_plan", plan.stdout);
                    });
                }
                _ => {}
            }
            // The last kill, at the end of install_k0rdent, lands after the last step: the
            // deployment is complete and only the run's own ending was lost.
        }
    }
    eprintln!("{kills} kills");

    // The walk converged: status is clean, a rerun starts nothing and runs no tool.
    let before = completed_steps(&cli.state().await);
    let status = cli.run(&["status"]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
    let calls = tools.mutating_calls();
    let r = cli.ok(&["-o", "json", "deploy", "-y"]);
    assert_skips_verified(&r, &before, "the final rerun");
    let events = transcript::decisive_events(&r.stdout);
    assert!(transcript::started(&events).is_empty(), "{events}");
    assert_eq!(tools.mutating_calls(), calls);
    // One apply killed and one that finished; one upgrade killed and one that finished.
    assert_eq!(calls, (2, 2), "k0sctl apply, helm upgrade");
    for (vm, id) in &vm_ids {
        assert_eq!(&cli.emu.vm(vm).unwrap().vm_id, id, "{vm} was recreated");
    }
    let now = cli.key_files();
    assert!(!keys.is_empty());
    for (name, content) in &keys {
        assert_eq!(now.get(name), Some(content), "keys/{name} changed");
    }
    agreement::assert_agrees(&lab, "after the walk").await;
    lab.finish(api);
}

/// Where the ten Ctrl-Cs land (`At` as in [`PHASES`]).
const CTRL_C: [(&str, usize, At); 10] = [
    (
        "setup_network",
        1,
        At::Inside(None, Duration::from_millis(300)),
    ),
    ("setup_network", 1, At::End),
    (
        "create_vms",
        2,
        At::Inside(None, Duration::from_millis(700)),
    ),
    ("create_vms", 2, At::End),
    ("setup_vpn", 1, At::Inside(None, Duration::ZERO)),
    ("connect_vpn", 1, At::Inside(None, Duration::ZERO)),
    // As install_k0s starts (its gates under way).
    ("install_k0s", 1, At::Inside(None, Duration::ZERO)),
    (
        "install_k0s",
        1,
        At::Inside(Some("k0sctl apply"), Duration::from_millis(1500)),
    ),
    ("install_k0s", 1, At::End),
    (
        "install_k0rdent",
        1,
        At::Inside(Some("helm upgrade"), Duration::from_millis(1500)),
    ),
];

/// Ctrl-C (SIGINT) at ten moments, chained: each run exits 130 (interrupted), leaves no
/// k0sctl or helm running, and the next run starts no step recorded completed; the walk
/// converges with the VMs and keys of the first run. (A step that finishes within the
/// grace of a Ctrl-C is recorded completed: the points are chosen so each is reached by the
/// run after the previous one.)
async fn ten_ctrl_c_at_phases_then_resumed() {
    let lab = PipelineLab::start().await;
    let mut pins = BTreeSet::new();
    let cli = &lab.cli;
    let mut api = None;
    let mut interrupts = 0;
    for (phase, steps, at) in CTRL_C {
        let label = format!("Ctrl-C {phase} {at:?}");
        slow_tools(&lab, phase);
        let before = completed_steps(&cli.state_or_default().await);
        let delay = at.delay();
        let (run, signalled) = cli.run_signalled_when(
            &["deploy", "-y"],
            delay,
            rustix::process::Signal::INT,
            trigger(phase, steps, at),
        );
        assert!(signalled, "{label}: never reached:\n{}", run.stderr);
        assert_eq!(run.code, 130, "{label}:\n{}", run.stderr);
        interrupts += 1;
        assert_skips_verified(&run, &before, &label);
        pins_kept(cli, &mut pins, &label);
        assert!(
            cmd::wait_for(5.0, || ["k0sctl apply", "helm upgrade"]
                .iter()
                .all(|p| cmd::output("pgrep", &["-f", p]).stdout.is_empty())),
            "{label}: a tool outlived the interrupted run"
        );
        lab.pause_k0sctl_after_install(None);
        lab.helm_work(None);
        eprintln!(
            "  {label}: exit 130; recorded completed now: {:?}",
            completed_steps(&cli.state_or_default().await)
        );
        if phase == "connect_vpn" {
            api = Some(lab.api().await);
        }
    }
    eprintln!("{interrupts} Ctrl-C");
    resume_converges_unchanged(cli, "the resume after the last Ctrl-C").await;
    agreement::assert_agrees(&lab, "after the Ctrl-C walk").await;
    assert_created_once(cli);
    lab.finish(api);
}

/// A moment inside a phase, recognised by one JSON event.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// A step of the phase started (or resumed).
    Started,
    /// The phase's step waits on something it started (an ARM operation pending, kcm to
    /// reconcile) whose detail contains the text.
    Pending(&'static str),
    /// A progress message containing the text.
    Progress(&'static str),
    /// A gate of the phase passed.
    GatePassed(&'static str),
    /// The n-th step of the phase completed in this run.
    Completed(usize),
    /// Between the temporary write and the rename of the state file's save that records
    /// one more completed step of the phase: the CLI runs under strace, which delays every
    /// rename 300 ms, and is killed as soon as such a temp file is whole.
    StateSaveBeforeRename,
    /// The stand-in helm has written a release record newer than any before the run, still
    /// `pending-*` (the API's data polled).
    ReleaseRecordPending,
}

/// 35 moments, in the order a deployment meets them, for the 1+1 lab.
const MOMENTS: [(&str, Moment, u64); 35] = [
    ("setup_network", Moment::Started, 0),
    ("setup_network", Moment::Pending("NSG"), 0),
    ("setup_network", Moment::Pending("VNet"), 0),
    ("setup_network", Moment::Completed(1), 0),
    ("create_vms", Moment::GatePassed("azure_preflight"), 0),
    ("create_vms", Moment::Started, 0),
    ("create_vms", Moment::Pending("public IP"), 0),
    ("create_vms", Moment::Pending("NIC"), 0),
    ("create_vms", Moment::Pending("VM"), 0),
    ("create_vms", Moment::Pending("VM"), 300),
    ("create_vms", Moment::StateSaveBeforeRename, 0),
    ("create_vms", Moment::Completed(1), 0),
    ("create_vms", Moment::Completed(2), 0),
    ("setup_vpn", Moment::Started, 0),
    ("setup_vpn", Moment::Completed(1), 0),
    ("connect_vpn", Moment::Started, 0),
    ("connect_vpn", Moment::Progress("brought up"), 0),
    ("connect_vpn", Moment::Completed(1), 0),
    ("install_k0s", Moment::Started, 0),
    ("install_k0s", Moment::GatePassed("vpn_up"), 0),
    ("install_k0s", Moment::GatePassed("cloud_init_done"), 0),
    ("install_k0s", Moment::GatePassed("node_wireguard_up"), 0),
    ("install_k0s", Moment::Progress("k0sctl apply"), 0),
    ("install_k0s", Moment::Progress("k0sctl apply"), 700),
    ("install_k0s", Moment::Progress("k0sctl apply"), 1100),
    ("install_k0s", Moment::Progress("k0sctl apply"), 1500),
    ("install_k0s", Moment::Completed(1), 0),
    ("install_k0rdent", Moment::Started, 0),
    ("install_k0rdent", Moment::Started, 200),
    ("install_k0rdent", Moment::ReleaseRecordPending, 0),
    ("install_k0rdent", Moment::Progress("helm upgrade"), 0),
    ("install_k0rdent", Moment::Progress("helm upgrade"), 500),
    ("install_k0rdent", Moment::Progress("helm upgrade"), 2000),
    ("install_k0rdent", Moment::Pending("Management"), 0),
    ("install_k0rdent", Moment::Completed(1), 0),
];

/// The event's phase's place in the pipeline ([`PHASES`] are in order).
fn phase_index(v: &Value) -> Option<usize> {
    let p = phase_of(v);
    PHASES.iter().position(|(o, ..)| *o == p)
}

/// Fires on `moment` in `phase`, or — when the run has got past it without meeting it (a
/// previous kill already did that work) — on the first event of a later phase. Records which.
fn moment_or_later(
    phase: &'static str,
    moment: Moment,
    fired_on: std::sync::Arc<std::sync::Mutex<String>>,
) -> impl FnMut(&Value) -> bool {
    let index = PHASES.iter().position(|(o, ..)| *o == phase).unwrap();
    let mut completed = 0;
    move |v| {
        let ev = v["event"].as_str().unwrap_or("");
        let text = |k: &str| v[k].as_str().unwrap_or("");
        let here = phase_of(v) == phase;
        let hit = here
            && match moment {
                Moment::Started => ev == "step_started",
                Moment::Pending(t) => {
                    (ev == "step_pending" && text("detail").contains(t))
                        || (ev == "step_progress"
                            && text("message").contains("waiting")
                            && text("message").contains(t))
                }
                Moment::Progress(t) => ev == "step_progress" && text("message").contains(t),
                Moment::GatePassed(g) => ev == "gate_passed" && text("gate") == g,
                Moment::Completed(n) => {
                    if ev == "step_completed" {
                        completed += 1;
                    }
                    completed == n
                }
                Moment::StateSaveBeforeRename | Moment::ReleaseRecordPending => {
                    unreachable!("polled, not an event")
                }
            };
        let later = phase_index(v).is_some_and(|i| i > index)
            && matches!(ev, "step_started" | "gate_passed" | "gate_waiting");
        if hit || later {
            *fired_on.lock().unwrap() = if hit {
                format!("{moment:?}")
            } else {
                format!("passed it: {ev} {}", text("step"))
            };
        }
        hit || later
    }
}

/// 35 SIGKILLs chained through the phases, each at an event: an ARM operation pending, a
/// gate passed, `k0sctl apply` and `helm upgrade` under way, a step of a phase done while
/// another runs, the state file written but not yet renamed, helm's pending release record
/// written. Each resumed run starts no step recorded completed; the walk converges with no
/// Azure resource created twice, the VMs and keys of the first run, and no temp file left.
async fn kills_at_events_chained() {
    let lab = PipelineLab::start().await;
    let mut pins = BTreeSet::new();
    let cli = &lab.cli;
    let mut api: Option<ServedApi> = None;
    let mut table = Vec::new();
    for (phase, moment, delay_ms) in MOMENTS {
        match phase {
            "install_k0s" => lab.pause_k0sctl_after_install(Some(2)),
            "install_k0rdent" => lab.helm_work(Some(3_000)),
            _ => {}
        }
        let before = completed_steps(&cli.state_or_default().await);
        let fired_on = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let label = format!("{phase} {moment:?} +{delay_ms} ms");
        let (run, killed) = match moment {
            Moment::StateSaveBeforeRename => {
                let (run, killed, note) = killed_before_rename(cli, phase);
                *fired_on.lock().unwrap() = note;
                assert!(killed, "{label}: never fired:\n{}", run.stderr);
                (run, killed)
            }
            Moment::ReleaseRecordPending => {
                let kube = api.as_ref().map(|a| a.kube.clone()).unwrap();
                let newest = release_records(&kube).into_iter().map(|(v, _)| v).max();
                let (run, killed) = cli.run_killed_polling(&["deploy", "-y"], || {
                    release_records(&kube)
                        .iter()
                        .any(|(v, st)| Some(*v) > newest && st.starts_with("pending-"))
                });
                let records = release_records(&kube);
                assert!(
                    killed,
                    "{label}: never fired (records before: up to {newest:?}, now {records:?}):\n{}{}",
                    transcript::decisive_events(&run.stdout),
                    run.stderr
                );
                *fired_on.lock().unwrap() = format!("records {records:?}");
                (run, killed)
            }
            _ => cli.run_killed_when(
                &["deploy", "-y"],
                Duration::from_millis(delay_ms),
                moment_or_later(phase, moment, fired_on.clone()),
            ),
        };
        assert_skips_verified(&run, &before, &label);
        pins_kept(cli, &mut pins, &label);
        lab.pause_k0sctl_after_install(None);
        lab.helm_work(None);
        let outcome = match (killed, run.code) {
            (true, -1) => "killed".to_owned(),
            (_, code) => format!("ended first, exit {code}"),
        };
        table.push(format!(
            "{label:<52} fired on {:<40} {outcome}",
            fired_on.lock().unwrap()
        ));
        if phase == "connect_vpn"
            && api.is_none()
            && cli.state().await.phases.contains_key("setup_vpn")
        {
            api = Some(lab.api().await);
        }
    }
    let kills = table.iter().filter(|l| l.ends_with("killed")).count();
    eprintln!("{}\n{kills} kills", table.join("\n"));
    assert!(kills >= 30, "{kills} kills:\n{}", table.join("\n"));
    if api.is_none() {
        api = Some(lab.api().await);
    }
    resume_converges_unchanged(cli, "the final resume").await;
    agreement::assert_agrees(&lab, "after the kills at events").await;
    assert!(
        temp_saves(&cli.state_dir()).is_empty(),
        "a state temp file outlived the resumes"
    );
    assert_created_once(cli);
    lab.finish(api);
}

/// The state file's temp writes in `dir` (`.state.json.tmp-<pid>-<hex>`): path and writer.
fn temp_saves(dir: &Path) -> Vec<(PathBuf, i32)> {
    let prefix = format!(".{STATE_FILE}.tmp-");
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(&prefix)?
                .split('-')
                .next()?
                .parse()
                .ok()?;
            Some((e.path(), pid))
        })
        .collect()
}

/// How many steps of `phase` the state file in `dir` records completed (0 without one).
fn completed_in(dir: &Path, phase: &str) -> usize {
    FileStore::new(dir)
        .load_sync()
        .ok()
        .flatten()
        .map_or(0, |s| {
            completed_steps(&s)
                .iter()
                .filter(|st| st.split('/').next() == Some(phase))
                .count()
        })
}

/// `deploy` under strace with every rename delayed 300 ms, SIGKILLed between the temporary
/// write and the rename of the save that records one more completed step of `phase` (the
/// temp file whole, read back as a state). Checks that the kill landed there: that temp file
/// left by the killed CLI, the state file without the step.
fn killed_before_rename(cli: &LabCli, phase: &str) -> (CliRun, bool, String) {
    let dir = cli.state_dir();
    let scratch = tempfile::tempdir().unwrap();
    let renames = "rename,renameat,renameat2";
    let (trace, inject) = (
        format!("trace={renames}"),
        format!("inject={renames}:delay_enter=300000"),
    );
    let strace = [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-o",
        "/dev/null",
        "-e",
        &trace,
        "-e",
        &inject,
    ];
    let mut victim = None;
    let (run, killed) = cli.run_killed_polling_under(&strace, &["deploy", "-y"], |_| {
        let recorded = completed_in(&dir, phase);
        for (path, pid) in temp_saves(&dir) {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            std::fs::write(scratch.path().join(STATE_FILE), bytes).unwrap();
            if completed_in(scratch.path(), phase) > recorded {
                victim = Some((path, pid));
                return Some(pid);
            }
        }
        None
    });
    let Some((path, pid)) = victim else {
        return (run, killed, "nothing".to_owned());
    };
    let recorded = completed_in(&dir, phase);
    assert!(
        path.exists(),
        "the kill of {pid} landed after the rename of {}",
        path.display()
    );
    std::fs::write(
        scratch.path().join(STATE_FILE),
        std::fs::read(&path).unwrap(),
    )
    .unwrap();
    let written = completed_in(scratch.path(), phase);
    assert!(written > recorded, "{written} vs {recorded}");
    let note = format!("temp save of pid {pid}: {phase} steps {written}, state file {recorded}");
    (run, killed, note)
}

/// Helm's release records in the API: revision and status.
fn release_records(kube: &FakeKube) -> Vec<(u64, String)> {
    kube.list(Resource::Secrets, None, "owner=helm")
        .unwrap()
        .iter()
        .filter_map(|s| {
            let labels = &s["metadata"]["labels"];
            Some((
                labels["version"].as_str()?.parse().ok()?,
                labels["status"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// No pinned host key was dropped or replaced by the run (no VM is recreated in a walk, so
/// `known_hosts` only grows, as nodes are first reached); `seen` becomes its lines now.
fn pins_kept(cli: &LabCli, seen: &mut BTreeSet<String>, label: &str) {
    let now: BTreeSet<String> = std::fs::read_to_string(cli.state_dir().join("known_hosts"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let lost: Vec<&String> = seen.difference(&now).collect();
    assert!(
        lost.is_empty(),
        "{label}: known_hosts lost or changed {lost:?}"
    );
    *seen = now;
}

/// The resume after a walk: it starts no step recorded completed and converges (`status` 0, a
/// rerun starts nothing) without recreating a VM or changing a key.
async fn resume_converges_unchanged(cli: &k0rdent_tests::lab::cli::LabCli, label: &str) {
    let vm_ids = || -> Vec<String> {
        [CONTROLLER, WORKER]
            .iter()
            .map(|v| cli.emu.vm(v).unwrap().vm_id)
            .collect()
    };
    let (ids, keys) = (vm_ids(), cli.key_files());
    let before = completed_steps(&cli.state().await);
    let r = cli.ok(&["-o", "json", "deploy", "-y"]);
    assert_skips_verified(&r, &before, label);
    cli.ok(&["status"]);
    let r = cli.ok(&["-o", "json", "deploy", "-y"]);
    let events = transcript::decisive_events(&r.stdout);
    assert!(transcript::started(&events).is_empty(), "{events}");
    assert_eq!(vm_ids(), ids, "{label}: a VM was recreated");
    assert_eq!(cli.key_files(), keys, "{label}: a key changed");
}

/// No Azure resource was created twice over the whole walk (one 201 per resource path), so
/// no VM was recreated and nothing that existed was created again.
fn assert_created_once(cli: &k0rdent_tests::lab::cli::LabCli) {
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    for e in cli.emu.log().entries() {
        if e.method == "PUT" && e.status == 201 {
            *created.entry(e.path.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let twice: Vec<_> = created.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created twice: {twice:?}");
    eprintln!("{} resources created once each", created.len());
}
