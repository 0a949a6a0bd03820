//! The planner against a table of named scenarios on a pipeline shaped like the real one.
//! Each scenario asserts the decisions and reasons of the steps it targets and snapshots the
//! whole plan (`tests/snapshots/planner_scenarios__<name>.snap`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use k0rdent_core::gate::GateFailure;
use k0rdent_core::plan::{PlanFacts, PlanGraph, RunMark, StepSpec};
use k0rdent_core::state::{Journal, JournalEntry, ResetMarker};
use k0rdent_core::step::Availability;
use k0rdent_core::*;
use k0rdent_core::{
    fingerprint::Fingerprint,
    id::RunId,
    plan::{Decision, Plan, plan},
    state::{DeploymentState, Status},
};

fn id(s: &str) -> StepId {
    StepId::parse(s).unwrap()
}

const VMS: [&str; 3] = ["k0s-controller-1", "k0s-controller-2", "k0s-worker-1"];

/// prepare → network → vms → setup_vpn → connect_vpn → k0s → k0rdent, plus optional phases.
fn specs() -> Vec<StepSpec> {
    let mut v = vec![
        StepSpec::new(id("prepare_deployment"), vec![]),
        StepSpec::new(id("setup_network"), vec![id("prepare_deployment")]),
    ];
    for vm in VMS {
        v.push(StepSpec::new(
            id(&format!("create_vms/{vm}")),
            vec![id("setup_network")],
        ));
    }
    v.extend([
        StepSpec::new(id("setup_vpn"), vec![id("create_vms")]),
        StepSpec::new(id("connect_vpn"), vec![id("setup_vpn")]),
        StepSpec::new(id("install_k0s"), vec![id("connect_vpn")]),
        StepSpec::new(id("install_k0rdent"), vec![id("install_k0s")]),
        StepSpec::new(id("install_azure_csi"), vec![id("install_k0s")]),
        StepSpec::new(id("install_kof_mothership"), vec![id("install_k0rdent")]),
        StepSpec::new(
            id("install_kof_regional"),
            vec![id("install_kof_mothership")],
        ),
    ]);
    v
}

fn fp(step: &str, version: &str, immutable: &str) -> Fingerprint {
    Fingerprint::builder()
        .input("step", step)
        .input("version", version)
        .immutable("immutable", immutable)
        .finish()
}

/// A scenario: a graph, a recorded state and the facts, with helpers to set them up.
struct Scenario {
    specs: Vec<StepSpec>,
    state: DeploymentState,
    observations: BTreeMap<StepId, Observation>,
    fingerprints: BTreeMap<StepId, Fingerprint>,
    journal_faults: BTreeMap<StepId, String>,
    gate_failures: BTreeMap<StepId, GateFailure>,
    run: BTreeMap<StepId, RunMark>,
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
}

impl Scenario {
    /// Nothing recorded, nothing exists.
    fn fresh() -> Self {
        let specs = specs();
        let mut s = Scenario {
            observations: BTreeMap::new(),
            fingerprints: BTreeMap::new(),
            state: DeploymentState::default(),
            journal_faults: BTreeMap::new(),
            gate_failures: BTreeMap::new(),
            run: BTreeMap::new(),
            specs,
        };
        for spec in &s.specs {
            let name = spec.id.as_str().to_owned();
            s.observations.insert(
                spec.id.clone(),
                Observation::absent(format!("{name} not found")),
            );
            s.fingerprints
                .insert(spec.id.clone(), fp(&name, "v1", "i1"));
        }
        // Optional phases are off unless a scenario turns them on.
        for opt in [
            "install_azure_csi",
            "install_kof_mothership",
            "install_kof_regional",
        ] {
            s.disable(opt, "not enabled in the configuration");
        }
        s
    }

    /// Everything recorded completed, observed done, same fingerprints.
    fn deployed() -> Self {
        let mut s = Scenario::fresh();
        for spec in s.specs.clone() {
            if matches!(spec.availability, Availability::Disabled(_)) {
                let r = s.state.record_mut(&spec.id);
                r.status = Status::Skipped;
                r.skipped_reason = Some("not enabled in the configuration".into());
                continue;
            }
            s.complete(spec.id.as_str());
        }
        s
    }

    fn complete(&mut self, step: &str) {
        let sid = id(step);
        let fingerprint = self.fingerprints[&sid].clone();
        let r = self.state.record_mut(&sid);
        r.status = Status::Completed;
        r.attempts = 1;
        r.fingerprint = Some(fingerprint);
        r.outputs = Outputs::new().with("id", step);
        r.finished_at = Some(at());
        self.observations
            .insert(sid, Observation::done(Evidence::new().with("seen", step)));
        if let Some(phase) = step.split_once('/').map(|p| p.0) {
            self.state.summarize_phase(phase);
        }
    }

    fn status(&mut self, step: &str, status: Status) -> &mut Self {
        self.state.record_mut(&id(step)).status = status;
        self
    }

    fn interrupt(&mut self, step: &str) -> &mut Self {
        let r = self.state.record_mut(&id(step));
        r.status = Status::InProgress;
        r.journal = Journal(vec![JournalEntry {
            at: at(),
            key: "put_accepted".into(),
            value: serde_json::json!({"operation": "https://example.invalid/op/1"}),
        }]);
        self
    }

    fn observe(&mut self, step: &str, o: Observation) -> &mut Self {
        self.observations.insert(id(step), o);
        self
    }

    fn inputs(&mut self, step: &str, version: &str) -> &mut Self {
        let imm = "i1";
        self.fingerprints.insert(id(step), fp(step, version, imm));
        self
    }

    fn immutable(&mut self, step: &str, imm: &str) -> &mut Self {
        self.fingerprints.insert(id(step), fp(step, "v1", imm));
        self
    }

    fn gate_fails(&mut self, step: &str, gate: &str, reason: &str) -> &mut Self {
        self.gate_failures.insert(
            id(step),
            GateFailure {
                gate: gate.into(),
                reason: reason.into(),
                remedy: Some("run `k0rdent vpn status`".into()),
            },
        );
        self
    }

    fn disable(&mut self, step: &str, reason: &str) -> &mut Self {
        for s in &mut self.specs {
            if s.id.as_str() == step {
                s.availability = Availability::Disabled(reason.into());
            }
        }
        self
    }

    fn enable(&mut self, step: &str) -> &mut Self {
        for s in &mut self.specs {
            if s.id.as_str() == step {
                s.availability = Availability::Enabled;
            }
        }
        self
    }

    fn unavailable(&mut self, step: &str, reason: &str) -> &mut Self {
        for s in &mut self.specs {
            if s.id.as_str() == step {
                s.availability = Availability::Unavailable(reason.into());
            }
        }
        self
    }

    fn plan(&self) -> Plan {
        let graph = PlanGraph::new(self.specs.clone()).unwrap();
        let n = graph.len();
        let mut facts = PlanFacts {
            observations: Vec::with_capacity(n),
            fingerprints: Vec::with_capacity(n),
            journal_faults: Vec::with_capacity(n),
            gate_failures: self.gate_failures.clone(),
            run: self.run.clone(),
        };
        for i in 0..n {
            let sid = &graph.spec(i).id;
            facts.observations.push(self.observations[sid].clone());
            facts.fingerprints.push(self.fingerprints[sid].clone());
            facts
                .journal_faults
                .push(self.journal_faults.get(sid).cloned());
        }
        let p = plan(&graph, &self.state, &facts);
        // Deterministic: the same inputs give the same plan.
        assert_eq!(p, plan(&graph, &self.state.clone(), &facts.clone()));
        p
    }
}

/// Asserts decision, reason code and provisional flag of one step.
fn expect(p: &Plan, step: &str, decision: Decision, reason: &str, provisional: bool) {
    let e = p
        .entry(&id(step))
        .unwrap_or_else(|| panic!("no entry for {step}"));
    assert_eq!(
        (e.decision, e.reason.code(), e.provisional),
        (decision, reason, provisional),
        "{step}: {}",
        e.message
    );
}

macro_rules! scenario {
    ($name:ident, $setup:expr, |$p:ident| $checks:block) => {
        #[test]
        fn $name() {
            let s: Scenario = $setup;
            let $p = s.plan();
            $checks
            insta::assert_yaml_snapshot!(stringify!($name), $p);
        }
    };
}

fn with(mut s: Scenario, f: impl FnOnce(&mut Scenario)) -> Scenario {
    f(&mut s);
    s
}

scenario!(
    fresh_deployment_runs_the_first_step_and_plans_the_rest_provisionally,
    Scenario::fresh(),
    |p| {
        expect(
            &p,
            "prepare_deployment",
            Decision::Run,
            "not_started",
            false,
        );
        expect(&p, "setup_network", Decision::Run, "not_started", true);
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Run,
            "not_started",
            true,
        );
        expect(&p, "install_k0rdent", Decision::Run, "not_started", true);
        expect(
            &p,
            "install_kof_mothership",
            Decision::Disabled,
            "disabled",
            false,
        );
        assert!(p.has_changes() && !p.is_blocked());
    }
);

scenario!(
    fully_deployed_and_verified_skips_everything,
    Scenario::deployed(),
    |p| {
        for e in &p.entries {
            assert!(
                matches!(e.decision, Decision::Skip | Decision::Disabled),
                "{e:?}"
            );
            assert!(!e.provisional);
        }
        expect(&p, "install_k0s", Decision::Skip, "verified", false);
        assert!(!p.has_changes());
        assert!(p.to_string().starts_with("Nothing to do"));
    }
);

scenario!(
    interrupted_prepare_deployment_resumes,
    with(Scenario::fresh(), |s| {
        s.interrupt("prepare_deployment");
    }),
    |p| {
        expect(
            &p,
            "prepare_deployment",
            Decision::Resume,
            "interrupted",
            false,
        );
        expect(&p, "setup_network", Decision::Run, "not_started", true);
    }
);

scenario!(
    interrupted_setup_network_resumes_after_verified_prepare,
    with(Scenario::fresh(), |s| {
        s.complete("prepare_deployment");
        s.interrupt("setup_network");
    }),
    |p| {
        expect(&p, "prepare_deployment", Decision::Skip, "verified", false);
        expect(&p, "setup_network", Decision::Resume, "interrupted", false);
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Run,
            "not_started",
            true,
        );
    }
);

scenario!(
    interrupted_create_vms_resumes_only_the_vm_in_flight,
    with(Scenario::fresh(), |s| {
        for st in [
            "prepare_deployment",
            "setup_network",
            "create_vms/k0s-controller-1",
        ] {
            s.complete(st);
        }
        s.interrupt("create_vms/k0s-controller-2");
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Skip,
            "verified",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-2",
            Decision::Resume,
            "interrupted",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Run,
            "not_started",
            false,
        );
        expect(&p, "setup_vpn", Decision::Run, "not_started", true);
    }
);

scenario!(
    interrupted_setup_vpn_resumes,
    with(Scenario::deployed(), |s| {
        s.interrupt("setup_vpn");
        for st in ["connect_vpn", "install_k0s", "install_k0rdent"] {
            s.status(st, Status::Pending);
            s.observe(st, Observation::absent("not there"));
        }
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Skip,
            "verified",
            false,
        );
        expect(&p, "setup_vpn", Decision::Resume, "interrupted", false);
        expect(&p, "connect_vpn", Decision::Run, "not_started", true);
    }
);

scenario!(
    interrupted_install_k0s_resumes_and_keeps_the_vpn,
    with(Scenario::deployed(), |s| {
        s.interrupt("install_k0s");
        s.status("install_k0rdent", Status::Pending);
        s.observe("install_k0rdent", Observation::absent("no release"));
    }),
    |p| {
        expect(&p, "connect_vpn", Decision::Skip, "verified", false);
        expect(&p, "install_k0s", Decision::Resume, "interrupted", false);
        expect(&p, "install_k0rdent", Decision::Run, "not_started", true);
    }
);

scenario!(
    interrupted_install_k0rdent_resumes,
    with(Scenario::deployed(), |s| {
        s.interrupt("install_k0rdent");
        s.observe(
            "install_k0rdent",
            Observation::partial("helm release pending-install", Evidence::new()),
        );
    }),
    |p| {
        expect(&p, "install_k0s", Decision::Skip, "verified", false);
        expect(
            &p,
            "install_k0rdent",
            Decision::Resume,
            "interrupted",
            false,
        );
    }
);

scenario!(
    vm_deleted_behind_our_back_reruns_only_that_vm,
    with(Scenario::deployed(), |s| {
        s.observe(
            "create_vms/k0s-worker-1",
            Observation::absent("VM k0s-worker-1 not found"),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Rerun,
            "drift",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Skip,
            "verified",
            false,
        );
        expect(&p, "setup_network", Decision::Skip, "verified", false);
        expect(&p, "setup_vpn", Decision::Skip, "verified", true);
        expect(&p, "install_k0s", Decision::Skip, "verified", true);
    }
);

scenario!(
    deallocated_vm_is_partial_drift_converged_in_place,
    with(Scenario::deployed(), |s| {
        s.observe(
            "create_vms/k0s-controller-2",
            Observation::partial(
                "PowerState/deallocated",
                Evidence::new().with("power", "deallocated"),
            ),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-controller-2",
            Decision::Rerun,
            "drift",
            false,
        );
        expect(&p, "connect_vpn", Decision::Skip, "verified", true);
    }
);

scenario!(
    missing_network_reruns_it_and_everything_after_waits_for_it,
    with(Scenario::deployed(), |s| {
        s.observe(
            "setup_network",
            Observation::absent("virtual network not found"),
        );
    }),
    |p| {
        expect(&p, "setup_network", Decision::Rerun, "drift", false);
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Skip,
            "verified",
            true,
        );
        expect(&p, "install_k0rdent", Decision::Skip, "verified", true);
    }
);

scenario!(
    failed_observer_blocks_everything_it_covers_and_never_works,
    with(Scenario::deployed(), |s| {
        for st in [
            "setup_network",
            "create_vms/k0s-controller-1",
            "create_vms/k0s-controller-2",
            "create_vms/k0s-worker-1",
        ] {
            s.observe(
                st,
                Observation::unknown("azure observer failed: HTTP 403 AuthorizationFailed"),
            );
        }
    }),
    |p| {
        expect(&p, "prepare_deployment", Decision::Skip, "verified", false);
        expect(
            &p,
            "setup_network",
            Decision::Blocked,
            "observation_unknown",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
        expect(
            &p,
            "install_k0rdent",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
        assert!(!p.entries.iter().any(|e| e.decision.executes()));
    }
);

scenario!(
    one_unknown_vm_blocks_it_and_its_dependents_but_not_its_siblings,
    with(Scenario::fresh(), |s| {
        s.complete("prepare_deployment");
        s.complete("setup_network");
        s.observe(
            "create_vms/k0s-controller-2",
            Observation::unknown("VM reported no power state"),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Run,
            "not_started",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-2",
            Decision::Blocked,
            "observation_unknown",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Run,
            "not_started",
            false,
        );
        expect(
            &p,
            "setup_vpn",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
    }
);

scenario!(
    changed_config_input_reruns_in_place,
    with(Scenario::deployed(), |s| {
        s.inputs("install_k0rdent", "v2");
    }),
    |p| {
        expect(
            &p,
            "install_k0rdent",
            Decision::Rerun,
            "inputs_changed",
            false,
        );
        expect(&p, "install_k0s", Decision::Skip, "verified", false);
    }
);

scenario!(
    changed_immutable_input_plans_replace,
    with(Scenario::deployed(), |s| {
        s.immutable("create_vms/k0s-controller-1", "new-custom-data");
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Replace,
            "immutable_inputs_changed",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-2",
            Decision::Skip,
            "verified",
            false,
        );
        expect(&p, "setup_vpn", Decision::Skip, "verified", true);
    }
);

scenario!(
    immutable_change_of_an_absent_resource_is_a_plain_rerun,
    with(Scenario::deployed(), |s| {
        s.immutable("create_vms/k0s-worker-1", "new-zone");
        s.observe(
            "create_vms/k0s-worker-1",
            Observation::absent("VM not found"),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Rerun,
            "drift",
            false,
        );
    }
);

scenario!(
    immutable_change_after_a_failed_attempt_plans_replace_not_run,
    with(Scenario::deployed(), |s| {
        s.status("create_vms/k0s-worker-1", Status::Failed);
        s.immutable("create_vms/k0s-worker-1", "new-custom-data");
        s.observe(
            "create_vms/k0s-worker-1",
            Observation::partial("VM k0s-worker-1 provisioning is Failed", Evidence::new()),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Replace,
            "immutable_inputs_changed",
            false,
        );
        assert!(
            p.entry(&id("create_vms/k0s-worker-1"))
                .unwrap()
                .needs_confirmation()
        );
    }
);

scenario!(
    immutable_change_while_interrupted_plans_replace_not_resume,
    with(Scenario::deployed(), |s| {
        s.interrupt("create_vms/k0s-worker-1");
        s.immutable("create_vms/k0s-worker-1", "new-custom-data");
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Replace,
            "immutable_inputs_changed",
            false,
        );
    }
);

scenario!(
    a_resource_only_a_replace_can_repair_plans_replace_whatever_the_record,
    with(Scenario::fresh(), |s| {
        s.complete("prepare_deployment");
        s.complete("setup_network");
        // A creation that failed before anything was ever recorded as completed: no
        // fingerprint, only what Azure shows.
        s.status("create_vms/k0s-worker-1", Status::Failed);
        s.observe(
            "create_vms/k0s-worker-1",
            Observation::needs_replace("VM k0s-worker-1 provisioning failed", Evidence::new()),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Replace,
            "replace_needed",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Run,
            "not_started",
            false,
        );
    }
);

scenario!(
    a_disruptive_difference_plans_a_rerun_that_needs_confirmation,
    with(Scenario::deployed(), |s| {
        s.observe(
            "create_vms/k0s-worker-1",
            Observation::disruptive(
                "VM k0s-worker-1 is Standard_B2s, configured Standard_D4s_v5",
                Evidence::new(),
            ),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Rerun,
            "disruptive_change",
            false,
        );
        let e = p.entry(&id("create_vms/k0s-worker-1")).unwrap();
        assert!(e.needs_confirmation());
        assert!(
            e.message.contains("disruptive: needs confirmation"),
            "{}",
            e.message
        );
        // A plain drift does not need confirmation.
        let mut plain = Scenario::deployed();
        plain.observe(
            "create_vms/k0s-worker-1",
            Observation::partial("VM k0s-worker-1 is deallocated", Evidence::new()),
        );
        let q = plain.plan();
        assert!(
            !q.entry(&id("create_vms/k0s-worker-1"))
                .unwrap()
                .needs_confirmation()
        );
    }
);

scenario!(
    a_changed_disruptive_input_plans_a_rerun_that_needs_confirmation,
    with(Scenario::deployed(), |s| {
        let sid = id("create_vms/k0s-worker-1");
        let with_size = |size: &str| {
            Fingerprint::builder()
                .input("step", "create_vms/k0s-worker-1")
                .disruptive("size", size)
                .immutable("immutable", "i1")
                .finish()
        };
        s.state.record_mut(&sid).fingerprint = Some(with_size("Standard_B2s"));
        s.fingerprints.insert(sid, with_size("Standard_D4s_v5"));
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Rerun,
            "disruptive_inputs_changed",
            false,
        );
        assert!(
            p.entry(&id("create_vms/k0s-worker-1"))
                .unwrap()
                .needs_confirmation()
        );
    }
);

scenario!(
    a_failed_steps_unreadable_journal_blocks_too,
    with(Scenario::deployed(), |s| {
        s.interrupt("create_vms/k0s-worker-1");
        s.status("create_vms/k0s-worker-1", Status::Failed);
        s.journal_faults.insert(
            id("create_vms/k0s-worker-1"),
            "arm/vm: missing field".into(),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Blocked,
            "journal_corrupt",
            false,
        );
    }
);

scenario!(
    changed_upstream_outputs_rerun_the_steps_that_consume_them,
    with(Scenario::deployed(), |s| {
        // install_k0s's fingerprint covers connect_vpn's outputs; they changed.
        s.inputs("install_k0s", "upstream-outputs-changed");
    }),
    |p| {
        expect(&p, "install_k0s", Decision::Rerun, "inputs_changed", false);
        expect(&p, "install_k0rdent", Decision::Skip, "verified", true);
    }
);

scenario!(
    failing_gate_blocks_the_step_and_everything_behind_it,
    with(Scenario::deployed(), |s| {
        s.interrupt("install_k0s");
        s.gate_fails(
            "install_k0s",
            "vpn_up",
            "peer k0s-worker-1: no reply to the probe within 2 s",
        );
    }),
    |p| {
        expect(&p, "install_k0s", Decision::Blocked, "gate_failed", false);
        expect(
            &p,
            "install_k0rdent",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
        expect(&p, "connect_vpn", Decision::Skip, "verified", false);
        assert!(p.to_string().contains("hint: run `k0rdent vpn status`"));
    }
);

scenario!(
    vpn_interface_gone_plans_connect_and_defers_what_it_cannot_see,
    with(Scenario::deployed(), |s| {
        s.observe(
            "connect_vpn",
            Observation::absent("interface wg-k0rdent not present"),
        );
        s.observe(
            "install_k0s",
            Observation::unknown("cannot reach the nodes: VPN down"),
        );
        s.observe(
            "install_k0rdent",
            Observation::unknown("cannot reach the API: VPN down"),
        );
    }),
    |p| {
        expect(&p, "connect_vpn", Decision::Rerun, "drift", false);
        expect(&p, "install_k0s", Decision::Skip, "awaiting_upstream", true);
        expect(
            &p,
            "install_k0rdent",
            Decision::Skip,
            "awaiting_upstream",
            true,
        );
        assert!(!p.is_blocked());
    }
);

scenario!(
    vpn_restored_with_unchanged_outputs_reruns_nothing_downstream,
    with(Scenario::deployed(), |s| {
        // connect_vpn ran in this run and came back with the same outputs, so the
        // fingerprints of install_k0s and install_k0rdent (computed from them) are unchanged.
        s.run.insert(id("connect_vpn"), RunMark::Completed);
    }),
    |p| {
        expect(
            &p,
            "connect_vpn",
            Decision::Skip,
            "completed_this_run",
            false,
        );
        expect(&p, "install_k0s", Decision::Skip, "verified", false);
        expect(&p, "install_k0rdent", Decision::Skip, "verified", false);
        assert!(!p.has_changes());
    }
);

scenario!(
    optional_phase_off_is_disabled_and_recorded_skipped,
    Scenario::deployed(),
    |p| {
        expect(
            &p,
            "install_kof_mothership",
            Decision::Disabled,
            "disabled",
            false,
        );
        expect(
            &p,
            "install_kof_regional",
            Decision::Disabled,
            "disabled",
            false,
        );
    }
);

scenario!(
    optional_phase_turned_on_again_runs,
    with(Scenario::deployed(), |s| {
        s.enable("install_kof_mothership");
        s.enable("install_kof_regional");
    }),
    |p| {
        expect(
            &p,
            "install_kof_mothership",
            Decision::Run,
            "re_enabled",
            false,
        );
        expect(
            &p,
            "install_kof_regional",
            Decision::Run,
            "re_enabled",
            true,
        );
        expect(&p, "install_k0rdent", Decision::Skip, "verified", false);
    }
);

scenario!(
    enabled_phase_behind_a_disabled_one_is_blocked,
    with(Scenario::deployed(), |s| {
        s.enable("install_kof_regional");
    }),
    |p| {
        expect(
            &p,
            "install_kof_regional",
            Decision::Blocked,
            "dependency_disabled",
            false,
        );
    }
);

scenario!(
    corrupted_journal_blocks_instead_of_guessing,
    with(Scenario::deployed(), |s| {
        s.interrupt("create_vms/k0s-controller-1");
        s.journal_faults.insert(
            id("create_vms/k0s-controller-1"),
            "operation URL is not a URL".into(),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Blocked,
            "journal_corrupt",
            false,
        );
        expect(
            &p,
            "setup_vpn",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
        assert!(p.to_string().contains("k0rdent refresh"));
    }
);

scenario!(
    failed_step_runs_again,
    with(Scenario::deployed(), |s| {
        s.status("install_k0rdent", Status::Failed);
        s.state.record_mut(&id("install_k0rdent")).last_error = Some("helm: timed out".into());
        s.observe("install_k0rdent", Observation::absent("no release"));
    }),
    |p| {
        expect(
            &p,
            "install_k0rdent",
            Decision::Run,
            "previous_attempt_failed",
            false,
        );
    }
);

scenario!(
    failure_in_this_run_blocks_its_dependents,
    with(Scenario::fresh(), |s| {
        s.complete("prepare_deployment");
        s.run
            .insert(id("setup_network"), RunMark::Failed("QuotaExceeded".into()));
    }),
    |p| {
        expect(
            &p,
            "setup_network",
            Decision::Blocked,
            "failed_this_run",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Blocked,
            "dependency_failed",
            false,
        );
    }
);

scenario!(
    reset_in_progress_blocks_everything,
    with(Scenario::deployed(), |s| {
        s.state.reset = Some(ResetMarker {
            started_at: at(),
            run_id: RunId::from_string("20261128T120000Z-00000000"),
        });
    }),
    |p| {
        assert!(
            p.entries
                .iter()
                .all(|e| e.decision == Decision::Blocked && e.reason.code() == "reset_in_progress")
        );
    }
);

scenario!(
    unimplemented_phase_plans_as_blocked_never_done,
    with(Scenario::fresh(), |s| {
        for st in [
            "prepare_deployment",
            "setup_network",
            "create_vms/k0s-controller-1",
            "create_vms/k0s-controller-2",
            "create_vms/k0s-worker-1",
            "setup_vpn",
            "connect_vpn",
        ] {
            s.complete(st);
        }
        s.unavailable("install_k0s", "phase install_k0s is not implemented yet");
        s.unavailable(
            "install_k0rdent",
            "phase install_k0rdent is not implemented yet",
        );
    }),
    |p| {
        expect(&p, "install_k0s", Decision::Blocked, "unavailable", false);
        expect(
            &p,
            "install_k0rdent",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
    }
);

scenario!(
    unconfirmed_replace_is_blocked,
    with(Scenario::deployed(), |s| {
        s.immutable("create_vms/k0s-worker-1", "other-image");
        s.run.insert(
            id("create_vms/k0s-worker-1"),
            RunMark::NeedsConfirmation("immutable input changed".into()),
        );
    }),
    |p| {
        expect(
            &p,
            "create_vms/k0s-worker-1",
            Decision::Blocked,
            "needs_confirmation",
            false,
        );
        expect(
            &p,
            "setup_vpn",
            Decision::Blocked,
            "dependency_blocked",
            false,
        );
    }
);

scenario!(
    migrated_completion_without_fingerprint_is_adopted_when_verified,
    with(Scenario::deployed(), |s| {
        s.state.record_mut(&id("setup_network")).fingerprint = None;
    }),
    |p| {
        expect(&p, "setup_network", Decision::Skip, "adopted", false);
    }
);

scenario!(
    unobservable_completed_step_trusts_its_record,
    with(Scenario::deployed(), |s| {
        s.observe("prepare_deployment", Observation::Unobservable);
    }),
    |p| {
        expect(
            &p,
            "prepare_deployment",
            Decision::Skip,
            "trusted_record",
            false,
        );
        expect(&p, "setup_network", Decision::Skip, "verified", false);
    }
);

scenario!(
    completed_in_this_run_is_not_redone_from_a_stale_snapshot,
    with(Scenario::fresh(), |s| {
        s.complete("prepare_deployment");
        s.complete("setup_network");
        // The snapshot predates the step: it still says absent.
        s.observe(
            "setup_network",
            Observation::absent("not found (stale snapshot)"),
        );
        s.run.insert(id("setup_network"), RunMark::Completed);
    }),
    |p| {
        expect(
            &p,
            "setup_network",
            Decision::Skip,
            "completed_this_run",
            false,
        );
        expect(
            &p,
            "create_vms/k0s-controller-1",
            Decision::Run,
            "not_started",
            false,
        );
    }
);

scenario!(
    unobservable_completion_without_recorded_inputs_converges_again,
    with(Scenario::deployed(), |s| {
        s.observe("prepare_deployment", Observation::Unobservable);
        s.state.record_mut(&id("prepare_deployment")).fingerprint = None;
    }),
    |p| {
        expect(
            &p,
            "prepare_deployment",
            Decision::Rerun,
            "inputs_unknown",
            false,
        );
        expect(&p, "setup_network", Decision::Skip, "verified", true);
    }
);
