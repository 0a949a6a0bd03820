//! k0rdent-ssh against a real OpenSSH server on 127.0.0.1 (its own config, rsa + ecdsa +
//! ed25519 host keys, an authorized key): connect, exec, exit codes, timeouts, output bounds,
//! upload, session reuse, host-key pinning and export, changed keys, journaled recreates,
//! classified failures. Runs as root (see `k0rdent_tests::lab`).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use k0rdent_core::{Remedy, secret::Secret, state::DeploymentState};
use k0rdent_ssh::ssh::{
    ConnectOptions, ExecOptions, HostKey, NodeTarget, PinStore, Route, SshConnector,
    SshCredentials, SshError, SshFailure, StatePins, VM_RECREATED, render_known_hosts,
};
use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::sshd::LoopbackHost;

const NODE: &str = "loop-host";

fn connector(host: &LoopbackHost) -> SshConnector {
    SshConnector::new(
        SshCredentials::new("root", Secret::new(host.sshd.client_key())),
        ConnectOptions::default(),
        Route::Direct,
    )
}

fn target(host: &LoopbackHost) -> NodeTarget {
    NodeTarget::new(NODE, host.sshd.addr())
}

#[tokio::test]
async fn exec_reports_exit_codes_output_and_signals() {
    let host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let pins = StatePins::default();
    let s = c.connect(&target(&host), &pins).await.unwrap();

    let out = s.exec("echo hello; echo oops >&2; exit 3").await.unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout_text(), "hello\n");
    assert_eq!(out.stderr_text(), "oops\n");
    let e = out.check().unwrap_err();
    assert_eq!(e.kind(), SshFailure::CommandFailed);
    assert!(e.to_string().contains("exited with status 3: oops"), "{e}");

    let ok = s
        .exec("hostname >/dev/null && echo fine")
        .await
        .unwrap()
        .check()
        .unwrap();
    assert!(ok.success());
    assert_eq!(ok.stdout_text(), "fine\n");

    let killed = s.exec("kill -TERM $$").await.unwrap();
    assert_eq!(killed.signal.as_deref(), Some("TERM"), "{killed:?}");
    assert!(!killed.success());

    let stdin = s
        .exec_with("tr a-z A-Z", ExecOptions::default().stdin("shout\n"))
        .await
        .unwrap();
    assert_eq!(stdin.stdout_text(), "SHOUT\n");
    drop(s);
    host.finish();
}

#[tokio::test]
async fn a_command_past_its_timeout_is_abandoned_and_the_session_still_works() {
    let host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let s = c
        .connect(&target(&host), &StatePins::default())
        .await
        .unwrap();
    let start = Instant::now();
    let e = s
        .exec_with(
            "sleep 30",
            ExecOptions::default().timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(e.kind(), SshFailure::Timeout, "{e}");
    assert!(
        e.to_string().contains("`sleep 30` timed out after 1 s"),
        "{e}"
    );
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!s.is_broken());
    let after = s.exec("echo still-here").await.unwrap();
    assert_eq!(after.stdout_text(), "still-here\n");
    drop(s);
    host.finish();
}

#[tokio::test]
async fn output_is_bounded_and_a_chatty_stderr_does_not_stall_the_command() {
    let host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let s = c
        .connect(&target(&host), &StatePins::default())
        .await
        .unwrap();
    let big = s
        .exec_with(
            "head -c 3000000 /dev/zero; head -c 2000000 /dev/zero >&2; echo done >&2",
            ExecOptions::default()
                .max_output(1 << 20)
                .timeout(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    assert_eq!(big.status, 0);
    assert_eq!(big.stdout.len(), 1 << 20);
    assert!(big.stdout_truncated);
    assert_eq!(big.stderr.len(), 1 << 20);
    assert!(big.stderr_truncated);
    let small = s.exec("printf abc").await.unwrap();
    assert!(!small.stdout_truncated);
    drop(s);
    host.finish();
}

#[tokio::test]
async fn upload_writes_the_file_atomically_with_its_mode() {
    let host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let s = c
        .connect(&target(&host), &StatePins::default())
        .await
        .unwrap();
    let dir = host.slot.dir().join("uploads");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("it's a file.conf");
    let body = b"line one\nline 'two'\n\x00binary\n";
    s.upload(path.to_str().unwrap(), body, 0o640, false)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Overwrite in place; no temp files are left next to it.
    s.upload(path.to_str().unwrap(), b"v2", 0o600, false)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"v2");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let e = s
        .upload("relative/path", b"x", 0o600, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SshFailure::BadInput);
    let e = s
        .upload("/nonexistent-dir/x", b"x", 0o600, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SshFailure::CommandFailed, "{e}");
    drop(s);
    host.finish();
}

#[tokio::test]
async fn one_session_one_tcp_connection_for_many_commands() {
    let host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let pins = StatePins::default();
    let t = target(&host);
    for i in 0..25 {
        let s = c.session(&t, &pins).await.unwrap();
        let out = s.exec(&format!("echo {i}")).await.unwrap();
        assert_eq!(out.stdout_text().trim(), i.to_string());
    }
    let s = c.session(&t, &pins).await.unwrap();
    assert_eq!(s.commands_run(), 25, "one session ran every command");
    assert_eq!(c.attempts(), 1, "the connector opened one TCP connection");
    // The server agrees: one connection, one authentication.
    assert_eq!(
        host.sshd.count("Connection from 127.0.0.1"),
        1,
        "{}",
        host.sshd.log()
    );
    assert_eq!(host.sshd.count("Accepted publickey for root"), 1);
    drop(s);
    c.forget(NODE).await;
    host.finish();
}

#[tokio::test]
async fn all_host_keys_are_pinned_and_the_exported_known_hosts_works_with_openssh() {
    let host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let pins = StatePins::default();
    let s = c.connect(&target(&host), &pins).await.unwrap();
    let state = pins.snapshot().await;
    let pinned = &state.nodes[NODE].ssh_host_keys;
    let mut algs: Vec<&str> = pinned.iter().map(|k| k.algorithm.as_str()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"]);
    let expected: Vec<HostKey> = host
        .sshd
        .host_public_keys()
        .iter()
        .map(|l| HostKey::from_openssh(l).unwrap())
        .collect();
    for k in &expected {
        assert!(pinned.contains(&k.to_record()), "{k} not pinned");
    }
    assert!(expected.contains(s.host_key()));
    drop(s);

    let addr = host.sshd.addr();
    let kh = host.slot.dir().join("known_hosts");
    std::fs::write(
        &kh,
        render_known_hosts([(addr.ip().to_string(), addr.port(), pinned.as_slice())]),
    )
    .unwrap();
    let empty = host.slot.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let ssh = |known: &std::path::Path, alg: &str| {
        cmd::output(
            "ssh",
            &[
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                &format!("UserKnownHostsFile={}", known.display()),
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                &format!("HostKeyAlgorithms={alg}"),
                "-i",
                &host.sshd.client_key_path().display().to_string(),
                "-p",
                &addr.port().to_string(),
                "root@127.0.0.1",
                "echo via-openssh",
            ],
        )
    };
    for alg in [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
    ] {
        let out = ssh(&kh, alg);
        assert!(
            out.status.success(),
            "OpenSSH rejected the exported known_hosts for {alg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "via-openssh\n");
        // Control: without the file, strict checking refuses.
        let out = ssh(&empty, alg);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"));
    }

    // libssh2 forced to each algorithm matches the pins without re-pinning.
    for methods in ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"] {
        let forced = SshConnector::new(
            SshCredentials::new("root", Secret::new(host.sshd.client_key())),
            ConnectOptions {
                host_key_methods: Some(methods.into()),
                ..ConnectOptions::default()
            },
            Route::Direct,
        );
        let s = forced.connect(&target(&host), &pins).await.unwrap();
        assert_eq!(
            s.commands_run(),
            0,
            "{methods}: matched the pins, no host-key read"
        );
        let alg = if methods.starts_with("rsa") {
            "ssh-rsa"
        } else {
            methods
        };
        assert_eq!(s.host_key().algorithm(), alg);
    }
    host.finish();
}

#[tokio::test]
async fn a_changed_host_key_is_refused_before_authentication() {
    let mut host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let pins = StatePins::default();
    pins.update(|s| {
        s.nodes.entry(NODE.into()).or_default().vm_id = Some("vm-1".into());
    })
    .await;
    let t = target(&host).with_vm_id("vm-1");
    drop(c.connect(&t, &pins).await.unwrap());
    let before = pins.snapshot().await.nodes[NODE].ssh_host_keys.clone();
    let accepted = host.sshd.count("Accepted publickey");

    host.sshd.regenerate_host_keys(&host.slot);
    let e = c.connect(&t, &pins).await.unwrap_err();
    assert_eq!(e.kind(), SshFailure::HostKeyChanged);
    let msg = e.to_string();
    assert!(
        msg.contains(NODE) && msg.contains(&host.sshd.addr().to_string()),
        "{msg}"
    );
    assert!(msg.contains("SHA256:"), "{msg}");
    assert!(
        e.remedy()
            .is_some_and(|r| r.contains(&format!("nodes.{NODE}.ssh_host_keys"))),
        "{:?}",
        e.remedy()
    );
    assert_eq!(
        pins.snapshot().await.nodes[NODE].ssh_host_keys,
        before,
        "pins unchanged"
    );
    assert_eq!(
        host.sshd.count("Accepted publickey"),
        accepted,
        "no authentication was attempted"
    );
    assert_eq!(host.sshd.count("Failed publickey"), 0);

    // A new vmId alone does not allow a re-pin: our journal must have recorded the recreate.
    let moved = target(&host).with_vm_id("vm-2");
    let e = c.connect(&moved, &pins).await.unwrap_err();
    assert_eq!(e.kind(), SshFailure::HostKeyChanged);
    host.finish();
}

#[tokio::test]
async fn a_journaled_recreate_re_pins_the_new_keys() {
    let mut host = LoopbackHost::start(&[]);
    let c = connector(&host);
    let pins = StatePins::default();
    let old = target(&host).with_vm_id("vm-1");
    drop(c.connect(&old, &pins).await.unwrap());
    assert_eq!(
        pins.pinned(NODE).await.unwrap().vm_id.as_deref(),
        Some("vm-1")
    );

    host.sshd.regenerate_host_keys(&host.slot);
    // The Azure step journals the recreate it performs (key `vm_recreated`).
    pins.update(|s| {
        let id = k0rdent_core::StepId::parse(&format!("create_vms/{NODE}")).unwrap();
        s.record_mut(&id)
            .journal
            .0
            .push(k0rdent_core::state::JournalEntry {
                at: chrono::Utc::now(),
                key: VM_RECREATED.into(),
                value: serde_json::json!({"node": NODE, "old_vm_id": "vm-1"}),
            });
    })
    .await;
    // Same vmId as pinned: the journal alone is not enough either.
    let e = c.connect(&old, &pins).await.unwrap_err();
    assert_eq!(e.kind(), SshFailure::HostKeyChanged);

    let new = target(&host).with_vm_id("vm-2");
    let s = c.connect(&new, &pins).await.unwrap();
    let state: DeploymentState = pins.snapshot().await;
    let rec = &state.nodes[NODE];
    assert_eq!(rec.vm_id.as_deref(), Some("vm-2"));
    for line in host.sshd.host_public_keys() {
        assert!(
            rec.ssh_host_keys
                .contains(&HostKey::from_openssh(&line).unwrap().to_record())
        );
    }
    assert_eq!(s.exec("echo ok").await.unwrap().stdout_text(), "ok\n");
    drop(s);
    host.finish();
}

#[tokio::test]
async fn failures_are_classified() {
    let host = LoopbackHost::start(&[]);
    let pins = StatePins::default();

    // A key the server does not authorize.
    let dir = host.slot.dir().join("other-key");
    std::fs::create_dir_all(&dir).unwrap();
    let other = dir.join("id");
    cmd::run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            other.to_str().unwrap(),
        ],
    );
    let wrong = SshConnector::new(
        SshCredentials::new(
            "root",
            Secret::new(std::fs::read_to_string(&other).unwrap()),
        ),
        ConnectOptions::default(),
        Route::Direct,
    );
    let e = wrong.connect(&target(&host), &pins).await.unwrap_err();
    assert_eq!(e.kind(), SshFailure::AuthRefused, "{e}");
    assert!(e.remedy().unwrap().contains("authorized_keys"));
    assert!(
        pins.snapshot()
            .await
            .nodes
            .get(NODE)
            .is_none_or(|n| n.ssh_host_keys.is_empty()),
        "nothing is pinned when the connection did not complete"
    );

    // Nothing listening.
    let closed: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = connector(&host);
    let e = c
        .connect(&NodeTarget::new("nobody", closed), &pins)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SshFailure::Unreachable, "{e}");

    // Something that accepts TCP but never speaks SSH.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let quick = SshConnector::new(
        SshCredentials::new("root", Secret::new(host.sshd.client_key())),
        ConnectOptions {
            handshake_timeout: Duration::from_secs(1),
            ..ConnectOptions::default()
        },
        Route::Direct,
    );
    let start = Instant::now();
    let e = quick
        .connect(&NodeTarget::new("silent", silent_addr), &pins)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), SshFailure::Timeout, "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(silent);

    let e: SshError = c
        .connect(&NodeTarget::new("nobody", closed), &pins)
        .await
        .unwrap_err();
    assert!(e.is_transient());
    host.finish();
}
