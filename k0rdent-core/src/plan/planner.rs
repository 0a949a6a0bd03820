//! The planner: a pure function from (graph, recorded state, observations, fingerprints,
//! gate verdicts, run progress) to a [`Plan`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::graph::PlanGraph;
use super::{Decision, ObservedKind, Plan, PlanEntry, Reason};
use crate::availability::Availability;
use crate::fingerprint::Fingerprint;
use crate::gate::GateFailure;
use crate::id::StepId;
use crate::observation::{Change, Observation};
use crate::state::{DeploymentState, Status, StepRecord};

/// What happened to a step earlier in the current run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunMark {
    /// It completed in this run.
    Completed,
    /// It failed in this run (after its retries).
    Failed(String),
    /// A replace or a disruptive change was not confirmed (what it was).
    NeedsConfirmation(String),
}

/// Everything the planner consumes besides the graph and the recorded state. Vectors are
/// indexed like the graph's steps.
#[derive(Debug, Clone, Default)]
pub struct PlanFacts {
    #[allow(missing_docs)]
    pub observations: Vec<Observation>,
    /// Each step's current input fingerprint.
    pub fingerprints: Vec<Fingerprint>,
    /// Each step's journal problem, if its journal is unreadable.
    pub journal_faults: Vec<Option<String>>,
    /// Gates that failed, by step.
    pub gate_failures: BTreeMap<StepId, GateFailure>,
    /// What happened earlier in this run.
    pub run: BTreeMap<StepId, RunMark>,
}

struct Own {
    decision: Decision,
    reason: Reason,
}

fn own(decision: Decision, reason: Reason) -> Own {
    Own { decision, reason }
}

/// The decision from the step's own record, observation and fingerprint alone.
///
/// Destructive and disruptive changes are detected whatever the record's status: a step that
/// failed or was interrupted halfway can leave a resource behind that only a delete + create
/// (or a restart) would fix, and that needs the same confirmation as for a completed one. A
/// journal from an interrupted run is settled by the step before it does anything else.
fn decide_own(
    rec: Option<&StepRecord>,
    obs: &Observation,
    fp: &Fingerprint,
    journal_fault: Option<&String>,
) -> Own {
    let status = rec.map_or(Status::Pending, |r| r.status);
    if let Observation::Unknown { reason } = obs {
        return own(
            Decision::Blocked,
            Reason::ObservationUnknown {
                reason: reason.clone(),
            },
        );
    }
    if let Some(detail) = journal_fault {
        return own(
            Decision::Blocked,
            Reason::JournalCorrupt {
                detail: detail.clone(),
            },
        );
    }
    let recorded = rec.and_then(|r| r.fingerprint.as_ref());
    if !matches!(obs, Observation::Absent { .. }) && status != Status::Skipped {
        if let Observation::Partial {
            detail,
            change: Change::Replace,
            ..
        } = obs
        {
            return own(
                Decision::Replace,
                Reason::ReplaceNeeded {
                    detail: detail.clone(),
                },
            );
        }
        if recorded.is_some_and(|r| r.immutable != fp.immutable) {
            return own(Decision::Replace, Reason::ImmutableInputsChanged);
        }
        if let Observation::Partial {
            detail,
            change: Change::Disruptive,
            ..
        } = obs
        {
            return own(
                Decision::Rerun,
                Reason::DisruptiveChange {
                    detail: detail.clone(),
                },
            );
        }
        if recorded.is_some_and(|r| r.disruptive.is_some() && r.disruptive != fp.disruptive) {
            return own(Decision::Rerun, Reason::DisruptiveInputsChanged);
        }
    }
    match status {
        Status::Pending => own(Decision::Run, Reason::NotStarted),
        Status::Skipped => own(Decision::Run, Reason::ReEnabled),
        Status::Failed => own(
            Decision::Run,
            Reason::PreviousAttemptFailed {
                error: rec
                    .and_then(|r| r.last_error.clone())
                    .unwrap_or_else(|| "unknown error".into()),
            },
        ),
        Status::InProgress => own(Decision::Resume, Reason::Interrupted),
        Status::Completed => match obs {
            Observation::Absent { reason } => own(
                Decision::Rerun,
                Reason::Drift {
                    detail: reason.clone(),
                },
            ),
            Observation::Partial { detail, .. } => own(
                Decision::Rerun,
                Reason::Drift {
                    detail: detail.clone(),
                },
            ),
            _ if recorded.is_some_and(|r| r.inputs != fp.inputs) => {
                own(Decision::Rerun, Reason::InputsChanged)
            }
            Observation::Done { .. } if recorded.is_none() => own(Decision::Skip, Reason::Adopted),
            Observation::Done { .. } => own(Decision::Skip, Reason::Verified),
            // Completed, nothing to observe and no recorded inputs: nothing shows it is
            // still right, so converge again (apply is idempotent).
            _ if recorded.is_none() => own(Decision::Rerun, Reason::InputsUnknown),
            _ => own(Decision::Skip, Reason::TrustedRecord),
        },
    }
}

fn message(reason: &Reason, after: Option<&StepId>, status: Status) -> Cow<'static, str> {
    let fixed = |s: &'static str| Cow::Borrowed(s);
    let base: Cow<'static, str> = match reason {
        Reason::NotStarted => fixed("not done yet"),
        Reason::PreviousAttemptFailed { error } => format!("last attempt failed: {error}").into(),
        Reason::ReEnabled => fixed("enabled again"),
        Reason::Interrupted => fixed("was interrupted; settling its journal, then continuing"),
        Reason::Verified => fixed("completed and verified"),
        Reason::Adopted => fixed("completed (no recorded inputs) and verified; adopting"),
        Reason::TrustedRecord => fixed("completed; nothing to observe, record trusted"),
        Reason::CompletedThisRun => fixed("completed in this run"),
        Reason::Drift { detail } => format!("drift: {detail}").into(),
        Reason::InputsChanged => fixed("inputs changed since it completed"),
        Reason::InputsUnknown => fixed(
            "completed, but neither its inputs nor its result can be checked; converging again",
        ),
        Reason::ImmutableInputsChanged => {
            fixed("an input that cannot change in place changed: delete and create")
        }
        Reason::ReplaceNeeded { detail } => format!("{detail}: delete and create").into(),
        Reason::DisruptiveChange { detail } => {
            format!("{detail} (disruptive: needs confirmation)").into()
        }
        Reason::DisruptiveInputsChanged => {
            fixed("an input that changes in place with a restart changed: it restarts")
        }
        Reason::AwaitingUpstream { upstream } => {
            format!("recorded {status}; re-checked after {upstream} runs").into()
        }
        Reason::ObservationUnknown { reason } => format!("state unknown: {reason}").into(),
        Reason::GateFailed { gate, reason, .. } => format!("gate {gate} failed: {reason}").into(),
        Reason::DependencyBlocked { dependency } => {
            format!("waits for blocked {dependency}").into()
        }
        Reason::DependencyFailed { dependency } => format!("waits for failed {dependency}").into(),
        Reason::DependencyDisabled { dependency } => {
            format!("depends on {dependency}, which is disabled").into()
        }
        Reason::FailedThisRun { error } => format!("failed: {error}").into(),
        Reason::Unavailable { reason } => format!("cannot run: {reason}").into(),
        Reason::JournalCorrupt { detail } => format!("journal unreadable: {detail}").into(),
        Reason::ResetInProgress => fixed("a reset is in progress"),
        Reason::NeedsConfirmation { detail } => format!("needs confirmation (-y): {detail}").into(),
        Reason::Disabled { reason } => format!("disabled: {reason}").into(),
    };
    let base: Cow<'static, str> = if status == Status::InProgress && reason.needs_confirmation() {
        format!("{base} (its journaled work is settled first)").into()
    } else {
        base
    };
    match after {
        Some(up) if !matches!(reason, Reason::AwaitingUpstream { .. }) => {
            format!("{base} (re-planned after {up})").into()
        }
        _ => base,
    }
}

/// Computes the plan.
///
/// Rules, in order, per step (dependencies first):
/// 1. a reset in progress blocks everything;
/// 2. a disabled step is `disabled`;
/// 3. what happened earlier in this run wins (completed → skip, failed → blocked);
/// 4. a blocked, failed or disabled dependency blocks;
/// 5. the step's own record, observation and fingerprint decide (unknown → blocked; never
///    work on an unknown);
/// 6. an unavailable step that would run is blocked; a failed gate blocks; a replace that was
///    not confirmed blocks;
/// 7. when an upstream step runs first, the decision is provisional (re-planned after it), and
///    an unknown observation is deferred instead of blocking.
///
/// The result depends only on the arguments, and entries come in the graph's deterministic
/// topological order.
///
/// # Panics
/// If `facts` vectors are shorter than the graph (a caller bug).
pub fn plan(graph: &PlanGraph, state: &DeploymentState, facts: &PlanFacts) -> Plan {
    let n = graph.len();
    let mut entries: Vec<Option<PlanEntry>> = vec![None; n];
    // For provisional entries: the executing step they wait for.
    let mut waits_for: Vec<Option<usize>> = vec![None; n];
    for &i in graph.order() {
        let spec = graph.spec(i);
        let id = &spec.id;
        let rec = state.record(id);
        let status = rec.map_or(Status::Pending, |r| r.status);
        let obs = &facts.observations[i];
        let mut provisional = false;

        let (decision, reason) = 'decide: {
            if state.reset.is_some() {
                break 'decide (Decision::Blocked, Reason::ResetInProgress);
            }
            if let Availability::Disabled(r) = &spec.availability {
                break 'decide (Decision::Disabled, Reason::Disabled { reason: r.clone() });
            }
            match facts.run.get(id) {
                Some(RunMark::Completed) => {
                    break 'decide (Decision::Skip, Reason::CompletedThisRun);
                }
                Some(RunMark::Failed(e)) => {
                    break 'decide (
                        Decision::Blocked,
                        Reason::FailedThisRun { error: e.clone() },
                    );
                }
                _ => {}
            }
            let mut upstream: Option<usize> = None;
            for &d in graph.deps(i) {
                let Some(de) = entries[d].as_ref() else {
                    continue;
                };
                match de.decision {
                    Decision::Blocked => {
                        let dependency = de.step.clone();
                        let reason = if matches!(de.reason, Reason::FailedThisRun { .. }) {
                            Reason::DependencyFailed { dependency }
                        } else {
                            Reason::DependencyBlocked { dependency }
                        };
                        break 'decide (Decision::Blocked, reason);
                    }
                    Decision::Disabled => {
                        break 'decide (
                            Decision::Blocked,
                            Reason::DependencyDisabled {
                                dependency: de.step.clone(),
                            },
                        );
                    }
                    _ if upstream.is_some() => {}
                    _ if de.provisional => upstream = waits_for[d],
                    dd if dd.executes() => upstream = Some(d),
                    _ => {}
                }
            }
            let fault = facts.journal_faults.get(i).and_then(Option::as_ref);
            let mut base = decide_own(rec, obs, &facts.fingerprints[i], fault);
            if let Some(up) = upstream {
                provisional = true;
                waits_for[i] = Some(up);
                if matches!(base.reason, Reason::ObservationUnknown { .. }) {
                    let assumed = decide_own(
                        rec,
                        &Observation::Unobservable,
                        &facts.fingerprints[i],
                        fault,
                    );
                    base = own(
                        assumed.decision,
                        Reason::AwaitingUpstream {
                            upstream: graph.spec(up).id.clone(),
                        },
                    );
                }
            }
            if let Some(g) = facts.gate_failures.get(id) {
                break 'decide (
                    Decision::Blocked,
                    Reason::GateFailed {
                        gate: g.gate.clone(),
                        reason: g.reason.clone(),
                        remedy: g.remedy.clone(),
                    },
                );
            }
            if base.decision.executes() {
                if let Availability::Unavailable(reason) = &spec.availability {
                    break 'decide (
                        Decision::Blocked,
                        Reason::Unavailable {
                            reason: reason.clone(),
                        },
                    );
                }
                if !provisional && let Some(RunMark::NeedsConfirmation(detail)) = facts.run.get(id)
                {
                    break 'decide (
                        Decision::Blocked,
                        Reason::NeedsConfirmation {
                            detail: detail.clone(),
                        },
                    );
                }
            }
            (base.decision, base.reason)
        };
        if decision == Decision::Blocked || decision == Decision::Disabled {
            provisional = false;
            waits_for[i] = None;
        }
        let message = message(&reason, waits_for[i].map(|u| &graph.spec(u).id), status);
        entries[i] = Some(PlanEntry {
            step: id.clone(),
            decision,
            reason,
            message,
            provisional,
            status,
            observed: ObservedKind::of(obs),
        });
    }
    Plan {
        entries: graph
            .order()
            .iter()
            .filter_map(|&i| entries[i].take())
            .collect(),
    }
}
