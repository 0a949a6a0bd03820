//! Two real CLIs (the `k0rdent` CLI over the fake world) with different local directories
//! sharing one remote state on a real Azurite (#12): exactly one runs and the other exits 4
//! naming the holder; a SIGKILLed holder's lease lapses and the next run takes over without a
//! manual step; a holder whose lease is broken under it stops at its next save, and the blob
//! keeps the other writer's state.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::store::StateStore;
use k0rdent_testkit::azurite::{self, Azurite};
use k0rdent_tests::fake_world::finish;

fn azurite_once() -> &'static Azurite {
    static A: OnceLock<Azurite> = OnceLock::new();
    A.get_or_init(Azurite::start)
}

struct Shared {
    url: String,
    world: tempfile::TempDir,
}

impl Shared {
    fn new(tag: &str) -> Self {
        Shared {
            url: format!(
                "azblob://{}/{}/prod?lease=15",
                azurite::ACCOUNT,
                azurite::fresh_container(tag)
            ),
            world: tempfile::tempdir().unwrap(),
        }
    }

    /// The CLI in `local` (its own `./state` for keys), on the shared remote state.
    fn cli(&self, local: &Path, delay_ms: u64, args: &[&str]) -> Command {
        let mut c = k0rdent_tests::fake_world::remote_command(
            Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")),
            local,
            &self.url,
            &azurite_once().connection_string(),
            self.world.path(),
            delay_ms,
        );
        c.args(args);
        c
    }

    fn store(&self) -> BlobStore {
        let cs = azurite_once().connection_string();
        BlobStore::from_url(&self.url, move |k| {
            (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone())
        })
        .unwrap()
    }

    /// Waits until process `pid` holds the lease.
    async fn wait_for_holder(&self, pid: u32, within: Duration) -> Duration {
        let store = self.store();
        let t = Instant::now();
        loop {
            if let Some(h) = store.lock_holder().await.unwrap()
                && h.pid == pid
            {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < within,
                "pid {pid} did not take the lease in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_clis_runs_and_a_killed_holder_is_taken_over_without_a_manual_step() {
    let shared = Shared::new("takeover");
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut first = shared
        .cli(one.path(), 4000, &["deploy", "-y"])
        .spawn()
        .unwrap();
    shared
        .wait_for_holder(first.id(), Duration::from_secs(20))
        .await;

    let (code, out) = finish(
        shared
            .cli(two.path(), 0, &["deploy", "-y"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains(&format!("pid {}", first.id())),
        "names the holder:\n{out}"
    );
    assert!(out.contains("`deploy`"), "{out}");

    first.kill().unwrap();
    let killed = Instant::now();
    first.wait().unwrap();
    let second = shared
        .cli(two.path(), 0, &["deploy", "-y"])
        .spawn()
        .unwrap();
    let pid = second.id();
    shared.wait_for_holder(pid, Duration::from_secs(25)).await;
    let takeover = killed.elapsed();
    eprintln!("takeover after SIGKILL: {takeover:?}");
    assert!(takeover < Duration::from_secs(15 + 5), "{takeover:?}");
    let (code, out) = finish(second);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Deployment converged."), "{out}");
    let state = shared.store().load().await.unwrap().unwrap();
    assert!(state.generation > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_lease_is_broken_stops_at_its_next_save_and_the_other_state_stays() {
    let shared = Shared::new("fencing");
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = shared
        .cli(one.path(), 3000, &["deploy", "-y"])
        .spawn()
        .unwrap();
    let first_pid = first.id();
    shared
        .wait_for_holder(first_pid, Duration::from_secs(20))
        .await;

    let (code, out) = finish(
        shared
            .cli(two.path(), 0, &["state", "unlock", "--force"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: breaking the lease"), "{out}");
    assert!(out.contains(&format!("pid {first_pid}")), "{out}");

    let (code, out2) = finish(
        shared
            .cli(two.path(), 0, &["deploy", "-y"])
            .spawn()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out2}");
    let theirs = shared.store().load().await.unwrap().unwrap();

    let (code, out) = finish(first);
    assert_eq!(code, 1, "the fenced holder fails:\n{out}");
    assert!(out.contains("the state lock was lost"), "{out}");
    let now = shared.store().load().await.unwrap().unwrap();
    assert_eq!(
        now.generation, theirs.generation,
        "the fenced holder wrote nothing"
    );
    assert_eq!(
        now, theirs,
        "the blob holds the other writer's state, intact"
    );
}
