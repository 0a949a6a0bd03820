//! Property tests for the planner's invariants over random pipelines, records and facts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use k0rdent_core::plan::{PlanFacts, PlanGraph, RunMark, StepSpec};
use k0rdent_core::step::Availability;
use k0rdent_core::*;
use k0rdent_core::{
    fingerprint::Fingerprint,
    gate::GateFailure,
    plan::{Decision, plan},
    state::{DeploymentState, Status},
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    deps: Vec<Vec<usize>>,
    status: Vec<Status>,
    recorded_fp: Vec<Option<u8>>, // which fingerprint variant was recorded
    current_fp: Vec<u8>,
    immutable_recorded: Vec<u8>,
    immutable_current: Vec<u8>,
    obs: Vec<u8>,
    gate_fail: Vec<bool>,
    disabled: Vec<bool>,
    journal_fault: Vec<bool>,
    marks: Vec<u8>,
}

fn fp(v: u8, imm: u8) -> Fingerprint {
    Fingerprint::builder()
        .input("v", &v)
        .immutable("imm", &imm)
        .finish()
}

fn case() -> impl Strategy<Value = Case> {
    (1usize..14).prop_flat_map(|n| {
        let deps = (0..n)
            .map(|i| proptest::collection::vec(0..i.max(1), 0..3.min(i + 1)))
            .collect::<Vec<_>>();
        (
            deps,
            proptest::collection::vec(0u8..5, n),
            proptest::collection::vec(proptest::option::of(0u8..2), n),
            proptest::collection::vec(0u8..2, n),
            proptest::collection::vec(0u8..2, n),
            proptest::collection::vec(0u8..2, n),
            proptest::collection::vec(0u8..5, n),
            proptest::collection::vec(proptest::bool::weighted(0.15), n),
            proptest::collection::vec(proptest::bool::weighted(0.1), n),
            proptest::collection::vec(proptest::bool::weighted(0.1), n),
            proptest::collection::vec(0u8..6, n),
        )
            .prop_map(
                |(deps, st, rfp, cfp, imr, imc, obs, gate, dis, jf, marks)| {
                    let deps = deps
                        .into_iter()
                        .enumerate()
                        .map(|(i, d)| {
                            let mut d: Vec<usize> = d.into_iter().filter(|&x| x < i).collect();
                            d.sort_unstable();
                            d.dedup();
                            d
                        })
                        .collect();
                    Case {
                        deps,
                        status: st
                            .into_iter()
                            .map(|s| match s {
                                0 => Status::Pending,
                                1 => Status::InProgress,
                                2 => Status::Completed,
                                3 => Status::Failed,
                                _ => Status::Skipped,
                            })
                            .collect(),
                        recorded_fp: rfp,
                        current_fp: cfp,
                        immutable_recorded: imr,
                        immutable_current: imc,
                        obs,
                        gate_fail: gate,
                        disabled: dis,
                        journal_fault: jf,
                        marks,
                    }
                },
            )
    })
}

fn name(i: usize) -> StepId {
    StepId::parse(&format!("s{i}")).unwrap()
}

fn build(c: &Case) -> (PlanGraph, DeploymentState, PlanFacts) {
    let n = c.deps.len();
    let specs = (0..n)
        .map(|i| StepSpec {
            id: name(i),
            dependencies: c.deps[i].iter().map(|&d| name(d)).collect(),
            availability: if c.disabled[i] {
                Availability::Disabled("off".into())
            } else {
                Availability::Enabled
            },
        })
        .collect();
    let graph = PlanGraph::new(specs).unwrap();
    let mut state = DeploymentState::default();
    let mut facts = PlanFacts::default();
    for i in 0..n {
        let r = state.record_mut(&name(i));
        r.status = c.status[i];
        r.fingerprint = c.recorded_fp[i].map(|v| fp(v, c.immutable_recorded[i]));
        facts
            .fingerprints
            .push(fp(c.current_fp[i], c.immutable_current[i]));
        facts.observations.push(match c.obs[i] {
            0 => Observation::done(Evidence::new()),
            1 => Observation::absent("gone"),
            2 => Observation::partial("half", Evidence::new()),
            3 => Observation::unknown("403"),
            _ => Observation::Unobservable,
        });
        facts
            .journal_faults
            .push(c.journal_fault[i].then(|| "bad journal".to_owned()));
        if c.gate_fail[i] {
            facts.gate_failures.insert(
                name(i),
                GateFailure {
                    gate: "g".into(),
                    reason: "down".into(),
                    remedy: None,
                },
            );
        }
        match c.marks[i] {
            0 => {
                facts.run.insert(name(i), RunMark::Completed);
            }
            1 => {
                facts.run.insert(name(i), RunMark::Failed("x".into()));
            }
            _ => {}
        }
    }
    (graph, state, facts)
}

/// Transitive dependencies of `i`, not looking behind steps that completed in this run (their
/// own dependencies were satisfied when they ran).
fn ancestors(c: &Case, i: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = c.deps[i].clone();
    while let Some(d) = stack.pop() {
        if !out.contains(&d) {
            out.push(d);
            if c.marks[d] != 0 {
                stack.extend(c.deps[d].iter().copied());
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn planning_is_deterministic(c in case()) {
        let (g, s, f) = build(&c);
        let a = plan(&g, &s, &f);
        let (g2, s2, f2) = build(&c);
        prop_assert_eq!(&a, &plan(&g2, &s2, &f2));
        prop_assert_eq!(a.entries.len(), c.deps.len());
    }

    #[test]
    fn nothing_runs_behind_a_failing_gate_or_an_unknown_observation(c in case()) {
        let (g, s, f) = build(&c);
        let p = plan(&g, &s, &f);
        for e in p.entries.iter().filter(|e| e.ready()) {
            let i = g.index_of(&e.step).unwrap();
            for j in std::iter::once(i).chain(ancestors(&c, i)) {
                let completed_this_run = f.run.get(&name(j)) == Some(&RunMark::Completed);
                if completed_this_run {
                    continue;
                }
                prop_assert!(!f.gate_failures.contains_key(&name(j)),
                    "{} runs although gate of s{} fails", e.step, j);
                prop_assert!(!matches!(f.observations[j], Observation::Unknown { .. }),
                    "{} runs although s{} is unknown", e.step, j);
            }
        }
    }

    #[test]
    fn a_completed_verified_unchanged_step_is_never_reapplied(c in case()) {
        let (g, s, f) = build(&c);
        let p = plan(&g, &s, &f);
        for (i, e) in p.entries.iter().map(|e| (g.index_of(&e.step).unwrap(), e)) {
            let verified = c.status[i] == Status::Completed
                && matches!(f.observations[i], Observation::Done { .. })
                && c.recorded_fp[i].is_some_and(|v| v == c.current_fp[i])
                && c.immutable_recorded[i] == c.immutable_current[i];
            if verified {
                prop_assert!(!e.decision.executes(), "{} would be re-applied: {:?}", e.step, e);
            }
        }
    }

    #[test]
    fn a_definite_skip_never_hides_changed_inputs(c in case()) {
        let (g, s, f) = build(&c);
        let p = plan(&g, &s, &f);
        let by_id: BTreeMap<_, _> = p.entries.iter().map(|e| (e.step.clone(), e)).collect();
        for e in p.entries.iter().filter(|e| e.decision == Decision::Skip && !e.provisional) {
            let i = g.index_of(&e.step).unwrap();
            if f.run.get(&e.step) == Some(&RunMark::Completed) {
                continue;
            }
            // Its own inputs are the recorded ones...
            if let Some(v) = c.recorded_fp[i] {
                prop_assert_eq!(v, c.current_fp[i], "{} skipped with changed inputs", &e.step);
                prop_assert_eq!(c.immutable_recorded[i], c.immutable_current[i]);
            } else {
                prop_assert!(matches!(f.observations[i], Observation::Done { .. }),
                    "{} skipped without fingerprint or evidence", &e.step);
            }
            // ...and nothing it depends on will run first (which could change them).
            for d in &c.deps[i] {
                let de = by_id[&name(*d)];
                prop_assert!(!de.decision.executes() && !de.provisional,
                    "{} skipped although its dependency {} {}", &e.step, de.step, de.decision);
            }
        }
    }

    #[test]
    fn a_provisional_decision_always_waits_for_something_that_runs(c in case()) {
        let (g, s, f) = build(&c);
        let p = plan(&g, &s, &f);
        let by_id: BTreeMap<_, _> = p.entries.iter().map(|e| (e.step.clone(), e)).collect();
        for e in p.entries.iter().filter(|e| e.provisional) {
            let i = g.index_of(&e.step).unwrap();
            let waits = ancestors(&c, i).into_iter().any(|a| {
                let ae = by_id[&name(a)];
                ae.decision.executes() && !ae.provisional
            });
            prop_assert!(waits, "{} is provisional but nothing upstream runs", e.step);
        }
    }
}
