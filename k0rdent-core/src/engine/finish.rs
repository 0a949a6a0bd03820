//! How a run ends: its outcome goes into the state's run record first, then out as the
//! run's last event, so a crash between the two leaves the record, which the next run reads.

use chrono::Utc;

use super::EngineError;
use crate::cell::StateCell;
use crate::emit::Emitter;
use crate::event::Event;
use crate::id::RunId;
use crate::state::RunOutcome;

/// Records `outcome` on the run `run_id` and emits `RunFinished`; if the state cannot be
/// written, the events so far are flushed and the store's error returned.
pub(super) async fn record_run_end(
    cell: &StateCell,
    emitter: &Emitter,
    run_id: &RunId,
    outcome: RunOutcome,
    duration_ms: u64,
) -> Result<(), EngineError> {
    let rid = run_id.clone();
    let recorded = cell
        .update(move |s| {
            if let Some(run) = s.run.as_mut().filter(|r| r.id == rid) {
                run.finished_at = Some(Utc::now());
                run.outcome = Some(outcome);
            }
        })
        .await;
    if let Err(e) = recorded {
        emitter.flush().await;
        return Err(e.into());
    }
    emitter.emit(Event::RunFinished {
        run_id: run_id.clone(),
        outcome,
        duration_ms,
    });
    Ok(())
}
