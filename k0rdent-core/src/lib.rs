//! The resumable deployment engine behind `k0rdent`: observe → pure plan → apply.
//!
//! A deployment is a [`Pipeline`] of [`Step`]s. Before anything runs, [`Observer`]s gather
//! what reality looks like into one [`Snapshot`] (in bulk: a bounded number of calls per
//! provider), each step interprets it into an [`Observation`], and the pure [`plan()`](plan::plan)
//! function decides per step — `skip`, `run`, `resume`, `rerun`, `replace`, `blocked` or
//! `disabled` — from the recorded state, the observation and the step's input
//! [`Fingerprint`](fingerprint::Fingerprint). The [`Engine`] executes the plan in dependency
//! order, checks each step's [`Gate`](gate::Gate)s first, saves the state after every
//! transition through a [`StateStore`](store::StateStore), and re-plans after each step.
//!
//! Why resumption depends on this shape: a rerun after any interruption starts from the
//! same three inputs. Work that is recorded done *and* observed done with the same inputs is
//! skipped; work that was in progress resumes from its journal (written before every side
//! effect whose outcome could be lost); anything unknown blocks instead of being redone.
//! Downstream steps rerun only when an upstream step's recorded outputs change, so bringing
//! back a VPN tunnel never reinstalls a cluster.
//!
//! This crate does no network, SSH or process I/O; its only I/O is the [`FileStore`]'s files.
//!
//! The crate root holds what writing a step and running a pipeline takes, and [`Remedy`], the
//! user's next move that errors and blocked steps carry; the rest lives in the module named
//! after it: [`step`] (availability, retry policy, journal errors), [`plan`] (the planner and
//! its decisions), [`gate`], [`store`] (the state store, key store and event log traits),
//! [`event`], [`engine`] (the builder and reports), [`state`].
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use k0rdent_core::state::RunOutcome;
//! use k0rdent_core::{
//!     Engine, Evidence, MemoryStore, Observation, Outputs, Pipeline, Snapshot, Step,
//!     StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
//! };
//!
//! struct Hello(StepId);
//!
//! #[async_trait]
//! impl Step for Hello {
//!     fn id(&self) -> &StepId { &self.0 }
//!     fn observe(&self, _: &Snapshot, _: Option<&StepRecord>) -> Observation {
//!         Observation::Unobservable
//!     }
//!     async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
//!         ctx.write_journal("greeting", "hello").await?;
//!         Ok(StepOutcome::done(Outputs::new().with("said", "hello"), Evidence::new()))
//!     }
//!     async fn teardown(&self, _: &StepContext) -> Result<Teardown, StepError> {
//!         Ok(Teardown::nothing("saying hello leaves nothing behind"))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let pipeline = Pipeline::builder().step(Hello(StepId::parse("hello")?)).build()?;
//! // One store keeps the state, the keys and the event log here; `Engine::with_state_store`
//! // takes them from separate backends.
//! let store = MemoryStore::new();
//! let engine = Engine::builder(pipeline, Arc::new(store.clone())).build()?;
//! let report = engine.deploy().await?;
//! assert_eq!(report.outcome, RunOutcome::Succeeded);
//! // A second run skips the verified step.
//! let again = engine.deploy().await?;
//! assert!(again.steps.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![deny(missing_docs)]

mod availability;
pub mod cancel;
mod cell;
mod emit;
pub mod engine;
pub mod event;
mod evidence;
pub mod fingerprint;
pub mod gate;
pub mod id;
pub mod observation;
pub mod pipeline;
pub mod plan;
pub mod remedy;
pub mod role;
pub mod secret;
pub mod state;
pub mod step;
pub mod store;

// The names an embedder needs to write a step and an observer and run a pipeline. Everything
// else lives in the module named after it (`plan::`, `gate::`, `store::` …); the
// `root_exports` test keeps this list short.
pub use engine::Engine;
pub use id::StepId;
pub use observation::{Evidence, Observation, Observer, Snapshot};
pub use pipeline::Pipeline;
pub use remedy::Remedy;
pub use state::{Outputs, StepRecord};
pub use step::StepContext;
pub use step::{Step, StepError, StepOutcome, Teardown};
pub use store::{FileStore, MemoryStore};
