//! The run lock as a lease on the state blob itself: acquired with the holder's details as
//! metadata, renewed every third of its length by a background task, released when the lock
//! is dropped (by that task, not in `Drop`), broken by `state unlock --force`.
//!
//! # Guarantees
//! - A holder that cannot renew stops trusting its lease [`SAFETY_MARGIN`] before it could
//!   lapse: [`StoreLock::check`] fails from then on, and the run's cancellation (if given)
//!   is cancelled with the reason, so the run stops before anyone else can take over.
//! - Every save carries the lease id, so a writer whose lease was broken gets 412 from the
//!   service: the lease fences writes, whatever the holder believes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k0rdent_core::cancel::Cancellation;
use k0rdent_core::store::{LockHolder, StoreError, StoreLock};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long before its lease could lapse a holder that cannot renew gives up.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(5);

/// The lease this store holds, shared by the store (its saves send the id), the lock and the
/// renewal task.
#[derive(Default)]
pub(crate) struct LeaseCell {
    held: Mutex<Option<Held>>,
    /// Why the last lease was lost, kept after the lock is gone so the caller can report it.
    lost: Mutex<Option<String>>,
    cancel: Mutex<Option<Cancellation>>,
}

pub(crate) struct Held {
    pub(crate) id: String,
    pub(crate) holder: LockHolder,
    /// After this instant the lease may have lapsed (less the safety margin).
    pub(crate) trusted_until: Instant,
}

impl LeaseCell {
    pub(crate) fn set_cancellation(&self, c: Cancellation) {
        if let Ok(mut g) = self.cancel.lock() {
            *g = Some(c);
        }
    }

    pub(crate) fn start(&self, held: Held) {
        if let Ok(mut g) = self.held.lock() {
            *g = Some(held);
        }
        if let Ok(mut l) = self.lost.lock() {
            *l = None;
        }
    }

    /// The lease id and holder, if a lease is held and still trusted; `Err` if it was lost.
    pub(crate) fn current(
        &self,
        location: &str,
    ) -> Result<Option<(String, LockHolder)>, StoreError> {
        if let Some(reason) = self.lost_reason() {
            return Err(lost(location, &reason));
        }
        let g = self
            .held
            .lock()
            .map_err(|_| lost(location, "internal lock poisoned"))?;
        match g.as_ref() {
            None => Ok(None),
            Some(h) if Instant::now() >= h.trusted_until => {
                drop(g);
                let reason = "its lease could not be renewed in time".to_owned();
                self.lose(&reason);
                Err(lost(location, &reason))
            }
            Some(h) => Ok(Some((h.id.clone(), h.holder.clone()))),
        }
    }

    pub(crate) fn renewed(&self, sent: Instant, length: Duration) {
        if let Ok(mut g) = self.held.lock()
            && let Some(h) = g.as_mut()
        {
            h.trusted_until = sent + length.saturating_sub(SAFETY_MARGIN);
        }
    }

    pub(crate) fn trusted_until(&self) -> Option<Instant> {
        self.held
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|h| h.trusted_until))
    }

    /// Marks the lease lost and cancels the run.
    pub(crate) fn lose(&self, reason: &str) {
        if let Ok(mut g) = self.held.lock() {
            *g = None;
        }
        if let Ok(mut l) = self.lost.lock() {
            if l.is_some() {
                return;
            }
            *l = Some(reason.to_owned());
        }
        tracing::info!(reason, "the state lease was lost; stopping the run");
        if let Ok(c) = self.cancel.lock()
            && let Some(c) = c.as_ref()
        {
            c.cancel(&format!("the state lease was lost: {reason}"));
        }
    }

    pub(crate) fn clear(&self) -> Option<String> {
        self.held
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .map(|h| h.id)
    }

    pub(crate) fn lost_reason(&self) -> Option<String> {
        self.lost.lock().ok().and_then(|l| l.clone())
    }
}

pub(crate) fn lost(location: &str, reason: &str) -> StoreError {
    StoreError::LockLost {
        location: location.to_owned(),
        detail: reason.to_owned(),
    }
}

/// The held lock. Dropping it asks the renewal task to release the lease.
pub(crate) struct BlobLock {
    pub(crate) cell: Arc<LeaseCell>,
    pub(crate) location: String,
    pub(crate) stop: Option<oneshot::Sender<()>>,
}

impl StoreLock for BlobLock {
    fn check(&self) -> Result<(), StoreError> {
        match self.cell.current(&self.location)? {
            Some(_) => Ok(()),
            None => Err(lost(&self.location, "the lease is no longer held")),
        }
    }
}

impl Drop for BlobLock {
    fn drop(&mut self) {
        // Only a signal: the renewal task releases the lease over the network.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Metadata names (C# identifiers, as Azure requires) of the holder's details.
pub(crate) const META: [&str; 6] = [
    "k0rdent_user",
    "k0rdent_host",
    "k0rdent_pid",
    "k0rdent_command",
    "k0rdent_run",
    "k0rdent_started",
];

fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The holder's details as `x-ms-meta-*` headers (Put Blob replaces metadata, so every save
/// sends them).
pub(crate) fn holder_headers(h: &LockHolder) -> Vec<(String, String)> {
    let values = [
        h.user.clone().unwrap_or_default(),
        h.host.clone(),
        h.pid.to_string(),
        h.command.clone(),
        h.run_id.to_string(),
        h.since.to_rfc3339(),
    ];
    META.iter()
        .zip(values)
        .map(|(k, v)| (format!("x-ms-meta-{k}"), header_safe(&v)))
        .collect()
}

/// The holder named by a blob's metadata headers, if they name one.
pub(crate) fn holder_from(headers: &reqwest::header::HeaderMap) -> Option<LockHolder> {
    let get = |k: &str| {
        headers
            .get(format!("x-ms-meta-{k}"))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let host = get(META[1])?;
    Some(LockHolder {
        user: get(META[0]).filter(|u| !u.is_empty()),
        host,
        pid: get(META[2]).and_then(|p| p.parse().ok()).unwrap_or(0),
        command: get(META[3]).unwrap_or_else(|| "unknown".into()),
        run_id: k0rdent_core::id::RunId::from_string(get(META[4]).unwrap_or_default()),
        since: get(META[5])
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
            .map_or_else(chrono::Utc::now, |d| d.with_timezone(&chrono::Utc)),
    })
}
