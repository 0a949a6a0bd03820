//! The VPN hub belongs to one machine at a time (#12): two "machines" (two local directories,
//! each CLI in its own UTS namespace with its own host name) share one remote state on a real
//! Azurite. The first `vpn up` records its host as the hub; another machine's `vpn up` takes
//! the hub over only under the state's lease (exit 4 naming the holder while someone else
//! holds it, with nothing changed) and says that the previous host's tunnel stops working.
//! The interfaces are real wireguard-go devices, on a cluster id no other test uses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k0rdent_azure::blob::BlobStore;
use k0rdent_core::id::RunId;
use k0rdent_core::store::{LockHolder, StateStore};
use k0rdent_core::{FileStore, state::DeploymentState};
use k0rdent_testkit::azurite::{self, Azurite};

const CLUSTER: &str = "k0rdent-hubown42";
const IFACE: &str = "wgk0hubown42";

/// Takes the test's interface down however the test ends.
struct Cleanup;
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", IFACE]).output();
    }
}

fn iface_exists() -> bool {
    Path::new("/sys/class/net").join(IFACE).exists()
}

struct Machine {
    host: &'static str,
    dir: tempfile::TempDir,
}

impl Machine {
    /// `k0rdent ARGS` on this machine: its own host name, its own `./state`.
    fn run(&self, url: &str, azurite: &Azurite, args: &[&str]) -> (i32, String, String) {
        let o = Command::new("unshare")
            .args([
                "--uts",
                "sh",
                "-c",
                r#"hostname "$0" && exec "$@""#,
                self.host,
            ])
            .arg(env!("CARGO_BIN_EXE_fake-k0rdent"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("K0RDENT_STATE_DIR")
            .env("K0RDENT_STATE", url)
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                azurite.connection_string(),
            )
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_machine_takes_the_hub_over_only_under_the_lease_and_says_so() {
    k0rdent_tests::lab::require_root();
    let _cleanup = Cleanup;
    let azurite = Azurite::start();
    let url = format!(
        "azblob://{}/{}/prod?lease=15",
        azurite::ACCOUNT,
        azurite::fresh_container("hub")
    );
    let cs = azurite.connection_string();
    let blob = BlobStore::from_url(&url, move |k| {
        (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone())
    })
    .unwrap();

    // Machine A planned the tunnel; the state goes to the blob, the keys stay in A's
    // `state/keys/`, and B has a copy of them (how is the keys' own business).
    let a = Machine {
        host: "hub-host-a",
        dir: tempfile::tempdir().unwrap(),
    };
    let b = Machine {
        host: "hub-host-b",
        dir: tempfile::tempdir().unwrap(),
    };
    let local: PathBuf =
        k0rdent_tests::vpn_state::planned_for(a.dir.path(), &["ctl-1"], CLUSTER).await;
    let mut state: DeploymentState = FileStore::new(&local).load().await.unwrap().unwrap();
    std::fs::remove_file(local.join("deployment-state.yaml")).unwrap();
    {
        let lock = blob
            .lock(&LockHolder::current(RunId::generate(), "test"))
            .await
            .unwrap();
        assert!(blob.load().await.unwrap().is_none());
        state.generation = 0;
        blob.save(&mut state).await.unwrap();
        drop(lock);
        blob.close().await;
    }
    copy_dir(&local.join("keys"), &b.dir.path().join("state/keys"));

    // A brings the hub up: nothing was recorded, so A is recorded.
    let (code, out, err) = a.run(&url, &azurite, &["vpn", "up", "-y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(iface_exists());
    let hub = blob.load().await.unwrap().unwrap().vpn_hub.unwrap();
    assert_eq!(hub.host, "hub-host-a");
    assert!(!err.contains("taking the VPN hub over"), "{err}");
    // A again: its own hub, no lock needed, nothing said.
    let (code, out, err) = a.run(&url, &azurite, &["vpn", "up", "-y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("already up"), "{out}");
    assert!(!err.contains("taking the VPN hub over"), "{err}");
    let (code, _, err) = a.run(&url, &azurite, &["vpn", "down", "-y"]);
    assert_eq!(code, 0, "{err}");
    assert!(!iface_exists());

    // While a run holds the lease, B may not take the hub: exit 4 naming the holder, no
    // interface brought up, the state unchanged.
    let lock = blob
        .lock(&LockHolder::current(RunId::generate(), "deploy"))
        .await
        .unwrap();
    let (code, out, err) = b.run(&url, &azurite, &["vpn", "up", "-y"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "names the holder:\n{err}"
    );
    assert!(!iface_exists(), "nothing was brought up");
    assert_eq!(
        blob.load().await.unwrap().unwrap().vpn_hub.unwrap().host,
        "hub-host-a"
    );
    drop(lock);
    blob.close().await;

    // With the lease free, B takes it over and says what that means for A.
    let (code, out, err) = b.run(&url, &azurite, &["vpn", "up", "-y", "-o", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("warning: taking the VPN hub over from hub-host-a"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{IFACE} on hub-host-a stops reaching the nodes")),
        "{err}"
    );
    let result: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(result["took_over_from"], "hub-host-a", "{result}");
    assert!(iface_exists());
    let st = blob.load().await.unwrap().unwrap();
    assert_eq!(st.vpn_hub.as_ref().unwrap().host, "hub-host-b");
    // `vpn status` names the hub.
    let (_, out, _) = b.run(&url, &azurite, &["vpn", "status"]);
    assert!(out.contains("Hub: this machine (hub-host-b"), "{out}");
    let (_, out, _) = a.run(&url, &azurite, &["vpn", "status"]);
    assert!(out.contains("Hub: hub-host-b"), "{out}");

    let (code, _, err) = b.run(&url, &azurite, &["vpn", "down", "-y"]);
    assert_eq!(code, 0, "{err}");
    assert!(!iface_exists());
}
