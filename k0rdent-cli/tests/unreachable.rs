//! Issue #7 item 11: an endpoint that cannot be reached fails fast and says so. A closed port,
//! a name that does not resolve and a TLS failure, on the ARM endpoint and on the token
//! endpoint, each end the real `k0rdent` binary within seconds with one line naming the
//! endpoint (before the fix a closed ARM port cost a silent 60 s and ended in "did not answer
//! within 60s"). And SIGTERM is handled like the first Ctrl-C: the run stops at a safe point,
//! exits 130 and the next run converges.
//!
//! The time bounds below are not performance measurements: they tell "failed at once" from
//! "retried until the 60 s observation limit", with ample room for a loaded machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests report what they measured

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use k0rdent_arm_emulator::Emulator;

const CONFIG: &str = include_str!("../../tests/fixtures/lab-3x2.yaml");

/// Well under the 60 s that a retried connection failure used to take.
const FAST: Duration = Duration::from_secs(15);

struct Lab {
    emu: Emulator,
    dir: tempfile::TempDir,
}

impl Lab {
    async fn start(b: k0rdent_arm_emulator::EmulatorBuilder) -> Lab {
        let emu = b.start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k0rdent.yaml"), CONFIG).unwrap();
        Lab { emu, dir }
    }

    /// `k0rdent` with the ARM endpoint and the authority host given.
    fn k0rdent(&self, arm: &str, authority: &str, args: &[&str]) -> Command {
        let mut c = common::k0rdent(&self.emu, self.dir.path());
        c.env("K0RDENT_CONFIG", self.dir.path().join("k0rdent.yaml"))
            .env("K0RDENT_STATE_DIR", self.dir.path().join("state"))
            .args(args)
            .env("AZURE_AUTHORITY_HOST", authority)
            .env("K0RDENT_ARM_ENDPOINT", arm);
        c
    }

    /// Runs to the end; exit code, stdout + stderr, and how long it took.
    fn run(&self, arm: &str, authority: &str, args: &[&str]) -> (i32, String, Duration) {
        let t0 = Instant::now();
        let o = self.k0rdent(arm, authority, args).output().unwrap();
        let took = t0.elapsed();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.code().unwrap_or(-1), text, took)
    }
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// The lines that name `endpoint`.
fn naming<'a>(text: &'a str, endpoint: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(endpoint)).collect()
}

fn assert_fast_and_named(what: &str, code: i32, text: &str, took: Duration, endpoint: &str) {
    eprintln!("{what}: exit {code} after {took:?}\n{text}");
    assert!(
        took < FAST,
        "{what}: took {took:?} (the fix makes it fail within seconds)\n{text}"
    );
    assert_ne!(code, 0, "{what}: {text}");
    assert_ne!(code, 130, "{what}: {text}");
    let lines = naming(text, endpoint);
    assert!(
        !lines.is_empty(),
        "{what}: no line names {endpoint}\n{text}"
    );
    assert!(
        !text.contains("did not answer within"),
        "{what}: still the observer's time limit\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_arm_port_fails_within_seconds_naming_the_endpoint() {
    let lab = Lab::start(Emulator::builder()).await;
    let arm = closed_port();
    for args in [&["plan"][..], &["deploy", "-y", "--until", "create_vms"]] {
        let (code, text, took) = lab.run(&arm, &lab.emu.url(), args);
        assert_fast_and_named(&format!("{args:?}"), code, &text, took, &arm);
        assert!(
            text.to_ascii_lowercase().contains("connection refused"),
            "{args:?}: the cause is named\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_token_endpoint_fails_within_seconds_naming_it() {
    let lab = Lab::start(Emulator::builder()).await;
    let authority = closed_port();
    let (code, text, took) = lab.run(&lab.emu.url(), &authority, &["plan"]);
    assert_fast_and_named("plan", code, &text, took, &authority);
    assert!(
        text.to_ascii_lowercase().contains("connection refused"),
        "{text}"
    );
    assert!(
        lab.emu.log().is_empty(),
        "nothing reached ARM without a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_arm_host_that_does_not_resolve_fails_within_seconds_naming_it() {
    let lab = Lab::start(Emulator::builder()).await;
    // `.invalid` never resolves (RFC 6761): the lookup fails without any connection.
    let arm = "https://k0rdent-arm.invalid";
    let (code, text, took) = lab.run(arm, &lab.emu.url(), &["plan"]);
    assert_fast_and_named("plan", code, &text, took, arm);
    assert!(
        text.to_ascii_lowercase().contains("resolve"),
        "the DNS failure is named\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_failure_fails_at_once_naming_the_endpoint() {
    let lab = Lab::start(Emulator::builder()).await;
    // https to the emulator's plain-HTTP port: the TLS handshake fails on a real server.
    let arm = lab.emu.url().replace("http://", "https://");
    let (code, text, took) = lab.run(&arm, &lab.emu.url(), &["plan"]);
    assert_fast_and_named("plan", code, &text, took, &arm);
    assert!(text.contains("TLS"), "the TLS failure is named\n{text}");
    // Not retried: one handshake per ARM request the observer makes, not eight.
    let attempts = lab
        .emu
        .log()
        .entries()
        .iter()
        .filter(|e| !e.path.contains("oauth2"))
        .count();
    assert_eq!(attempts, 0, "TLS never reached the HTTP layer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_tls_failure_fails_at_once_naming_it() {
    let lab = Lab::start(Emulator::builder()).await;
    let authority = lab.emu.url().replace("http://", "https://");
    let (code, text, took) = lab.run(&lab.emu.url(), &authority, &["plan"]);
    assert_fast_and_named("plan", code, &text, took, &authority);
    assert!(text.contains("TLS"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_handled_like_the_first_ctrl_c() {
    // Slow operations, so the run is surely still converging when the signal comes.
    let lab = Lab::start(
        Emulator::builder()
            .operation_duration(Duration::from_secs(3))
            .retry_after(Duration::from_millis(200)),
    )
    .await;
    let url = lab.emu.url();
    let child = lab
        .k0rdent(&url, &url, &["deploy", "-y", "--until", "create_vms"])
        .spawn()
        .unwrap();
    // Signal once a VM's creation is accepted: an operation is pending in Azure.
    let pending = lab
        .emu
        .log()
        .wait_for(Duration::from_secs(60), |l| {
            l.iter().any(|e| {
                e.method == "PUT"
                    && e.resource_type.as_deref() == Some("Microsoft.Compute/virtualMachines")
                    && (200..300).contains(&e.status)
            })
        })
        .await;
    assert!(pending, "a VM PUT was accepted");
    let t0 = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "exit 130 as for Ctrl-C\n{text}"
    );
    assert!(
        t0.elapsed() < FAST,
        "stopped at the next safe point, took {:?}",
        t0.elapsed()
    );
    assert!(text.contains("interrupted"), "{text}");
    // The state is valid and records the interruption; the next run resumes without a
    // second VM PUT for what was pending.
    let (code, shown, _) = lab.run(&url, &url, &["state", "show"]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("interrupted"), "{shown}");
}
