//! `k0rdent state migrate` with the real CLI (over the fake world) and a real Azurite (#12):
//! a completed deployment moved from `./state` to a blob and back plans as nothing to do each
//! time (a bare `plan` follows the pointer left in `./state`), its event log survives, older
//! builds refuse the pointer; a destination holding another deployment, an empty source and a
//! source locked by a live run are refused; a move SIGKILLed between the verified copy and
//! the pointer leaves the old store in use, and running it again finishes it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::state::{MovedTo, ParseError, SCHEMA_VERSION, parse_state};
use k0rdent_core::store::{StateStore, StoreError};
use k0rdent_testkit::azurite::{self, Azurite};
use k0rdent_tests::fake_world::finish;

fn azurite_once() -> &'static Azurite {
    static A: OnceLock<Azurite> = OnceLock::new();
    A.get_or_init(Azurite::start)
}

/// One operator's machine: a working directory (its `./state`) and the fake world the
/// deployment lives in.
struct Machine {
    cwd: tempfile::TempDir,
    world: tempfile::TempDir,
    url: String,
}

impl Machine {
    fn new(tag: &str) -> Self {
        Machine {
            cwd: tempfile::tempdir().unwrap(),
            world: tempfile::tempdir().unwrap(),
            url: format!(
                "azblob://{}/{}/prod?lease=15",
                azurite::ACCOUNT,
                azurite::fresh_container(tag)
            ),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.cwd.path().join("state")
    }

    /// `k0rdent ARGS` in the working directory, no `--state`/`--state-dir` from the
    /// environment (a bare invocation uses `./state`).
    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fake-k0rdent"));
        c.current_dir(self.cwd.path())
            .args(args)
            .env_remove("K0RDENT_STATE_DIR")
            .env_remove("K0RDENT_STATE")
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                azurite_once().connection_string(),
            )
            .env("FAKE_WORLD_DIR", self.world.path())
            .env("FAKE_STEP_DELAY_MS", "0")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        finish(self.cli(args).spawn().unwrap())
    }

    fn store(&self) -> BlobStore {
        let cs = azurite_once().connection_string();
        BlobStore::from_url(&self.url, move |k| {
            (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone())
        })
        .unwrap()
    }

    /// The events `state history -o json` prints (with `extra` arguments).
    fn history(&self, extra: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["state", "history", "-o", "json"];
        args.extend_from_slice(extra);
        let out = self.cli(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn deployed(tag: &str) -> Self {
        let m = Machine::new(tag);
        let (code, out) = m.run(&["deploy", "-y"]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = m.run(&["plan"]);
        assert_eq!(code, 0, "a completed deployment has nothing to do:\n{out}");
        m
    }
}

/// SIGKILLs a migrate (run with `-v` and the test pause) once it says its copy is verified.
fn kill_after_copy(mut child: Child) {
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("is verified") {
            break;
        }
    }
    assert!(seen.contains("is verified"), "{seen}");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs `args` until it succeeds: a killed move's lease lapses by itself (15 s), and until
/// then the rerun is refused with exit 4.
fn rerun_until_unlocked(m: &Machine, args: &[&str]) -> String {
    let t = Instant::now();
    loop {
        let (code, out) = m.run(args);
        if code == 0 {
            return out;
        }
        assert_eq!(code, 4, "{out}");
        assert!(t.elapsed() < Duration::from_secs(25), "still locked: {out}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn local_file(m: &Machine) -> Vec<u8> {
    std::fs::read(m.state_dir().join("deployment-state.yaml")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_deployment_moves_to_a_blob_and_back_and_plans_as_nothing_to_do() {
    let t = Instant::now();
    let m = Machine::deployed("both-ways");
    let events = m.history(&[]);
    assert!(!events.is_empty());
    let before = parse_state(&local_file(&m)).unwrap().state;

    // ./state → the blob.
    let (code, out) = m.run(&["state", "migrate", "--to", &m.url]);
    assert_eq!(code, 0, "{out}");
    eprintln!("{out}");
    let to = m.url.split('?').next().unwrap();
    assert!(out.contains(&format!("to {to}")), "{out}");
    assert!(
        out.contains(&format!("event log ({} events", events.len())),
        "says what was copied:\n{out}"
    );
    let moved = m.store().load().await.unwrap().unwrap();
    assert_eq!(
        moved, before,
        "the same document, generation and cluster id"
    );

    // The pointer: a newer schema for older builds, followed by this one.
    let stub = local_file(&m);
    let v: serde_yaml::Value = serde_yaml::from_slice(&stub).unwrap();
    assert!(v["schema_version"].as_u64().unwrap() > u64::from(SCHEMA_VERSION));
    match parse_state(&stub) {
        Err(ParseError::Moved(p)) => {
            assert_eq!(p.moved_to, MovedTo::Remote { url: to.to_owned() });
            assert_eq!(p.generation, before.generation);
        }
        other => panic!("expected a pointer: {other:?}"),
    }
    assert!(
        m.state_dir().join("keys").is_dir() || !m.world.path().join("keys").exists(),
        "keys stay local"
    );

    let (code, out) = m.run(&["plan", "-v"]);
    assert_eq!(code, 0, "a bare plan follows the pointer:\n{out}");
    assert!(out.contains("following it"), "says so at -v:\n{out}");
    let (code, out) = m.run(&["plan", "--state", &m.url]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.history(&[]), events, "the history moved with the state");
    assert_eq!(m.history(&["--state", &m.url]), events);

    // The blob → ./state again: the blob keeps a pointer naming this host and directory.
    let (code, out) = m.run(&["state", "migrate", "--to", "state", "-o", "json"]);
    assert_eq!(code, 0, "{out}");
    let result: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(result["schema"], 1, "{result}");
    assert_eq!(result["result"], "migrate", "{result}");
    assert_eq!(result["generation"], before.generation, "{result}");
    assert_eq!(
        result["events_appended"], 0,
        "./state kept its log: {result}"
    );
    let back = parse_state(&local_file(&m)).unwrap().state;
    assert_eq!(back, before);
    match m.store().load().await {
        Err(StoreError::Moved { pointer, .. }) => {
            assert!(
                matches!(&pointer.moved_to, MovedTo::Directory { path, .. }
                    if *path == m.state_dir().canonicalize().unwrap()),
                "{pointer:?}"
            );
        }
        other => panic!("expected a pointer in the blob: {other:?}"),
    }
    let (code, out) = m.run(&["plan"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.history(&[]), events);
    let (code, out) = m.run(&["plan", "--state", &m.url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("moved to the local directory"), "{out}");
    assert!(out.contains("--state-dir"), "{out}");
    eprintln!("both ways: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_refuses_an_occupied_destination_an_empty_source_and_a_locked_source() {
    let a = Machine::deployed("occupied");
    // Another deployment already lives in the blob.
    let mut b = Machine::new("other");
    b.url.clone_from(&a.url);
    let (code, out) = b.run(&["deploy", "-y", "--state", &b.url]);
    assert_eq!(code, 0, "{out}");
    let before = local_file(&a);
    let (code, out) = a.run(&["state", "migrate", "--to", &a.url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("already holds a deployment"), "{out}");
    assert!(out.contains("hint: move to an empty destination"), "{out}");
    assert_eq!(local_file(&a), before, "nothing changed");
    assert_eq!(a.run(&["plan"]).0, 0);

    // No deployment to move.
    let empty = Machine::new("empty");
    let (code, out) = empty.run(&["state", "migrate", "--to", &empty.url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("holds no deployment to move"), "{out}");

    // A live run holds the source's lock: exit 4 naming it.
    let busy = Machine::new("busy");
    let mut deploy = busy.cli(&["deploy", "-y"]);
    deploy.env("FAKE_STEP_DELAY_MS", "3000");
    let deploy = deploy.spawn().unwrap();
    let lock = busy.state_dir().join("lock");
    let t = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&deploy.id().to_string())) {
        assert!(t.elapsed() < Duration::from_secs(20), "deploy took no lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out) = busy.run(&["state", "migrate", "--to", &busy.url]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains(&format!("pid {}", deploy.id())), "{out}");
    let mut deploy = deploy;
    deploy.kill().unwrap();
    deploy.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrate_killed_after_the_copy_leaves_the_old_store_and_a_rerun_finishes_it() {
    let t = Instant::now();
    let m = Machine::deployed("killed");
    let events = m.history(&[]);
    let before = local_file(&m);

    let mut c = m.cli(&["state", "migrate", "--to", &m.url, "-v"]);
    c.env("K0RDENT_TEST_MIGRATE_PAUSE_MS", "60000");
    kill_after_copy(c.spawn().unwrap());

    // Both hold the state, and the old store is the one in use: ./state is no pointer.
    assert_eq!(local_file(&m), before);
    assert!(m.store().load().await.unwrap().is_some());
    let (code, out) = m.run(&["plan"]);
    assert_eq!(code, 0, "{out}");

    // The killed move's lease lapses by itself; then the rerun finishes the move.
    let out = rerun_until_unlocked(&m, &["state", "migrate", "--to", &m.url]);
    assert!(out.contains("finishing an interrupted move"), "{out}");
    assert!(matches!(
        parse_state(&local_file(&m)),
        Err(ParseError::Moved(_))
    ));
    let (code, out) = m.run(&["plan"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = m.run(&["plan", "--state", &m.url]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.history(&[]), events, "no event copied twice");

    // And back, killed after the copy into ./state: until the blob points to ./state,
    // commands given ./state go to the blob (the copy there is not in use yet).
    let mut c = m.cli(&["state", "migrate", "--to", "state", "-v"]);
    c.env("K0RDENT_TEST_MIGRATE_PAUSE_MS", "60000");
    kill_after_copy(c.spawn().unwrap());
    assert!(
        parse_state(&local_file(&m)).is_ok(),
        "the copy is in ./state"
    );
    assert!(m.state_dir().join("migrating-in.yaml").exists());
    assert!(
        m.store().load().await.unwrap().is_some(),
        "the blob is in use"
    );
    let (code, out) = m.run(&["plan", "-v"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("was interrupted"), "{out}");
    let out = rerun_until_unlocked(&m, &["state", "migrate", "--to", "state"]);
    assert!(out.contains("finishing an interrupted move"), "{out}");
    assert!(!m.state_dir().join("migrating-in.yaml").exists());
    assert!(matches!(
        m.store().load().await,
        Err(StoreError::Moved { .. })
    ));
    let (code, out) = m.run(&["plan"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(m.history(&[]), events);
    eprintln!("killed and rerun, both ways: {:?}", t.elapsed());
}
