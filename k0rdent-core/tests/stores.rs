//! The engine takes the state, the keys and the event log from separate stores: each goes
//! where it was told, a missing key store is named, and a reset empties the key store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k0rdent_core::state::RunOutcome;
use k0rdent_core::store::{EventLog, KeyStore, StoreError};
use k0rdent_core::{
    Engine, Evidence, MemoryStore, Observation, Outputs, Pipeline, Remedy, Snapshot, Step,
    StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
};

/// Stores a key, reads it back, and remembers the key store's error if there was one.
struct KeyMaker {
    id: StepId,
    error: Arc<Mutex<Option<String>>>,
}

#[async_trait]
impl Step for KeyMaker {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn observe(&self, _: &Snapshot, _: Option<&StepRecord>) -> Observation {
        Observation::Unobservable
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        let stored = async {
            ctx.keys().put_secret("hello.key", b"private").await?;
            ctx.keys().get_secret("hello.key").await
        }
        .await;
        match stored {
            Ok(Some(k)) => {
                assert_eq!(k.expose(), b"private");
                Ok(StepOutcome::done(Outputs::new(), Evidence::new()))
            }
            Ok(None) => Err(StepError::permanent("the key was not kept")),
            Err(e) => {
                *self.error.lock().unwrap() = Some(e.to_string());
                Err(StepError::permanent(e.to_string()).with_source(e))
            }
        }
    }

    async fn teardown(&self, _: &StepContext) -> Result<Teardown, StepError> {
        Ok(Teardown::Done)
    }
}

fn pipeline(error: &Arc<Mutex<Option<String>>>) -> Pipeline {
    Pipeline::builder()
        .step(KeyMaker {
            id: StepId::parse("make_key").unwrap(),
            error: error.clone(),
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn keys_and_events_go_to_the_stores_they_were_given() {
    let (state, keys, log) = (MemoryStore::new(), MemoryStore::new(), MemoryStore::new());
    let error = Arc::default();
    let engine = Engine::with_state_store(pipeline(&error), Arc::new(state.clone()))
        .keys(Arc::new(keys.clone()))
        .event_log(Arc::new(log.clone()))
        .build()
        .unwrap();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{:?}", error);
    assert!(keys.get_secret("hello.key").await.unwrap().is_some());
    assert!(state.get_secret("hello.key").await.unwrap().is_none());
    assert!(!log.history().await.unwrap().events.is_empty());
    assert!(state.history().await.unwrap().events.is_empty());
    assert!(state.state().is_some());

    let reset = engine.reset().await.unwrap();
    assert_eq!(reset.outcome, RunOutcome::Succeeded);
    assert!(keys.get_secret("hello.key").await.unwrap().is_none());
}

#[tokio::test]
async fn without_a_key_store_a_step_asking_for_a_key_is_told_so() {
    let state = MemoryStore::new();
    let error = Arc::default();
    let engine = Engine::with_state_store(pipeline(&error), Arc::new(state.clone()))
        .build()
        .unwrap();
    let report = engine.deploy().await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert_eq!(
        error.lock().unwrap().as_deref(),
        Some("cannot store key hello.key: this engine has no key store")
    );
    let e = StoreError::NoKeyStore {
        action: "read",
        name: "x.key".into(),
    };
    assert!(e.remedy().unwrap().contains("EngineBuilder::keys"));
}
