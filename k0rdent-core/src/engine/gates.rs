//! Running gates: one check under its timeout, waiting within a budget, watching a step.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use crate::cancel::Cancellation;
use crate::emit::Emitter;
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

/// Re-checks watched gates while a step runs, each on its own interval and concurrently (a slow
/// check never delays another's verdict), each check bounded by its gate's timeout. Returns
/// the first failure; never returns if there is nothing to watch or nothing fails.
pub(crate) async fn watch(gates: Vec<Arc<dyn Gate>>, ctx: GateContext) -> GateFailure {
    let ctx = GateContext {
        watching: true,
        ..ctx
    };
    let mut set = tokio::task::JoinSet::new();
    for gate in gates {
        let Some(every) = gate.watch_interval() else {
            continue;
        };
        let ctx = ctx.clone();
        set.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let verdict = check_once(gate.as_ref(), &ctx).await;
                if let Some(f) = failure(gate.as_ref(), verdict) {
                    return f;
                }
            }
        });
    }
    // Dropping the set (when the step finishes first) aborts the watchers.
    loop {
        match set.join_next().await {
            Some(Ok(f)) => return f,
            // A watcher panicked: its gate is not watched any more; the others go on.
            Some(Err(e)) => tracing::error!(error = %e, "a gate watcher failed"),
            None => return std::future::pending().await,
        }
    }
}

/// Groups `gates` by kind (name), kinds in the order they first appear, as indices into
/// `gates`. Kinds go in order — an earlier kind must pass before a later one is tried (the
/// tunnel before any SSH, each node's cloud-init before its WireGuard) — while the gates of
/// one kind (one per node) are checked concurrently, so fifty nodes' checks take about the
/// time of one.
pub(crate) fn runs(gates: &[Arc<dyn Gate>]) -> Vec<Vec<usize>> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, gate) in gates.iter().enumerate() {
        match out.iter_mut().find(|(name, _)| name == gate.name()) {
            Some((_, run)) => run.push(i),
            None => out.push((gate.name().to_owned(), vec![i])),
        }
    }
    out.into_iter().map(|(_, run)| run).collect()
}

/// `f` on every gate of `run` (indices into `gates`) concurrently; the results in the run's
/// order. A check that panicked fails its gate.
pub(crate) async fn concurrently<F, Fut>(
    gates: &[Arc<dyn Gate>],
    run: &[usize],
    f: F,
) -> Vec<GateOutcome>
where
    F: Fn(Arc<dyn Gate>) -> Fut,
    Fut: std::future::Future<Output = GateOutcome> + Send + 'static,
{
    let run: Vec<Arc<dyn Gate>> = run.iter().filter_map(|i| gates.get(*i).cloned()).collect();
    if let [gate] = run.as_slice() {
        return vec![f(gate.clone()).await];
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, gate) in run.iter().enumerate() {
        let fut = f(gate.clone());
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<GateOutcome>> = run.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, outcome)) = joined
            && let Some(slot) = out.get_mut(i)
        {
            *slot = Some(outcome);
        }
    }
    out.into_iter()
        .zip(&run)
        .map(|(o, gate)| {
            o.unwrap_or_else(|| {
                GateOutcome::Fail(GateFailure {
                    gate: gate.name().to_owned(),
                    reason: "the check panicked".to_owned(),
                    remedy: None,
                })
            })
        })
        .collect()
}
