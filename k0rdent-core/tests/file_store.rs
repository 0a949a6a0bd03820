//! FileStore on real files: atomic saves, permissions, backups, compare-and-swap, bad input,
//! migration, locking, the event log and keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;

use chrono::Utc;
use k0rdent_core::store::{EventLog, KeyStore, LockHolder, STATE_FILE, StateStore};
use k0rdent_core::*;
use k0rdent_core::{
    event::{Event, EventRecord},
    id::RunId,
    state::{DeploymentState, Status},
    store::StoreError,
};

fn mode(p: &std::path::Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn holder(cmd: &str) -> LockHolder {
    LockHolder::current(RunId::generate(), cmd)
}

#[tokio::test]
async fn saves_are_private_generational_and_backed_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("state")).with_backups(3);
    assert!(store.load().await.unwrap().is_none());
    let mut s = DeploymentState::default();
    for i in 0..6 {
        s.cluster_id = Some(format!("k0rdent-{i}"));
        store.save(&mut s).await.unwrap();
    }
    assert_eq!(s.generation, 6);
    let path = store.state_path();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(store.dir()), 0o700);
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.cluster_id.as_deref(), Some("k0rdent-5"));
    assert_eq!(loaded.generation, 6);
    let mut backups: Vec<_> = fs::read_dir(store.dir().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    backups.sort();
    assert_eq!(
        backups,
        [
            "deployment-state.0000000003.yaml",
            "deployment-state.0000000004.yaml",
            "deployment-state.0000000005.yaml"
        ]
    );
    let b =
        fs::read_to_string(store.dir().join("backups/deployment-state.0000000005.yaml")).unwrap();
    assert!(
        b.contains("k0rdent-4"),
        "a backup holds the previous version"
    );
    // No temp files left behind.
    assert!(
        fs::read_dir(store.dir()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains(".tmp-"))
    );
}

#[tokio::test]
async fn a_save_over_a_file_changed_by_someone_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path());
    let b = FileStore::new(dir.path());
    let mut s = DeploymentState::default();
    a.save(&mut s).await.unwrap();
    let mut sb = b.load().await.unwrap().unwrap();
    b.save(&mut sb).await.unwrap();
    let err = a.save(&mut s).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        s.generation, 1,
        "a refused save does not bump the generation"
    );
    // A stale in-memory copy is refused too.
    let mut stale = b.load().await.unwrap().unwrap();
    stale.generation -= 1;
    assert!(matches!(
        b.save(&mut stale).await,
        Err(StoreError::Conflict { .. })
    ));
    // A store that never loaded does not overwrite an existing state.
    let c = FileStore::new(dir.path());
    assert!(matches!(
        c.save(&mut DeploymentState::default()).await,
        Err(StoreError::Conflict { .. })
    ));
}

async fn bad_input(content: &[u8], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let path = dir.path().join(STATE_FILE);
    fs::write(&path, content).unwrap();
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    let err = store.load().await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(msg.contains(expect), "{msg} should mention {expect:?}");
    let remedy = err.remedy().unwrap();
    assert!(remedy.contains("left untouched"), "{remedy}");
    // Nothing writes over it either.
    let mut s = DeploymentState::default();
    assert!(store.save(&mut s).await.is_err());
    assert_eq!(fs::read(&path).unwrap(), content, "the file is untouched");
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
}

#[tokio::test]
async fn a_truncated_state_file_is_reported_with_its_path_and_left_untouched() {
    let mut s = DeploymentState {
        cluster_id: Some("k0rdent-abc".into()),
        ..DeploymentState::default()
    };
    s.record_mut(&StepId::parse("setup_network").unwrap())
        .status = Status::Completed;
    let full = k0rdent_core::state::render_state(&s).unwrap();
    // Cut inside a value: what is left is valid YAML and would parse as a smaller state.
    let cut = full.find("k0rdent-abc").unwrap() + "k0rdent".len();
    bad_input(&full.as_bytes()[..cut], "truncated").await;
    bad_input(&full.as_bytes()[..full.len() / 2], "").await;
}

#[tokio::test]
async fn a_non_yaml_state_file_is_reported_and_left_untouched() {
    bad_input(b"\x7fELF\x02\x01\x01 binary {{{ [[[", "not valid YAML").await;
    bad_input(b"- just\n- a list\n", "not a YAML mapping").await;
    bad_input(b"", "empty").await;
}

#[tokio::test]
async fn a_wrong_typed_state_file_names_the_key() {
    bad_input(b"schema_version: 1\ngeneration: many\n", "generation").await;
    bad_input(
        b"schema_version: 1\ngeneration: 3\nphases:\n  install_k0s:\n    status: finished\n# end of k0rdent state, generation 3\n",
        "phases.install_k0s.status",
    )
    .await;
    bad_input(b"schema_version: \"1\"\ngeneration: 1\n", "schema_version").await;
}

#[tokio::test]
async fn a_future_schema_is_refused_with_an_upgrade_hint() {
    bad_input(
        b"schema_version: 7\ngeneration: 1\nnew_field: {}\n",
        "upgrade k0rdent",
    )
    .await;
}

#[tokio::test]
async fn a_bash_tool_state_is_migrated_with_a_backup_and_its_keys_moved_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    let old = "deployment_id: k0rdent-legacy1\nphases:\n  prepare_deployment: {status: completed}\nwireguard_peers:\n  k0s-worker-1: {ip: 172.24.24.21, role: worker, private_key: PRIVATEKEYMATERIAL, public_key: PUB}\n";
    fs::write(&path, old).unwrap();
    let store = FileStore::new(dir.path());
    let mut s = store.load().await.unwrap().unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        old,
        "reading never writes"
    );
    assert_eq!(s.cluster_id.as_deref(), Some("k0rdent-legacy1"));
    let _lock = store.lock(&holder("deploy")).await.unwrap();
    store.save(&mut s).await.unwrap();
    let new = fs::read_to_string(&path).unwrap();
    assert!(new.contains("schema_version: 1"));
    assert!(!new.contains("PRIVATEKEYMATERIAL"));
    let backup = fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("pre-migration-schema-0"))
        .expect("a pre-migration backup");
    assert_eq!(fs::read_to_string(&backup).unwrap(), old);
    let key = store.keys_dir().join("wireguard-k0s-worker-1.key");
    assert_eq!(fs::read_to_string(&key).unwrap(), "PRIVATEKEYMATERIAL");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&store.keys_dir()), 0o700);
}

#[tokio::test]
async fn the_lock_names_its_holder_and_is_released_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path());
    let b = FileStore::new(dir.path());
    let h = holder("deploy");
    let guard = a.lock(&h).await.unwrap();
    guard.check().unwrap();
    let Err(err) = b.lock(&holder("deploy")).await else {
        panic!("the second lock succeeded");
    };
    let StoreError::Locked {
        holder: Some(got), ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(**got, h);
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert_eq!(b.lock_holder().await.unwrap(), Some(h));
    // Lock-free reads work meanwhile.
    let mut s = DeploymentState::default();
    a.save(&mut s).await.unwrap();
    assert!(b.load().await.unwrap().is_some());
    drop(guard);
    assert_eq!(b.lock_holder().await.unwrap(), None);
    let _g = b.lock(&holder("deploy")).await.unwrap();
}

#[tokio::test]
async fn a_broken_lock_is_reported_lost_to_its_old_holder() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::new(dir.path());
    let guard = a.lock(&holder("deploy")).await.unwrap();
    let broken = FileStore::new(dir.path()).force_unlock().await.unwrap();
    assert_eq!(broken.unwrap().pid, std::process::id());
    assert!(matches!(guard.check(), Err(StoreError::LockLost { .. })));
    let _new = FileStore::new(dir.path())
        .lock(&holder("deploy"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_event_log_tolerates_a_torn_last_line_and_keeps_appending_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let rec = |n: u32| EventRecord {
        at: Utc::now(),
        run_id: RunId::from_string("r1"),
        event: Event::StepProgress {
            step: StepId::parse("setup_network").unwrap(),
            message: format!("event {n}"),
        },
    };
    store.append_event(&rec(1)).await.unwrap();
    store.append_event(&rec(2)).await.unwrap();
    let path = dir.path().join("deployment-events.jsonl");
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"at\":\"2026-11-28T10:00:00Z\",\"run_id\":\"r1\",\"ev");
    fs::write(&path, &bytes).unwrap();
    let h = store.history().await.unwrap();
    assert_eq!(h.events.len(), 2);
    assert!(h.torn_tail);
    // A new process appends after the torn line without gluing onto it.
    let again = FileStore::new(dir.path());
    again.append_event(&rec(3)).await.unwrap();
    let h = again.history().await.unwrap();
    assert_eq!(h.events.len(), 3);
    assert!(!h.torn_tail);
    assert_eq!(h.unreadable_lines, vec![3]);
    assert_eq!(mode(&path), 0o600);
}

#[tokio::test]
async fn keys_are_private_files_and_names_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    store
        .put_secret("wireguard-hub.key", b"secret")
        .await
        .unwrap();
    let got = store
        .get_secret("wireguard-hub.key")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose(), b"secret");
    assert_eq!(format!("{got:?}"), "[redacted]");
    assert_eq!(mode(&store.keys_dir().join("wireguard-hub.key")), 0o600);
    assert!(store.get_secret("missing.key").await.unwrap().is_none());
    for bad in ["../escape", "a/b", "", ".hidden"] {
        assert!(
            matches!(
                store.put_secret(bad, b"x").await,
                Err(StoreError::InvalidName(_))
            ),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn archive_moves_the_state_away_and_removes_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let mut s = DeploymentState {
        cluster_id: Some("k0rdent-zz".into()),
        ..DeploymentState::default()
    };
    store.save(&mut s).await.unwrap();
    store.put_secret("ssh-admin.key", b"k").await.unwrap();
    let to = store.archive("reset").await.unwrap();
    assert!(to.contains("k0rdent-zz-"), "{to}");
    assert!(std::path::Path::new(&to).join(STATE_FILE).exists());
    assert!(!store.state_path().exists());
    assert!(!store.keys_dir().exists());
    assert!(store.load().await.unwrap().is_none());
    let mut fresh = DeploymentState::default();
    store.save(&mut fresh).await.unwrap();
}

/// Saves (with their fsyncs) run on the blocking pool: on a single-threaded runtime, another
/// task keeps running while a save is in flight. Were the file work done on the async worker,
/// nothing else could run until each save returned.
#[tokio::test(flavor = "current_thread")]
async fn saves_never_block_the_async_worker() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path().join("state"));
    let mut s = DeploymentState::default();
    for i in 0..500 {
        s.settings
            .insert(format!("k{i}"), serde_json::Value::from("x".repeat(1000)));
    }
    let saving = Arc::new(AtomicBool::new(false));
    let ran_meanwhile = Arc::new(AtomicU64::new(0));
    let (flag, count) = (saving.clone(), ran_meanwhile.clone());
    let ticker = tokio::spawn(async move {
        loop {
            if flag.load(Ordering::SeqCst) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            tokio::task::yield_now().await;
        }
    });
    for _ in 0..10 {
        saving.store(true, Ordering::SeqCst);
        store.save(&mut s).await.unwrap();
        saving.store(false, Ordering::SeqCst);
    }
    ticker.abort();
    assert_eq!(s.generation, 10);
    assert!(
        ran_meanwhile.load(Ordering::SeqCst) > 0,
        "no other task ran while 10 saves were in flight"
    );
}

/// A key store that records what reaches it, and can refuse writes.
#[derive(Default)]
struct Mirror {
    puts: std::sync::Mutex<Vec<String>>,
    removed: std::sync::atomic::AtomicBool,
    refuse: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl KeyStore for Mirror {
    async fn put_secret(&self, name: &str, _value: &[u8]) -> Result<(), StoreError> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Remote {
                location: "mirror".into(),
                detail: "refused".into(),
                remedy: None,
            });
        }
        self.puts.lock().unwrap().push(name.to_owned());
        Ok(())
    }

    async fn get_secret(&self, _name: &str) -> Result<Option<secret::Secret<Vec<u8>>>, StoreError> {
        Ok(None)
    }

    async fn remove_all(&self) -> Result<(), StoreError> {
        self.removed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_key_mirror_gets_every_key_first_and_its_directory_is_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = std::sync::Arc::new(Mirror::default());
    let store = FileStore::new(dir.path().join("state"))
        .with_keys_dir("keys-vault")
        .with_key_mirror(mirror.clone());
    assert!(store.has_key_mirror());
    assert_eq!(store.keys_dir(), dir.path().join("state/keys-vault"));
    store.put_secret("a.key", b"1").await.unwrap();
    assert_eq!(*mirror.puts.lock().unwrap(), ["a.key"]);
    assert_eq!(mode(&store.keys_dir().join("a.key")), 0o600);
    // A key the mirror refused is not kept locally either: it is never used.
    mirror
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    store.put_secret("b.key", b"2").await.unwrap_err();
    assert!(store.get_secret("b.key").await.unwrap().is_none());
    // Reads are local; the sweep empties the directory and keeps it 0700.
    assert_eq!(
        store.get_secret("a.key").await.unwrap().unwrap().expose(),
        b"1"
    );
    store.sweep_keys_sync().unwrap();
    assert!(store.get_secret("a.key").await.unwrap().is_none());
    assert_eq!(mode(&store.keys_dir()), 0o700);
    store.put_secret_sync("c.key", b"3").unwrap();
    store.remove_all().await.unwrap();
    assert!(mirror.removed.load(std::sync::atomic::Ordering::SeqCst));
    assert!(!store.keys_dir().exists());
}
