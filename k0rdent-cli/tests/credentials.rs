//! Credentials are checked before anything is written: the real binary against the ARM
//! emulator's token endpoint. A wrong secret, client id or tenant, or no credentials at all,
//! is exit 1 naming the variable (or `az login`) to fix — with no state directory, lock or key
//! created, no ARM request sent, and an existing deployment's files left byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use k0rdent_arm_emulator::Emulator;

const CONFIG: &str = "azure:
  location: westeurope
  vm_image: Debian:debian-12:12-gen2:latest
network:
  wireguard_network: 172.24.25.0/24
vm_sizing:
  controller:
    size: Standard_B2s
  worker:
    size: Standard_B2s
cluster:
  controllers:
    count: 1
  workers:
    count: 1
";

const WRONG_SECRET: &str = "not-the-secret-7f3a9c";

struct Lab {
    emu: Emulator,
    dir: tempfile::TempDir,
}

impl Lab {
    async fn start() -> Lab {
        let emu = Emulator::builder()
            .latency(Duration::from_millis(1))
            .operation_duration(Duration::from_millis(50))
            .start()
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k0rdent.yaml"), CONFIG).unwrap();
        Lab { emu, dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The binary with a clean environment: no Azure variables, `az` nowhere on PATH (an
    /// empty directory), the emulator as ARM endpoint.
    fn bare(&self, args: &[&str]) -> Command {
        let empty_path = self.dir.path().join("empty-bin");
        std::fs::create_dir_all(&empty_path).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_k0rdent"));
        c.args(args)
            .env_clear()
            .env("K0RDENT_CONFIG", self.dir.path().join("k0rdent.yaml"))
            .env("K0RDENT_STATE_DIR", self.state())
            .env("PATH", &empty_path)
            .env("HOME", self.dir.path())
            .env("USER", "e2e")
            .env("K0RDENT_ARM_ENDPOINT", self.emu.url());
        c
    }

    /// The binary with the emulator's service principal, `secret` as its secret.
    fn with_secret(&self, secret: &str, args: &[&str]) -> Command {
        let mut c = self.bare(args);
        c.env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AZURE_TENANT_ID", self.emu.tenant_id())
            .env("AZURE_CLIENT_ID", self.emu.client_id())
            .env("AZURE_CLIENT_SECRET", secret)
            .env("AZURE_AUTHORITY_HOST", self.emu.url())
            .env("AZURE_SUBSCRIPTION_ID", self.emu.subscription_id());
        c
    }

    fn arm_requests(&self) -> usize {
        self.emu
            .log()
            .entries()
            .iter()
            .filter(|e| !e.path.contains("/oauth2/"))
            .count()
    }
}

fn run(c: &mut Command) -> (i32, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Every file under `dir` with its bytes and modification time.
fn files(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, SystemTime)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                let meta = std::fs::metadata(&p).unwrap();
                out.insert(
                    p.clone(),
                    (std::fs::read(&p).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

const COMMANDS: &[&[&str]] = &[
    &["plan"],
    &["status"],
    &["deploy", "--until", "create_vms"],
    &["deploy", "-y"],
    &["refresh"],
    &["reset", "-y"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_exit_1_naming_the_variable_before_anything_is_written() {
    let lab = Lab::start().await;
    for args in COMMANDS {
        let (code, out, err) = run(&mut lab.with_secret(WRONG_SECRET, args));
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: Azure credentials: ") && first.contains("invalid_client"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("hint: AZURE_CLIENT_SECRET was not accepted"),
            "{args:?}: {err}"
        );
        assert!(!out.contains(WRONG_SECRET) && !err.contains(WRONG_SECRET));
        assert!(
            !lab.state().exists(),
            "{args:?} created the state directory"
        );
    }
    // Nothing but the configuration (and the empty PATH directory) is on disk.
    let left: Vec<_> = files(lab.dir.path()).into_keys().collect();
    assert_eq!(left, [lab.dir.path().join("k0rdent.yaml")], "no key file");
    assert_eq!(lab.arm_requests(), 0, "no ARM request without a token");

    // The JSON error says the same.
    let (code, out, _) = run(&mut lab.with_secret(WRONG_SECRET, &["-o", "json", "plan"]));
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        v["remedy"]
            .as_str()
            .unwrap()
            .contains("AZURE_CLIENT_SECRET")
    );
    assert_eq!(v["exit_code"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_id_or_tenant_names_that_variable() {
    let lab = Lab::start().await;
    let secret = lab.emu.client_secret().expose().to_owned();
    let mut c = lab.with_secret(&secret, &["deploy"]);
    c.env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-00000000dead");
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("hint: AZURE_CLIENT_ID 00000000-0000-0000-0000-00000000dead"),
        "{err}"
    );
    let mut c = lab.with_secret(&secret, &["deploy"]);
    c.env("AZURE_TENANT_ID", "11111111-0000-0000-0000-00000000dead");
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("hint: check AZURE_TENANT_ID (11111111-0000-0000-0000-00000000dead)"),
        "{err}"
    );
    // A secret without the ids it belongs to is named as half a configuration.
    let mut c = lab.with_secret(&secret, &["plan"]);
    c.env_remove("AZURE_TENANT_ID");
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("AZURE_TENANT_ID is not"), "{err}");
    assert!(!lab.state().exists());
    assert_eq!(lab.arm_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_and_no_az_names_the_variables_and_az_login() {
    let lab = Lab::start().await;
    for args in [&["plan"][..], &["deploy"]] {
        let (code, _, err) = run(&mut lab.bare(args));
        assert_eq!(code, 1, "{args:?}: {err}");
        let first = err.lines().next().unwrap();
        assert!(
            first.starts_with("error: no Azure credentials: AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE are not set")
                && first.contains("cannot run az"),
            "{args:?}: {err}"
        );
        let hint = err.lines().nth(1).unwrap();
        for needle in [
            "hint: ",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "az login",
        ] {
            assert!(hint.contains(needle), "{needle}: {err}");
        }
        assert!(
            !lab.state().exists(),
            "{args:?} created the state directory"
        );
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_az_that_is_not_logged_in_says_az_login() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::start().await;
    let bin = lab.dir.path().join("empty-bin");
    std::fs::create_dir_all(&bin).unwrap();
    // What `az account get-access-token` prints without a login (Azure CLI docs), exit 1.
    std::fs::write(
        bin.join("az"),
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("az"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = run(&mut lab.bare(&["deploy"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the Azure CLI gave no token") && err.contains("Please run 'az login'"),
        "{err}"
    );
    assert!(
        err.contains("hint: ") && err.contains("`az login`"),
        "{err}"
    );
    assert!(!lab.state().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_leaves_an_existing_deployment_untouched() {
    let lab = Lab::start().await;
    let secret = lab.emu.client_secret().expose().to_owned();
    let (code, out, err) =
        run(&mut lab.with_secret(&secret, &["deploy", "-y", "--until", "create_vms"]));
    assert_eq!(code, 0, "{out}{err}");
    let before = files(&lab.state());
    assert!(
        before
            .keys()
            .any(|p| p.starts_with(lab.state().join("keys"))),
        "the deployment has keys"
    );
    let arm_before = lab.arm_requests();
    for args in COMMANDS {
        let (code, _, err) = run(&mut lab.with_secret(WRONG_SECRET, args));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("AZURE_CLIENT_SECRET"), "{args:?}: {err}");
    }
    assert!(
        files(&lab.state()) == before,
        "the state directory changed (files, bytes or times)"
    );
    assert_eq!(lab.arm_requests(), arm_before, "no ARM request");
    // The right secret still finds everything in place: nothing to do up to the VMs (the
    // VPN phases after them are pending: exit 2). The checked token is the one used: one
    // token request per run.
    let tokens = || {
        lab.emu
            .log()
            .entries()
            .iter()
            .filter(|e| e.path.contains("/oauth2/"))
            .count()
    };
    let before = tokens();
    let (code, out, err) = run(&mut lab.with_secret(&secret, &["plan"]));
    assert_eq!(tokens() - before, 1, "token requests for one plan");
    assert_eq!(code, 2, "{out}{err}");
    for step in [
        "prepare_deployment",
        "setup_network",
        "create_vms/k0s-worker-1",
    ] {
        assert!(
            out.lines().any(|l| l.contains("skip") && l.contains(step)),
            "{step}: {out}"
        );
    }
}
