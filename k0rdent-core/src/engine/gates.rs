//! Running gates: one check under its timeout, waiting within a budget, watching a step.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::emit::Emitter;
use crate::cancel::Cancellation;
use crate::event::Event;
use crate::gate::{Deadline, Gate, GateContext, GateFailure, GateVerdict};

pub(crate) enum GateOutcome {
    Pass(String),
    Fail(GateFailure),
    Cancelled,
}

/// One check, bounded by the gate's timeout.
pub(crate) async fn check_once(gate: &dyn Gate, ctx: &GateContext) -> GateVerdict {
    let limit = gate.timeout();
    match tokio::time::timeout(limit, gate.check(ctx)).await {
        Ok(v) => v,
        Err(_) => GateVerdict::fail(format!("the check did not finish within {}", human(limit))),
    }
}

pub(crate) fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

fn failure(gate: &dyn Gate, verdict: GateVerdict) -> Option<GateFailure> {
    match verdict {
        GateVerdict::Pass { .. } => None,
        GateVerdict::Fail { reason, remedy } => Some(GateFailure {
            gate: gate.name().to_owned(),
            reason,
            remedy,
        }),
    }
}

/// Checks a gate before a step, polling within its wait budget if it has one.
pub(crate) async fn evaluate(
    gate: &dyn Gate,
    ctx: &GateContext,
    cancel: &Cancellation,
    emitter: &Emitter,
) -> GateOutcome {
    let budget = gate.wait(&ctx.state);
    let deadline = budget.map(|b| match b.deadline {
        Deadline::After(d) => Instant::now() + d,
        Deadline::At(t) => Instant::now() + (t - Utc::now()).to_std().unwrap_or(Duration::ZERO),
    });
    loop {
        let verdict = tokio::select! {
            v = check_once(gate, ctx) => v,
            () = cancel.cancelled() => return GateOutcome::Cancelled,
        };
        let fail = match verdict {
            GateVerdict::Pass { evidence } => return GateOutcome::Pass(evidence),
            GateVerdict::Fail { reason, remedy } => GateFailure {
                gate: gate.name().to_owned(),
                reason,
                remedy,
            },
        };
        let (Some(budget), Some(deadline)) = (budget, deadline) else {
            return GateOutcome::Fail(fail);
        };
        let now = Instant::now();
        if now >= deadline {
            return GateOutcome::Fail(GateFailure {
                reason: format!("{} (gave up waiting)", fail.reason),
                ..fail
            });
        }
        emitter.emit(Event::GateWaiting {
            step: ctx.step.clone(),
            gate: fail.gate,
            reason: fail.reason,
            remaining_ms: u64::try_from((deadline - now).as_millis()).unwrap_or(u64::MAX),
        });
        let wake = (now + budget.interval).min(deadline);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = cancel.cancelled() => return GateOutcome::Cancelled,
        }
    }
}

/// Re-checks watched gates while a step runs. Returns the first failure, after cancelling
/// `step_cancel`; never returns if there is nothing to watch or nothing fails.
pub(crate) async fn watch(
    gates: Vec<Arc<dyn Gate>>,
    ctx: GateContext,
    step_cancel: Cancellation,
) -> GateFailure {
    let mut watched: Vec<(Arc<dyn Gate>, Duration, Instant)> = gates
        .into_iter()
        .filter_map(|g| {
            let every = g.watch_interval()?;
            Some((g, every, Instant::now() + every))
        })
        .collect();
    if watched.is_empty() {
        return std::future::pending().await;
    }
    let ctx = GateContext {
        watching: true,
        ..ctx
    };
    loop {
        let next = watched
            .iter()
            .map(|w| w.2)
            .min()
            .unwrap_or_else(Instant::now);
        tokio::time::sleep_until(next).await;
        for w in &mut watched {
            if w.2 > Instant::now() {
                continue;
            }
            let verdict = check_once(w.0.as_ref(), &ctx).await;
            if let Some(f) = failure(w.0.as_ref(), verdict) {
                step_cancel.cancel(&format!("gate {} failed: {}", f.gate, f.reason));
                return f;
            }
            w.2 = Instant::now() + w.1;
        }
    }
}
