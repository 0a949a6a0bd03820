//! Must-show 4 (crate level): with trace logging on during a full create (with a token refresh
//! and a re-created VM), neither the client secret, any bearer token nor the private key in the
//! custom data appears — raw, base64- or URL-encoded — in any log line or in any file of the
//! state directory.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use k0rdent_arm_emulator::{Emulator, fixtures};
use k0rdent_azure::names::types;
use k0rdent_core::{Engine, FileStore, Pipeline, secret::Secret, state::RunOutcome};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every way a secret could show up: raw, percent-encoded, and base64 (standard and URL-safe)
/// at each of the three byte alignments it could have inside a larger encoded blob.
fn encodings(secret: &[u8]) -> Vec<String> {
    let mut out = vec![String::from_utf8_lossy(secret).into_owned()];
    out.push(url::form_urlencoded::byte_serialize(secret).collect());
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for pad in 0..3usize {
            let mut buf = vec![b'x'; pad];
            buf.extend_from_slice(secret);
            let enc = engine.encode(&buf);
            // Drop the characters that mix padding bytes or the tail into the encoding.
            let start = (pad * 4).div_ceil(3) + 1;
            let end = enc.trim_end_matches('=').len().saturating_sub(2);
            if end > start + 8 {
                out.push(enc[start..end].to_owned());
            }
        }
    }
    out
}

fn files_under(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn no_secret_reaches_a_log_line_or_the_state_directory() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .expect("the only subscriber in this test binary");

    let client_secret = "Cl1ent~Secret.Value_with/special+chars=";
    let emu = Emulator::builder()
        .operation_duration(std::time::Duration::from_millis(20))
        .retry_after(std::time::Duration::from_millis(10))
        .service_principal("tenant-0001", "client-0001", client_secret)
        .start()
        .await
        .unwrap();
    let wg_private = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
    let ssh_private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
    let mut spec = fixtures::spec(common::CLUSTER, 3, 2);
    for vm in &mut spec.vms {
        vm.custom_data = Secret::new(
            format!(
                "#cloud-config\nwrite_files:\n- path: /etc/wireguard/wg0.conf\n  content: |\n    [Interface]\n    PrivateKey = {wg_private}\n- path: /root/.ssh/id\n  content: |\n    {ssh_private}\n"
            )
            .into_bytes(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()));
    let azure = k0rdent_azure::AzureDeployment::with_tuning(
        emu.client(),
        spec.clone(),
        fixtures::fast_tuning(),
    )
    .unwrap();
    let pipeline = azure.add_to(Pipeline::builder()).build().unwrap();
    let engine = Engine::builder(pipeline, store)
        .concurrency(10)
        .build()
        .unwrap();
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    // A token refresh and a re-created VM (a second custom data upload).
    emu.expire_tokens();
    emu.delete_resource(types::VM, "k0s-worker-2");
    assert_eq!(
        engine.deploy().await.unwrap().outcome,
        RunOutcome::Succeeded
    );
    // A failed login too: its error must not echo the secret either.
    let bad = Arc::new(k0rdent_azure::credential::ClientSecretCredential::new(
        url::Url::parse(&emu.url()).unwrap(),
        "tenant-0001",
        "client-0001",
        Secret::new(format!("{client_secret}-wrong")),
    ));
    let c = k0rdent_azure::client::ArmClient::builder(&emu.url(), &emu.subscription_id(), bad)
        .build()
        .unwrap();
    let e = c
        .get_opt::<serde_json::Value>("/subscriptions/x", "2022-12-01", &[])
        .await
        .unwrap_err();
    tracing::error!(error = %e, debug = ?e, "login failed as expected");

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("ARM request"), "request logging was captured");
    assert!(logs.contains("fetching an access token"));
    assert!(logs.lines().count() > 100, "{}", logs.lines().count());
    let tokens = emu.issued_tokens();
    assert!(tokens.len() >= 2, "a token was issued and refreshed");

    let custom = spec.vms[0].custom_data.expose().clone();
    let mut secrets: Vec<(String, Vec<u8>)> = vec![
        ("client secret".into(), client_secret.as_bytes().to_vec()),
        (
            "WireGuard private key".into(),
            wg_private.as_bytes().to_vec(),
        ),
        (
            "SSH private key".into(),
            b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ".to_vec(),
        ),
        ("custom data".into(), custom),
    ];
    for t in &tokens {
        secrets.push(("bearer token".into(), t.expose().as_bytes().to_vec()));
    }
    let files = files_under(dir.path());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.ends_with("deployment-state.yaml"))
    );
    for (what, value) in &secrets {
        for enc in encodings(value) {
            assert!(
                !logs.contains(&enc),
                "{what} appears in the logs as {enc:?}"
            );
            for (path, text) in &files {
                assert!(!text.contains(&enc), "{what} appears in {path}");
            }
        }
    }
}
