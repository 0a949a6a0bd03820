//! Moving a deployment from one store to another (`k0rdent state migrate`).
//!
//! Expected flow, each step a method so a caller can report between them:
//!
//! 1. [`Transfer::begin`] takes the source's lock, then the destination's, loads the source's
//!    state and checks the destination: empty, a pointer back to the source (moving back), or
//!    already holding this very state (a rerun after an interrupted move).
//! 2. [`Transfer::copy`] appends the events the destination's log lacks, writes the state
//!    there as it is (same generation), reads both back and compares them.
//! 3. [`Transfer::switch`] replaces the source's state with a [`StatePointer`] to the
//!    destination: the last write.
//!
//! # Guarantees
//! - Until the pointer is written the source is authoritative (commands that open it find
//!   the state); from then on the destination is. A move interrupted at any instant leaves
//!   one of the two, never both or neither, and running it again finishes it.
//! - Both locks are held from [`Transfer::begin`] until the [`Transfer`] is dropped, so no run
//!   changes either side meanwhile.
//! - Nothing in the destination is overwritten except an empty state, a pointer, or an
//!   identical copy; an event log that is not a prefix of the source's is refused.
//!
//! # Assumptions
//! - The stores implement [`StateStore::save_copy`] and [`StateStore::save_pointer`].
//! - Private keys are not moved: they live in a [`KeyStore`](super::KeyStore) of their own.

use std::borrow::Cow;

use super::{EventLog, History, LockHolder, StateStore, StoreError, StoreLock};
use crate::remedy::Remedy;
use crate::state::{DeploymentState, MovedTo, StatePointer};

/// One side of a move.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    /// Where its state and lock are.
    pub state: &'a dyn StateStore,
    /// Where its event log is.
    pub events: &'a dyn EventLog,
    /// How a pointer names it.
    pub named: &'a MovedTo,
}

/// Why a move stopped. Before [`Transfer::switch`] succeeds the source is still
/// authoritative.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A store failed (including a lock held by another run).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The source has no deployment to move.
    #[error("{location} holds no deployment to move")]
    NoDeployment {
        #[allow(missing_docs)]
        location: String,
    },
    /// The destination holds a deployment that is not this one.
    #[error(
        "{location} already holds a deployment (cluster {cluster}, generation {generation}); nothing was changed"
    )]
    DestinationHolds {
        #[allow(missing_docs)]
        location: String,
        #[allow(missing_docs)]
        cluster: String,
        #[allow(missing_docs)]
        generation: u64,
    },
    /// The destination holds a pointer to a third place.
    #[error("{location} holds a pointer to {to}, not to the source; nothing was changed")]
    DestinationPoints {
        #[allow(missing_docs)]
        location: String,
        /// Where that pointer leads.
        to: String,
    },
    /// The destination's event log is not a prefix of the source's.
    #[error(
        "{location} has an event log that is not this deployment's (event {index} differs); nothing was changed"
    )]
    ForeignEvents {
        #[allow(missing_docs)]
        location: String,
        /// The first event (0-based) that differs.
        index: usize,
    },
    /// The copy read back differs from the source.
    #[error(
        "{location}: the copy does not read back as written ({detail}); the source is unchanged"
    )]
    Verify {
        #[allow(missing_docs)]
        location: String,
        #[allow(missing_docs)]
        detail: String,
    },
}

impl Remedy for TransferError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            TransferError::Store(e) => return e.remedy(),
            TransferError::NoDeployment { .. } => {
                "check --state/--state-dir: `k0rdent state show` prints what is there".into()
            }
            TransferError::DestinationHolds { .. } => "move to an empty destination (another \
                 path or directory), or if that deployment is gone for good, archive it first \
                 (`k0rdent reset` against it) or move its files away"
                .into(),
            TransferError::DestinationPoints { .. } | TransferError::ForeignEvents { .. } => {
                "move to an empty destination (another path or directory)".into()
            }
            TransferError::Verify { .. } => {
                "run `k0rdent state migrate` again; the source stays in use until it succeeds"
                    .into()
            }
        })
    }
}

/// What a move copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The deployment's cluster id.
    pub cluster_id: Option<String>,
    /// The state's generation (the same on both sides).
    pub generation: u64,
    /// Events in the log (on both sides).
    pub events: usize,
    /// Of those, appended by this move (the rest were there from an interrupted move, or
    /// from before an earlier move out of the destination).
    pub events_appended: usize,
    /// Whether the destination held this state already (an interrupted move is finished).
    pub resumed: bool,
}

/// A move in progress, holding both locks.
pub struct Transfer<'a> {
    source: Side<'a>,
    dest: Side<'a>,
    state: DeploymentState,
    resumed: bool,
    // Dropped last: both locks are held for the whole move.
    _locks: [Box<dyn StoreLock>; 2],
}

impl<'a> Transfer<'a> {
    /// Locks both sides (the source first) and checks them.
    ///
    /// # Errors
    /// [`StoreError::Locked`] (naming the holder) when a run holds either lock;
    /// [`TransferError::NoDeployment`], [`TransferError::DestinationHolds`],
    /// [`TransferError::DestinationPoints`]; the stores' errors.
    pub async fn begin(
        source: Side<'a>,
        dest: Side<'a>,
        holder: &LockHolder,
    ) -> Result<Transfer<'a>, TransferError> {
        let source_lock = source.state.lock(holder).await?;
        let Some(state) = source.state.load().await? else {
            return Err(TransferError::NoDeployment {
                location: source.state.location(),
            });
        };
        let dest_lock = dest.state.lock(holder).await?;
        let resumed = match dest.state.load().await {
            Ok(None) => false,
            Ok(Some(there)) if there == state => true,
            Ok(Some(there)) => {
                return Err(TransferError::DestinationHolds {
                    location: dest.state.location(),
                    cluster: there.cluster_id.unwrap_or_else(|| "unnamed".into()),
                    generation: there.generation,
                });
            }
            Err(StoreError::Moved { pointer, .. }) if pointer.moved_to == *source.named => false,
            Err(StoreError::Moved { location, pointer }) => {
                return Err(TransferError::DestinationPoints {
                    location,
                    to: pointer.moved_to.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Transfer {
            source,
            dest,
            state,
            resumed,
            _locks: [source_lock, dest_lock],
        })
    }

    /// The state being moved.
    pub fn state(&self) -> &DeploymentState {
        &self.state
    }

    /// Copies the event log and the state, then reads both back and compares.
    ///
    /// # Errors
    /// [`TransferError::ForeignEvents`], [`TransferError::Verify`]; the stores' errors.
    pub async fn copy(&self) -> Result<Copied, TransferError> {
        let from = self.source.events.history().await?;
        let there = self.dest.events.history().await?;
        let have = self.common_prefix(&from, &there)?;
        for record in &from.events[have..] {
            self.dest.events.append_event(record).await?;
        }
        self.dest.events.flush_events().await?;
        self.dest.state.save_copy(&self.state).await?;
        // Read back: the same document (generation and cluster id included) and the whole log.
        let location = self.dest.state.location();
        let verify = |detail: String| TransferError::Verify {
            location: location.clone(),
            detail,
        };
        match self.dest.state.load().await? {
            Some(back) if back == self.state => {}
            Some(back) => {
                return Err(verify(format!(
                    "generation {} of cluster {} reads back as generation {} of cluster {}",
                    self.state.generation,
                    self.state.cluster_id.as_deref().unwrap_or("unnamed"),
                    back.generation,
                    back.cluster_id.as_deref().unwrap_or("unnamed"),
                )));
            }
            None => return Err(verify("no state reads back".into())),
        }
        let back = self.dest.events.history().await?;
        if back.events != from.events {
            return Err(verify(format!(
                "{} events written, {} read back",
                from.events.len(),
                back.events.len()
            )));
        }
        Ok(Copied {
            cluster_id: self.state.cluster_id.clone(),
            generation: self.state.generation,
            events: from.events.len(),
            events_appended: from.events.len() - have,
            resumed: self.resumed,
        })
    }

    fn common_prefix(&self, from: &History, there: &History) -> Result<usize, TransferError> {
        match there
            .events
            .iter()
            .enumerate()
            .find(|(i, e)| from.events.get(*i) != Some(e))
        {
            Some((index, _)) => Err(TransferError::ForeignEvents {
                location: self.dest.state.location(),
                index,
            }),
            None => Ok(there.events.len()),
        }
    }

    /// Leaves the pointer to the destination in the source: from now on the destination is
    /// the deployment's store. Call it after [`Transfer::copy`] succeeded.
    ///
    /// # Errors
    /// The source store's errors (then the source is still authoritative).
    pub async fn switch(self) -> Result<StatePointer, TransferError> {
        let pointer = StatePointer::new(
            self.dest.named.clone(),
            self.state.cluster_id.clone(),
            self.state.generation,
        );
        self.source
            .state
            .save_pointer(&pointer, self.state.generation)
            .await?;
        Ok(pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileStore;
    use crate::event::{Event, EventRecord};
    use crate::id::RunId;
    use crate::state::{ParseError, parse_state};

    fn deployed(dir: &std::path::Path) -> FileStore {
        let store = FileStore::new(dir);
        let mut state = DeploymentState {
            cluster_id: Some("k0rdent-t1".into()),
            ..DeploymentState::default()
        };
        store.save_sync(&mut state).unwrap();
        store.save_sync(&mut state).unwrap();
        store
    }

    fn side<'a>(s: &'a FileStore, named: &'a MovedTo) -> Side<'a> {
        Side {
            state: s,
            events: s,
            named,
        }
    }

    fn named(dir: &std::path::Path) -> MovedTo {
        MovedTo::Directory {
            host: "here".into(),
            path: dir.to_path_buf(),
        }
    }

    #[tokio::test]
    async fn a_move_copies_state_and_events_then_points_and_a_rerun_after_the_copy_finishes_it() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = deployed(a.path());
        let run_id = RunId::generate();
        let record = EventRecord {
            at: chrono::Utc::now(),
            run_id: run_id.clone(),
            event: Event::PreviousRunDied { run_id, pid: 7 },
        };
        from.append_event(&record).await.unwrap();
        let to = FileStore::new(b.path());
        let (na, nb) = (named(a.path()), named(b.path()));
        let (from, to) = (&from, &to);
        let holder = LockHolder::current(RunId::generate(), "state migrate");

        // Interrupted after the copy: the source still holds the state.
        let t = Transfer::begin(side(from, &na), side(to, &nb), &holder)
            .await
            .unwrap();
        let copied = t.copy().await.unwrap();
        assert_eq!((copied.generation, copied.events), (2, 1));
        drop(t);
        assert_eq!(from.load().await.unwrap().unwrap().generation, 2);

        // The rerun finds the copy, appends nothing twice and switches.
        let t = Transfer::begin(side(from, &na), side(to, &nb), &holder)
            .await
            .unwrap();
        let copied = t.copy().await.unwrap();
        assert!(copied.resumed);
        assert_eq!(copied.events_appended, 0);
        let pointer = t.switch().await.unwrap();
        assert!(matches!(
            from.load().await,
            Err(StoreError::Moved { pointer: p, .. }) if *p == pointer
        ));
        let bytes = std::fs::read(from.state_path()).unwrap();
        assert!(matches!(parse_state(&bytes), Err(ParseError::Moved(_))));
        assert_eq!(to.history().await.unwrap().events, vec![record]);

        // Back again: the pointer to b is replaced; a third store is refused.
        let t = Transfer::begin(side(to, &nb), side(from, &na), &holder)
            .await
            .unwrap();
        t.copy().await.unwrap();
        t.switch().await.unwrap();
        let c = tempfile::tempdir().unwrap();
        let third = &deployed(c.path());
        let nc = named(c.path());
        let refused = Transfer::begin(side(from, &na), side(third, &nc), &holder).await;
        assert!(matches!(
            refused,
            Err(TransferError::DestinationHolds { generation: 2, .. })
        ));
        let refused = Transfer::begin(side(third, &nc), side(to, &nb), &holder).await;
        assert!(
            matches!(refused, Err(TransferError::DestinationPoints { .. })),
            "b points to a, not to c"
        );
    }
}
