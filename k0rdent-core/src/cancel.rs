//! Cooperative cancellation with parent → child propagation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
    reason: Mutex<Option<String>>,
    children: Mutex<Vec<Weak<Inner>>>,
    /// The second stage (second Ctrl-C): the process is about to exit. Shared by a flag and
    /// all its children.
    escalation: Arc<Escalation>,
}

#[derive(Default)]
struct Escalation {
    raised: AtomicBool,
    notify: Notify,
    /// Holders of buffered work that still have to write it out after an escalation.
    flushers: std::sync::atomic::AtomicUsize,
    flushed: Notify,
}

/// Held by something that buffers work which must be written out before the process exits
/// (the event log writer). Dropping it says "written".
#[derive(Debug)]
pub(crate) struct FlushToken(Arc<Escalation>);

impl Drop for FlushToken {
    fn drop(&mut self) {
        self.0.flushers.fetch_sub(1, Ordering::SeqCst);
        self.0.flushed.notify_waiters();
    }
}

impl std::fmt::Debug for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Escalation")
            .field("raised", &self.raised.load(Ordering::SeqCst))
            .finish()
    }
}

impl Inner {
    fn cancel(&self, reason: &str) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut r) = self.reason.lock() {
            *r = Some(reason.to_owned());
        }
        self.notify.notify_waiters();
        let children = match self.children.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(_) => Vec::new(),
        };
        for child in children.iter().filter_map(Weak::upgrade) {
            child.cancel(reason);
        }
    }
}

/// A cancellation flag that steps check at their safe points.
///
/// The engine owns one per run (the first Ctrl-C cancels it) and derives one per running step
/// with [`Cancellation::child`] (a failing watched gate cancels only that step).
#[derive(Clone, Default)]
pub struct Cancellation {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl Cancellation {
    /// A new, uncancelled flag.
    pub fn new() -> Self {
        Cancellation::default()
    }

    /// A flag that is cancelled when `self` is (and can be cancelled on its own).
    pub fn child(&self) -> Cancellation {
        let child = Cancellation {
            inner: Arc::new(Inner {
                escalation: self.inner.escalation.clone(),
                ..Inner::default()
            }),
        };
        if self.is_cancelled() {
            child.cancel(&self.reason().unwrap_or_default());
        } else if let Ok(mut c) = self.inner.children.lock() {
            c.retain(|w| w.strong_count() > 0);
            c.push(Arc::downgrade(&child.inner));
        }
        child
    }

    /// Cancels this flag and its children, recording why.
    pub fn cancel(&self, reason: &str) {
        self.inner.cancel(reason);
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Why it was cancelled.
    pub fn reason(&self) -> Option<String> {
        self.inner.reason.lock().ok().and_then(|r| r.clone())
    }

    /// The second stage: the process exits right after this (second Ctrl-C). Cancels too.
    /// Whatever holds buffered work that must not be lost (the event log) writes it out now,
    /// best effort; nothing waits for steps any more.
    pub fn escalate(&self) {
        self.cancel("interrupted twice");
        self.inner.escalation.raised.store(true, Ordering::SeqCst);
        self.inner.escalation.notify.notify_waiters();
    }

    /// Whether [`escalate`](Cancellation::escalate) was called on this flag or a relative.
    pub fn is_escalated(&self) -> bool {
        self.inner.escalation.raised.load(Ordering::SeqCst)
    }

    /// Completes once this flag or a relative is escalated; at once if it already is.
    pub async fn escalated(&self) {
        loop {
            let notified = self.inner.escalation.notify.notified();
            if self.is_escalated() {
                return;
            }
            notified.await;
        }
    }

    /// Completes once everything that buffers work for this flag's family (the event log
    /// writer) has written it out. After [`escalate`](Cancellation::escalate), a caller about
    /// to exit waits for this, bounded by a short timeout.
    pub async fn flushed(&self) {
        let e = &self.inner.escalation;
        loop {
            let notified = e.flushed.notified();
            if e.flushers.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn flush_token(&self) -> FlushToken {
        let e = self.inner.escalation.clone();
        e.flushers.fetch_add(1, Ordering::SeqCst);
        FlushToken(e)
    }

    /// Completes once this flag or an ancestor is cancelled; at once if it already is.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancelling_a_parent_cancels_children_but_not_the_reverse() {
        let run = Cancellation::new();
        let a = run.child();
        let b = run.child();
        a.cancel("gate vpn_up failed");
        assert!(a.is_cancelled() && !b.is_cancelled() && !run.is_cancelled());
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.cancelled().await }
        });
        run.cancel("interrupted");
        waiter.await.unwrap();
        assert_eq!(b.reason().as_deref(), Some("interrupted"));
        assert_eq!(a.reason().as_deref(), Some("gate vpn_up failed"));
        assert!(run.child().is_cancelled());
    }
}
