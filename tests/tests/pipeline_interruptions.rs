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
//! And a second walk with Ctrl-C (SIGINT) at ten moments — inside and at the end of phases,
//! as `install_k0s` starts, during `k0sctl apply`, during `helm upgrade` — each run exiting
//! 130 with no tool left running, the next starting no completed step, converging with the
//! same VMs and keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use k0rdent_core::state::{DeploymentState, Status};
use k0rdent_core::store::STATE_FILE;
use k0rdent_tests::lab::cli::{CliRun, harness};
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::pipeline::{CONTROLLER, PipelineLab, WORKER};
use k0rdent_tests::lab::transcript;
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

/// Every file under `keys/` and its content.
fn key_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("keys"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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
    let (cli, tools) = (&lab.cli, &lab.tools);
    let mut api = None;
    let mut keys = BTreeMap::new();
    let mut vm_ids = BTreeMap::new();
    let mut kills = 0;
    for (phase, steps, inside) in PHASES {
        for at in [inside, At::End] {
            let label = format!("{phase} {at:?}");
            match phase {
                "install_k0s" => lab.pause_k0sctl_after_install(Some(3)),
                "install_k0rdent" => lab.helm_work(Some(10_000)),
                _ => {}
            }
            let before = completed_steps(&cli.state_or_default().await);
            let delay = match at {
                At::Inside(_, d) => d,
                At::End => Duration::ZERO,
            };
            let (run, killed) = if phase == "prepare_deployment" {
                // Its work happens before the pipeline exists (no step events): killed as
                // soon as its first key file appears, or once it is recorded.
                let keys = cli.state_dir().join("keys");
                let state = cli.state_dir().join(STATE_FILE);
                cli.run_killed_polling(&["-y", "deploy"], || match at {
                    At::Inside(..) => {
                        std::fs::read_dir(&keys).is_ok_and(|mut d| d.next().is_some())
                    }
                    At::End => state.exists(),
                })
            } else {
                cli.run_killed_when(&["-y", "deploy"], delay, trigger(phase, steps, at))
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
                ("prepare_deployment", At::End) => keys = key_files(&cli.state_dir()),
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
    let r = cli.ok(&["-y", "-o", "json", "deploy"]);
    assert_skips_verified(&r, &before, "the final rerun");
    let events = transcript::decisive_events(&r.stdout);
    assert!(transcript::started(&events).is_empty(), "{events}");
    assert_eq!(tools.mutating_calls(), calls);
    // One apply killed and one that finished; one upgrade killed and one that finished.
    assert_eq!(calls, (2, 2), "k0sctl apply, helm upgrade");
    for (vm, id) in &vm_ids {
        assert_eq!(&cli.emu.vm(vm).unwrap().vm_id, id, "{vm} was recreated");
    }
    let now = key_files(&cli.state_dir());
    assert!(!keys.is_empty());
    for (name, content) in &keys {
        assert_eq!(now.get(name), Some(content), "keys/{name} changed");
    }
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
    let cli = &lab.cli;
    let mut api = None;
    let mut interrupts = 0;
    for (phase, steps, at) in CTRL_C {
        let label = format!("Ctrl-C {phase} {at:?}");
        match phase {
            "install_k0s" => lab.pause_k0sctl_after_install(Some(3)),
            "install_k0rdent" => lab.helm_work(Some(10_000)),
            _ => {}
        }
        let before = completed_steps(&cli.state_or_default().await);
        let delay = match at {
            At::Inside(_, d) => d,
            At::End => Duration::ZERO,
        };
        let (run, signalled) = cli.run_signalled_when(
            &["-y", "deploy"],
            delay,
            rustix::process::Signal::INT,
            trigger(phase, steps, at),
        );
        assert!(signalled, "{label}: never reached:\n{}", run.stderr);
        assert_eq!(run.code, 130, "{label}:\n{}", run.stderr);
        interrupts += 1;
        assert_skips_verified(&run, &before, &label);
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
    let vm_ids: Vec<String> = [CONTROLLER, WORKER]
        .iter()
        .map(|v| cli.emu.vm(v).unwrap().vm_id)
        .collect();
    let keys = key_files(&cli.state_dir());
    let before = completed_steps(&cli.state().await);
    let r = cli.ok(&["-y", "-o", "json", "deploy"]);
    assert_skips_verified(&r, &before, "the resume after the last Ctrl-C");
    cli.ok(&["status"]);
    let r = cli.ok(&["-y", "-o", "json", "deploy"]);
    let events = transcript::decisive_events(&r.stdout);
    assert!(transcript::started(&events).is_empty(), "{events}");
    let now: Vec<String> = [CONTROLLER, WORKER]
        .iter()
        .map(|v| cli.emu.vm(v).unwrap().vm_id)
        .collect();
    assert_eq!(now, vm_ids, "a VM was recreated");
    assert_eq!(key_files(&cli.state_dir()), keys, "a key changed");
    lab.finish(api);
}
