//! The resumable deployment engine behind `k0rdent`: observe → pure plan → apply.
//!
//! A deployment is a [`Pipeline`] of [`Step`]s. Before anything runs, [`Observer`]s gather
//! what reality looks like into one [`Snapshot`] (in bulk: a bounded number of calls per
//! provider), each step interprets it into an [`Observation`], and the pure [`plan()`]
//! function decides per step — `skip`, `run`, `resume`, `rerun`, `replace`, `blocked` or
//! `disabled` — from the recorded state, the observation and the step's input
//! [`Fingerprint`]. The [`Engine`] executes the plan in dependency order, checks each step's
//! [`Gate`]s first, saves the state after every transition through a [`StateStore`], and
//! re-plans after each step.
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
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use k0rdent_core::*;
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

mod cancel;
mod cell;
mod emit;
mod enablement;
mod engine;
mod event;
mod evidence;
mod fingerprint;
mod gate;
mod id;
mod observation;
mod pipeline;
pub mod plan;
pub mod role;
mod secret;
pub mod state;
mod step;
pub mod store;

pub use cancel::Cancellation;
pub use enablement::Enablement;
pub use engine::{
    ConfigError, DEFAULT_STEP_TIMEOUT, DEFAULT_STOP_GRACE, Engine, EngineBuilder, EngineError,
    PlanReport, RefreshReport, ResetReport, RunReport, StepReport, StepResult,
};
pub use event::{Event, EventRecord, EventSink, FanOut, NullSink, RecordingSink};
pub use evidence::Evidence;
pub use fingerprint::{Digest, Fingerprint, FingerprintBuilder};
pub use gate::{Deadline, FnGate, Gate, GateContext, GateFailure, GateVerdict, WaitBudget};
pub use id::{IdError, RunId, StepId};
pub use observation::{Change, Facts, Observation, ObserveError, Observer, Snapshot};
pub use pipeline::{Pipeline, PipelineBuilder};
pub use plan::{Decision, ObservedKind, Plan, PlanEntry, Reason, plan};
pub use secret::Secret;
pub use state::{DeploymentState, Outputs, RunOutcome, Status, StepRecord};
pub use step::{
    ErrorKind, RetryPolicy, Step, StepContext, StepError, StepInputs, StepOutcome, StopGuard,
    Teardown,
};
pub use store::{FileStore, MemoryStore, StateStore, StoreError};
