//! Fans events out to the caller's sink and, in the background, to the event log.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use crate::cancel::Cancellation;
use crate::event::{Event, EventRecord, EventSink};
use crate::id::RunId;
use crate::store::EventLog;

enum Msg {
    Record(Box<EventRecord>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct Emitter {
    sink: Arc<dyn EventSink>,
    tx: Option<mpsc::UnboundedSender<Msg>>,
    run_id: RunId,
}

impl Emitter {
    /// An emitter that also persists events in `log` (written by a background task, so a
    /// slow log never delays a step).
    ///
    /// When `cancel` is escalated (second Ctrl-C: the process is about to exit), what is
    /// queued is written out at once and the writer says so through [`Cancellation::flushed`].
    pub(crate) fn persistent(
        sink: Arc<dyn EventSink>,
        log: Arc<dyn EventLog>,
        run_id: RunId,
        cancel: &Cancellation,
    ) -> Emitter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let token = cancel.flush_token();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _token = token;
            loop {
                let msg = tokio::select! {
                    biased;
                    m = rx.recv() => m,
                    () = cancel.escalated() => {
                        // Write what is queued, then stop: the process exits.
                        while let Ok(msg) = rx.try_recv() {
                            if let Msg::Record(rec) = msg {
                                let _ = log.append_event(&rec).await;
                            }
                        }
                        let _ = log.flush_events().await;
                        break;
                    }
                };
                match msg {
                    Some(Msg::Record(rec)) => {
                        if let Err(e) = log.append_event(&rec).await {
                            tracing::warn!(error = %e, "could not append to the event log");
                        }
                    }
                    Some(Msg::Flush(ack)) => {
                        if let Err(e) = log.flush_events().await {
                            tracing::warn!(error = %e, "could not flush the event log");
                        }
                        let _ = ack.send(());
                    }
                    None => break,
                }
            }
        });
        Emitter {
            sink,
            tx: Some(tx),
            run_id,
        }
    }

    /// An emitter that only forwards to `sink` (lock-free commands such as `plan`).
    pub(crate) fn transient(sink: Arc<dyn EventSink>, run_id: RunId) -> Emitter {
        Emitter {
            sink,
            tx: None,
            run_id,
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        self.sink.emit(&event);
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Record(Box::new(EventRecord {
                at: Utc::now(),
                run_id: self.run_id.clone(),
                event,
            })));
        }
    }

    pub(crate) fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Waits (at most 2 s) until everything emitted so far is in the log.
    pub(crate) async fn flush(&self) {
        let Some(tx) = &self.tx else {
            return;
        };
        let (ack, done) = oneshot::channel();
        if tx.send(Msg::Flush(ack)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
        }
    }
}
