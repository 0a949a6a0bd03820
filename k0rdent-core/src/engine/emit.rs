//! Fans events out to the caller's sink and, in the background, to the store's event log.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use crate::event::{Event, EventRecord, EventSink};
use crate::id::RunId;
use crate::store::StateStore;

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
    /// An emitter that also persists events in `store`'s log (written by a background task,
    /// so a slow log never delays a step).
    pub(crate) fn persistent(
        sink: Arc<dyn EventSink>,
        store: Arc<dyn StateStore>,
        run_id: RunId,
    ) -> Emitter {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Record(rec) => {
                        if let Err(e) = store.append_event(&rec).await {
                            tracing::warn!(error = %e, "could not append to the event log");
                        }
                    }
                    Msg::Flush(ack) => {
                        let _ = ack.send(());
                    }
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
