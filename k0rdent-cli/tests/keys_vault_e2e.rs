//! Private keys across machines (#12), end to end with the real `k0rdent` binary, the ARM
//! emulator (with its Key Vault secrets API) and Azurite for the shared remote state:
//!
//! 1. machine A deploys up to `create_vms` with its keys in its local `keys/`; machine B (another
//!    directory, same remote state, no keys) gets one message naming every missing key and how
//!    to bring them, exit 3, and generates nothing;
//! 2. with `--keys keyvault://VAULT` from the start, B continues A's deployment: its `deploy`
//!    fetches the keys into a swept `keys-vault/`, `setup_vpn` renders the hub file from the
//!    hub's private key and `connect_vpn` hands its path to wg-quick (a stand-in that refuses,
//!    so no interface comes up here);
//! 3. `reset -y` leaves no secret in the vault, neither live nor soft-deleted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;
use k0rdent_testkit::azurite::{self, Azurite};

const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");
const VAULT: &str = "kv-e2e";

fn azurite_once() -> &'static Azurite {
    static A: OnceLock<Azurite> = OnceLock::new();
    A.get_or_init(Azurite::start)
}

struct World {
    emu: Emulator,
    state_url: String,
    /// A wg-quick that records its arguments and refuses.
    bin: tempfile::TempDir,
}

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k0rdent.yaml"), CONFIG).unwrap();
        Machine { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn run(&self, w: &World, args: &[&str], vault: bool) -> (i32, String, String) {
        let mut c: Command = common::k0rdent(&w.emu, self.dir.path());
        c.current_dir(self.dir.path())
            .env("K0RDENT_CONFIG", self.dir.path().join("k0rdent.yaml"))
            .env("K0RDENT_STATE", &w.state_url)
            .env(
                "AZURE_STORAGE_CONNECTION_STRING",
                azurite_once().connection_string(),
            )
            .env("PATH", w.bin.path())
            .args(args);
        if vault {
            c.env("K0RDENT_KEYS", format!("keyvault://{VAULT}")).env(
                "K0RDENT_KEYVAULT_ENDPOINT",
                format!("{}/vaults/{{vault}}", w.emu.url()),
            );
        }
        let t = Instant::now();
        let o = c.output().unwrap();
        eprintln!("{args:?} (vault: {vault}) took {:?}", t.elapsed());
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

async fn world(tag: &str) -> World {
    let emu = Emulator::builder()
        .latency(Duration::from_millis(2))
        .operation_duration(Duration::from_millis(200))
        .retry_after(Duration::from_millis(100))
        .keyvault_delete_latency(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("wg-quick");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\necho 'wg-quick: Unable to access interface: Protocol not supported' >&2\nexit 1\n",
            bin.path().join("calls").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    World {
        emu,
        state_url: format!(
            "azblob://{}/{}/prod",
            azurite::ACCOUNT,
            azurite::fresh_container(tag)
        ),
        bin,
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_the_keys_is_told_which_and_how_to_bring_them() {
    let w = world("nokeys").await;
    let (a, b) = (Machine::new(), Machine::new());
    let (code, out, err) = a.run(&w, &["deploy", "-y", "--until", "create_vms"], false);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(a.state().join("keys/ssh-admin.key").exists());

    for args in [
        &["deploy", "-y", "--until", "create_vms"][..],
        &["deploy", "-y"][..],
        &["render", "hub"][..],
    ] {
        let (code, out, err) = b.run(&w, args, false);
        assert_eq!(code, 3, "{args:?}: blocked, not an error\n{out}\n{err}");
        eprintln!("B {args:?}:\n{err}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "one message: {err}");
        for key in [
            "ssh-admin.key",
            "wireguard-hub.key",
            "wireguard-k0s-controller-1.key",
        ] {
            assert!(errors[0].contains(key), "{args:?} names {key}: {err}");
        }
        assert!(err.contains("copy the keys/ directory from"), "{err}");
        assert!(err.contains("this host, another state directory"), "{err}");
        assert!(err.contains("--keys keyvault://VAULT"), "{err}");
    }
    // With a vault that has none of them (A deployed without --keys): the same stop.
    let (code, out, err) = b.run(&w, &["deploy", "-y"], true);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(
        err.contains(&format!("keyvault://{VAULT} has none of them")),
        "{err}"
    );
    assert!(w.emu.keyvault_secrets(VAULT).is_empty());
    // Nothing was generated in place of the VMs' keys.
    assert!(!b.state().join("keys/ssh-admin.key").exists());
    assert!(!b.state().join("keys/wireguard-hub.key").exists());
    // A still has everything it needs.
    let (code, out, err) = a.run(&w, &["deploy", "-y", "--until", "create_vms"], false);
    assert_eq!(code, 0, "{out}\n{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_key_vault_another_machine_continues_and_reset_leaves_no_secret() {
    let w = world("vault").await;
    let (a, b) = (Machine::new(), Machine::new());
    let (code, out, err) = a.run(&w, &["deploy", "-y", "--until", "create_vms"], true);
    assert_eq!(code, 0, "{out}\n{err}");
    let secrets = w.emu.keyvault_secrets(VAULT);
    // The admin SSH key, the hub's and one WireGuard key per node (3 + 2).
    assert_eq!(secrets.len(), 7, "{secrets:?}");
    assert!(
        !a.state().join("keys").exists(),
        "no keys outside keys-vault/"
    );
    let a_keys = a.state().join("keys-vault");
    assert_eq!(mode(&a_keys), 0o700);
    assert_eq!(mode(&a_keys.join("ssh-admin.key")), 0o600);

    // B: a stale file in its vault copy is swept at start; the keys come from the vault.
    std::fs::create_dir_all(b.state().join("keys-vault")).unwrap();
    std::fs::write(b.state().join("keys-vault/stale.key"), b"old").unwrap();
    let (code, out, err) = b.run(&w, &["-vv", "deploy", "-y"], true);
    assert_eq!(
        code, 3,
        "blocked at connect_vpn by the stand-in\n{out}\n{err}"
    );
    // Debug logs name the vault requests, never a key (raw or as the vault stores it).
    let ssh_key = std::fs::read(a_keys.join("ssh-admin.key")).unwrap();
    let body_line = String::from_utf8_lossy(&ssh_key)
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let stored = base64_encode(&ssh_key);
    for needle in [body_line.as_str(), &stored[..40]] {
        assert!(
            !out.contains(needle) && !err.contains(needle),
            "a key reached the output"
        );
    }
    assert!(err.contains("Key Vault request"), "debug logs are on");
    assert!(
        out.contains("connect_vpn") && out.contains("Protocol not supported"),
        "{out}\n{err}"
    );
    let b_keys = b.state().join("keys-vault");
    assert!(!b_keys.join("stale.key").exists());
    assert_eq!(mode(&b_keys), 0o700);
    for name in ["ssh-admin.key", "wireguard-hub.key"] {
        assert_eq!(
            std::fs::read(b_keys.join(name)).unwrap(),
            std::fs::read(a_keys.join(name)).unwrap(),
            "{name}"
        );
        assert_eq!(mode(&b_keys.join(name)), 0o600);
    }
    // setup_vpn rendered the hub file from the hub's key and stored it (vault and file);
    // connect_vpn handed its path in B's keys-vault/ to wg-quick.
    let calls = std::fs::read_to_string(w.bin.path().join("calls")).unwrap();
    // (relative: the state directory is the default ./state, in B's directory)
    let hub = b
        .dir
        .path()
        .join(calls.trim().strip_prefix("up ./").unwrap());
    assert!(
        hub.starts_with(&b_keys) && hub.extension().is_some_and(|e| e == "conf"),
        "{calls}"
    );
    assert_eq!(
        std::fs::read_to_string(hub)
            .unwrap()
            .matches("[Peer]")
            .count(),
        5
    );
    assert_eq!(w.emu.keyvault_secrets(VAULT).len(), 8);

    let (code, out, err) = b.run(&w, &["reset", "-y"], true);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        w.emu.keyvault_secrets(VAULT).is_empty(),
        "{:?}",
        w.emu.keyvault_secrets(VAULT)
    );
    assert!(
        w.emu.keyvault_deleted_secrets(VAULT).is_empty(),
        "nothing soft-deleted either: {:?}",
        w.emu.keyvault_deleted_secrets(VAULT)
    );
    assert!(
        !b_keys.exists(),
        "keys of deleted VMs are not kept locally either"
    );
}

fn base64_encode(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}
