//! The remote state when the storage goes away (#12, must-show 4), with the real CLI over the
//! fake world and a real Azurite:
//!
//! - Azurite stopped under a running deploy: the run stops before its lease could lapse, with
//!   a clear error; Azurite comes back (its data kept with `--location`, on the same port) and
//!   a rerun resumes where the first stopped.
//! - 20 SIGKILLs of the CLI while it saves the state through a slow proxy (so an upload
//!   takes a few hundred ms; three kills in four are aimed at an upload in flight): after
//!   every kill the blob loads as a complete version, never an older one than before, and a
//!   last run converges.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::store::StateStore;
use k0rdent_testkit::azurite::{self, Azurite, Options};
use k0rdent_testkit::slow_proxy::{SlowProxy, Slowness};
use k0rdent_tests::fake_world::finish as output;

struct Cli {
    url: String,
    connection: String,
    world: tempfile::TempDir,
}

impl Cli {
    fn new(tag: &str, connection: String) -> Self {
        Cli {
            url: format!(
                "azblob://{}/{}/prod?lease=15",
                azurite::ACCOUNT,
                azurite::fresh_container(tag)
            ),
            connection,
            world: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, local: &Path, delay_ms: u64, args: &[&str]) -> Command {
        let mut c = k0rdent_tests::fake_world::remote_command(
            Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")),
            local,
            &self.url,
            &self.connection,
            self.world.path(),
            delay_ms,
        );
        c.args(args);
        c
    }

    /// The store as the test reads it: straight to Azurite (`direct`), not through a proxy.
    fn store(&self, direct: &Azurite) -> BlobStore {
        let cs = direct.connection_string();
        BlobStore::from_url(&self.url, move |k| {
            (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone())
        })
        .unwrap()
    }

    fn world_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.world.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits for `child` to exit, at most `within`.
fn wait_exit(child: &mut Child, within: Duration) -> Duration {
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < within,
            "the CLI did not stop within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

#[test]
fn azurite_stopped_under_a_deploy_stops_it_before_the_lease_lapses_and_a_rerun_resumes() {
    let data = tempfile::tempdir().unwrap();
    let opts = Options {
        location: Some(data.path().to_path_buf()),
        port: Some(free_port()),
        tls: None,
    };
    let mut storage = Azurite::start_with(&opts);
    let cli = Cli::new("outage", storage.connection_string());
    let local = tempfile::tempdir().unwrap();
    let mut run = cli
        .command(local.path(), 12_000, &["deploy", "-y"])
        .spawn()
        .unwrap();

    // One step done (its file exists and its completion was saved), the next one in the
    // middle of its 12 s: no save is due before the lease's safe margin runs out, so it is
    // the lease that stops the run.
    let t = Instant::now();
    while cli.world_files().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30), "no progress");
        assert!(run.try_wait().unwrap().is_none(), "the deploy ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let done_before = cli.world_files();

    storage.stop();
    let stopped_for = wait_exit(&mut run, Duration::from_secs(30));
    let (code, out) = output(run);
    eprintln!("the deploy stopped {stopped_for:?} after Azurite did:\n{out}");
    assert_eq!(code, 1, "{out}");
    // The lease is 15 s, renewed every 5 s; the holder trusts it for 10 s from the last
    // renewal it sent (before the storage went away), so the run is cancelled at most 10 s
    // after the stop and at least 5 s before the lease could lapse. 2 s for the exit.
    assert!(
        stopped_for < Duration::from_secs(12),
        "the run outlived the lease's safe margin: {stopped_for:?}"
    );
    assert!(
        out.contains("the state lock was lost") && out.contains("could not be renewed"),
        "the error says what was lost:\n{out}"
    );
    assert!(out.contains("hint:"), "with a remedy:\n{out}");
    assert!(!out.contains("panicked"), "{out}");

    // The storage returns with its data; the rerun resumes.
    let storage = Azurite::start_with(&opts);
    let recorded = cli.store(&storage).load().await_blocking().unwrap();
    let recorded = recorded.expect("the state saved before the outage is there");
    let t = Instant::now();
    let (code, out) = output(
        cli.command(local.path(), 0, &["deploy", "-y", "--output", "json"])
            .spawn()
            .unwrap(),
    );
    eprintln!("rerun after {:?}", t.elapsed());
    assert_eq!(code, 0, "{out}");
    let applied: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step_started")
        .filter_map(|v| v["step"].as_str().map(str::to_owned))
        .collect();
    for file in &done_before {
        let step = file.replace("--", "/");
        assert!(
            !applied.contains(&step),
            "{step} was done before the outage and ran again: {applied:?}\n{out}"
        );
    }
    assert!(
        !applied.is_empty(),
        "the rest of the deployment ran:\n{out}"
    );
    let after = cli
        .store(&storage)
        .load()
        .await_blocking()
        .unwrap()
        .unwrap();
    assert!(after.generation > recorded.generation);
}

/// Minimal blocking for the store's futures in a plain test.
trait Blocking: std::future::Future + Sized {
    fn await_blocking(self) -> Self::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self)
    }
}
impl<F: std::future::Future> Blocking for F {}

/// A small deterministic generator for the kill times (its seed is printed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn twenty_kills_in_the_middle_of_blob_saves_always_leave_a_whole_version() {
    let storage = Azurite::start();
    // About 10 ms per 256 bytes: a state save of a few KiB takes a few hundred ms.
    let proxy = SlowProxy::start(
        storage.port,
        Slowness {
            chunk: 256,
            pause: Duration::from_millis(10),
            marker: vec!["PUT ".into(), "deployment-state.yaml".into()],
            except: vec!["comp=".into(), "backups".into()],
        },
    );
    let cli = Cli::new("kills", storage.connection_string_via(proxy.port));
    let store = cli.store(&storage);
    let local = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);

    let (mut kills, mut mid_save, mut completed_runs) = (0, 0, 0);
    let mut generation = 0u64;
    let mut next = "deploy";
    while kills < 20 {
        let mut child = cli.command(local.path(), 0, &[next, "-y"]).spawn().unwrap();
        let wait = Duration::from_millis(300 + rng.next(2500));
        let t = Instant::now();
        while t.elapsed() < wait && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Three kills in four are aimed: at the next state upload, a little way into it.
        if kills % 4 != 3 {
            let t = Instant::now();
            while proxy.in_flight() == 0
                && t.elapsed() < Duration::from_secs(5)
                && child.try_wait().unwrap().is_none()
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(rng.next(80)));
        }
        if child.try_wait().unwrap().is_none() {
            let in_flight = proxy.in_flight() > 0;
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            if in_flight {
                mid_save += 1;
            }
            // Not testing the takeover here (another test does): no waiting for the lapse.
            store.force_unlock().await_blocking().unwrap();
        } else {
            let (code, out) = output(child);
            assert_eq!(code, 0, "{next}:\n{out}");
            completed_runs += 1;
            next = if next == "deploy" { "reset" } else { "deploy" };
        }
        // Whatever the kill cut, the blob is one whole version (the end marker is checked on
        // load), never an older one than before.
        let loaded = store
            .load()
            .await_blocking()
            .unwrap_or_else(|e| panic!("after kill {kills}: the blob does not load: {e}"));
        match loaded {
            Some(s) => {
                assert!(
                    s.generation >= generation,
                    "after kill {kills}: the generation went back from {generation} to {}",
                    s.generation
                );
                generation = s.generation;
            }
            // A finished reset archived the state and emptied the blob.
            None => generation = 0,
        }
    }
    eprintln!(
        "{kills} kills, {mid_save} with a state upload in flight, {} uploads cut short; \
         {completed_runs} runs completed between them; {} state uploads started, {} answered",
        proxy.cut(),
        proxy.started(),
        proxy.answered()
    );
    assert!(
        proxy.cut() >= 10,
        "too few kills cut an upload ({}) for the test to mean anything",
        proxy.cut()
    );
    let (code, out) = output(
        cli.command(local.path(), 0, &["deploy", "-y"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(store.load().await_blocking().unwrap().is_some());
}
