#![allow(clippy::unwrap_used, clippy::expect_used)]
//! One contract for every state store, run against the file store and against the blob store
//! on a real Azurite (one instance for this test binary, a fresh container per test). What
//! only one backend does (file modes, leases breaking under a writer) is tested apart.

use std::sync::OnceLock;

use async_trait::async_trait;
use chrono::Utc;
use k0rdent_azure::blob::{BlobAccess, BlobStore, StateUrl};
use k0rdent_core::event::{Event, EventRecord};
use k0rdent_core::id::RunId;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::{EventLog, LockHolder, StateStore, StoreError};
use k0rdent_core::{FileStore, StepId};
use k0rdent_testkit::azurite::{self, Azurite};

/// A backend: opens stores on one fresh location, each open a new instance (as another
/// process would).
#[async_trait]
trait Backend: Send + Sync {
    type S: StateStore + EventLog + Clone + 'static;
    fn open(&self) -> Self::S;
    /// Waits for background work (a released lock's lease) to finish.
    async fn settle(&self, s: &Self::S);
}

struct Files(tempfile::TempDir);

#[async_trait]
impl Backend for Files {
    type S = FileStore;
    fn open(&self) -> FileStore {
        FileStore::new(self.0.path()).with_backups(3)
    }
    async fn settle(&self, _: &FileStore) {}
}

pub(crate) fn azurite() -> &'static Azurite {
    static A: OnceLock<Azurite> = OnceLock::new();
    A.get_or_init(Azurite::start)
}

struct Blobs {
    url: String,
    connection: String,
}

impl Blobs {
    fn new(tag: &str) -> Self {
        let a = azurite();
        Blobs {
            url: format!(
                "azblob://{}/{}/deploy/prod?lease=15",
                azurite::ACCOUNT,
                azurite::fresh_container(tag)
            ),
            connection: a.connection_string(),
        }
    }
}

#[async_trait]
impl Backend for Blobs {
    type S = BlobStore;
    fn open(&self) -> BlobStore {
        let url: StateUrl = self.url.parse().unwrap();
        let cs = self.connection.clone();
        let access = BlobAccess::from_lookup(&url.account, move |k| {
            (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone())
        })
        .unwrap();
        BlobStore::builder(url, access)
            .backups(3)
            .event_batch(4)
            .event_blocks_per_blob(5)
            .build()
            .unwrap()
    }
    async fn settle(&self, s: &BlobStore) {
        s.close().await;
    }
}

fn holder(cmd: &str) -> LockHolder {
    LockHolder::current(RunId::generate(), cmd)
}

fn record(n: u32) -> EventRecord {
    EventRecord {
        at: Utc::now(),
        run_id: RunId::from_string("r1"),
        event: Event::StepProgress {
            step: StepId::parse("setup_network").unwrap(),
            message: format!("event {n}"),
        },
    }
}

async fn saves_are_compare_and_swap(b: &impl Backend) {
    let a = b.open();
    assert!(a.load().await.unwrap().is_none());
    let mut s = DeploymentState {
        cluster_id: Some("c1".into()),
        ..DeploymentState::default()
    };
    a.save(&mut s).await.unwrap();
    assert_eq!(s.generation, 1);
    let other = b.open();
    let mut theirs = other.load().await.unwrap().unwrap();
    assert_eq!(theirs.cluster_id.as_deref(), Some("c1"));
    a.save(&mut s).await.unwrap();
    assert_eq!(s.generation, 2);
    let e = other.save(&mut theirs).await.unwrap_err();
    assert!(matches!(e, StoreError::Conflict { .. }), "{e}");
    assert_eq!(theirs.generation, 1, "a failed save leaves the generation");
    let fresh = b.open().load().await.unwrap().unwrap();
    assert_eq!(fresh.generation, 2);
    for _ in 0..5 {
        a.save(&mut s).await.unwrap();
    }
    assert_eq!(b.open().load().await.unwrap().unwrap().generation, 7);
}

async fn one_holder_at_a_time_and_it_is_named(b: &impl Backend) {
    let a = b.open();
    let lock = a.lock(&holder("deploy")).await.unwrap();
    lock.check().unwrap();
    let other = b.open();
    let e = other.lock(&holder("reset")).await.err().unwrap();
    match &e {
        StoreError::Locked {
            holder: Some(h), ..
        } => {
            assert_eq!(h.command, "deploy");
            assert_eq!(h.pid, std::process::id());
        }
        e => panic!("expected Locked with a holder, got {e}"),
    }
    assert!(e.to_string().contains("`deploy`"), "{e}");
    // Readers never need the lock.
    let h = other.lock_holder().await.unwrap().unwrap();
    assert_eq!(h.command, "deploy");
    assert!(other.load().await.unwrap().is_none());
    other.history().await.unwrap();
    // The holder saves under its lock.
    a.load().await.unwrap();
    let mut s = DeploymentState::default();
    a.save(&mut s).await.unwrap();
    drop(lock);
    b.settle(&a).await;
    assert!(other.lock_holder().await.unwrap().is_none());
    let lock = other.lock(&holder("reset")).await.unwrap();
    lock.check().unwrap();
    drop(lock);
    b.settle(&other).await;
}

async fn a_forced_unlock_names_the_holder_and_frees_the_state(b: &impl Backend) {
    let a = b.open();
    let lock = a.lock(&holder("deploy")).await.unwrap();
    let other = b.open();
    let broken = other.force_unlock().await.unwrap().unwrap();
    assert_eq!(broken.command, "deploy");
    let mine = other.lock(&holder("reset")).await.unwrap();
    mine.check().unwrap();
    drop(mine);
    b.settle(&other).await;
    drop(lock);
    b.settle(&a).await;
}

async fn events_come_back_in_order(b: &impl Backend) {
    let a = b.open();
    for n in 0..30 {
        a.append_event(&record(n)).await.unwrap();
    }
    a.flush_events().await.unwrap();
    let again = b.open();
    again.append_event(&record(30)).await.unwrap();
    again.flush_events().await.unwrap();
    let h = b.open().history().await.unwrap();
    let messages: Vec<String> = h
        .events
        .iter()
        .map(|r| match &r.event {
            Event::StepProgress { message, .. } => message.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..31).map(|n| format!("event {n}")).collect();
    assert_eq!(messages, expected);
    assert!(!h.torn_tail);
}

async fn an_archive_leaves_no_state(b: &impl Backend) {
    let a = b.open();
    let lock = a.lock(&holder("reset")).await.unwrap();
    let mut s = a.load().await.unwrap().unwrap_or_default();
    s.cluster_id = Some("gone".into());
    a.save(&mut s).await.unwrap();
    a.append_event(&record(1)).await.unwrap();
    a.flush_events().await.unwrap();
    let at = a.archive("reset").await.unwrap();
    assert!(at.contains("gone"), "{at}");
    assert!(b.open().load().await.unwrap().is_none());
    assert!(b.open().history().await.unwrap().events.is_empty());
    // A new deployment starts at generation 0 in the same place.
    let mut fresh = DeploymentState::default();
    a.load().await.unwrap();
    a.save(&mut fresh).await.unwrap();
    assert_eq!(fresh.generation, 1);
    drop(lock);
    b.settle(&a).await;
}

macro_rules! contract {
    ($($name:ident),*) => {
        mod file_store {
            use super::*;
            $(#[tokio::test]
            async fn $name() {
                super::$name(&Files(tempfile::tempdir().unwrap())).await;
            })*
        }
        mod blob_store {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(&Blobs::new(stringify!($name))).await;
            })*
        }
    };
}

contract!(
    saves_are_compare_and_swap,
    one_holder_at_a_time_and_it_is_named,
    a_forced_unlock_names_the_holder_and_frees_the_state,
    events_come_back_in_order,
    an_archive_leaves_no_state
);
