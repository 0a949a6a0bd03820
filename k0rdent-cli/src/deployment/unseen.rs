//! What an install phase that never completed makes of what it cannot see yet.

use k0rdent_core::Observation;
use k0rdent_core::state::{Status, StepRecord};

/// For a phase this deployment never completed, a node or API that cannot be seen yet means
/// "not installed yet" (its gates wait for first boot and the tunnel before it runs); once
/// completed, what cannot be seen is unknown and blocks.
pub fn not_yet_seen(record: Option<&StepRecord>, o: Observation) -> Observation {
    match o {
        Observation::Unknown { reason } if record.is_none_or(|r| r.status != Status::Completed) => {
            Observation::absent(format!("not installed yet ({reason})"))
        }
        other => other,
    }
}
