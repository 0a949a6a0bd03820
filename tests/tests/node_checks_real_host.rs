//! The node checks (cloud-init, wg0, sudo) as gates against a real host: sshd on 127.0.0.1,
//! the real Debian `cloud-init` and `sudo`, and fake ones placed first on root's PATH.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use k0rdent_core::{
    StepId,
    gate::{Gate, GateContext, GateVerdict},
    secret::Secret,
    state::DeploymentState,
};
use k0rdent_ssh::node_checks::{NodeCheck, NodeCheckGate};
use k0rdent_ssh::ssh::{
    ConnectOptions, NodeTarget, Route, SshConnector, SshCredentials, StatePins,
};
use k0rdent_tests::lab::sshd::LoopbackHost;

/// A gate and the pins its direct checks share (learned on the first, checked after).
struct Checked {
    gate: NodeCheckGate,
    pins: StatePins,
}

impl Checked {
    async fn verdict(&self) -> GateVerdict {
        self.gate.verdict(&self.pins).await
    }
}

impl std::ops::Deref for Checked {
    type Target = NodeCheckGate;
    fn deref(&self) -> &NodeCheckGate {
        &self.gate
    }
}

fn gate(host: &LoopbackHost, check: NodeCheck) -> Checked {
    let connector = Arc::new(SshConnector::new(
        SshCredentials::new("root", Secret::new(host.sshd.client_key())),
        ConnectOptions::default(),
        Route::Direct,
    ));
    Checked {
        gate: NodeCheckGate::new(
            check,
            NodeTarget::new("real-host", host.sshd.addr()),
            connector,
        ),
        pins: StatePins::default(),
    }
}

fn failed_with(v: &GateVerdict, needle: &str) -> bool {
    matches!(v, GateVerdict::Fail { reason, .. } if reason.contains(needle))
}

async fn through_gate_trait(g: &NodeCheckGate) -> GateVerdict {
    let ctx = GateContext {
        step: StepId::parse("install_k0s").unwrap(),
        state: Arc::new(DeploymentState::default()),
        watching: false,
    };
    g.check(&ctx).await
}

#[tokio::test]
async fn cloud_init_check_reads_the_real_status_and_each_result() {
    let host = LoopbackHost::start(&[]);
    let g = gate(&host, NodeCheck::CloudInit);
    assert_eq!(g.name(), "cloud_init_done");
    assert!(
        g.wait(&DeploymentState::default()).is_some(),
        "cloud-init gets a wait budget"
    );

    // Debian's real cloud-init on a machine it never booted: "not run".
    let v = through_gate_trait(&g).await;
    assert!(failed_with(&v, "cloud-init has not finished yet"), "{v:?}");

    let fake = |json: &str, rc: i32| format!("cat <<'EOF'\n{json}\nEOF\nexit {rc}");
    host.fake_command(
        "cloud-init",
        &fake(
            r#"{"status": "done", "errors": [], "detail": "DataSourceAzure"}"#,
            0,
        ),
    );
    let v = g.verdict().await;
    assert_eq!(v, GateVerdict::pass("real-host: cloud-init done"));

    host.fake_command(
        "cloud-init",
        &fake(
            r#"{"status": "error", "errors": ["('scripts_user', RuntimeError('Runparts: 1 failures'))"]}"#,
            1,
        ),
    );
    let v = g.verdict().await;
    assert!(
        failed_with(&v, "cloud-init failed: ('scripts_user'"),
        "{v:?}"
    );
    let GateVerdict::Fail { remedy, .. } = &v else {
        unreachable!()
    };
    assert!(remedy.as_deref().unwrap().contains("cloud-init-output.log"));

    host.fake_command(
        "cloud-init",
        &fake(
            r#"{"status": "done", "extended_status": "degraded done", "errors": [],
                "recoverable_errors": {"DEPRECATED": ["Key 'ntp' is deprecated"]}}"#,
            2,
        ),
    );
    let v = g.verdict().await;
    assert!(
        matches!(&v, GateVerdict::Pass { evidence } if evidence.contains("DEPRECATED: Key 'ntp'")),
        "{v:?}"
    );

    host.fake_command("cloud-init", &fake(r#"{"status": "running"}"#, 0));
    assert!(failed_with(&g.verdict().await, "has not finished yet"));
    drop(g);
    host.finish();
}

#[tokio::test]
async fn without_a_usable_cloud_init_the_boot_finished_marker_decides() {
    // The server's sessions see /usr/bin/cloud-init as /dev/null: it cannot run.
    let host = LoopbackHost::start(&["/usr/bin/cloud-init"]);
    let g = gate(&host, NodeCheck::CloudInit);
    let v = g.verdict().await;
    assert!(failed_with(&v, "unreadable cloud-init status"), "{v:?}");
    std::fs::create_dir_all(host.cloud_dir.join("instance")).unwrap();
    std::fs::write(host.cloud_dir.join("instance/boot-finished"), "done\n").unwrap();
    let v = g.verdict().await;
    assert!(
        matches!(&v, GateVerdict::Pass { evidence } if evidence.contains("boot-finished present (`cloud-init status --format json` unusable")),
        "{v:?}"
    );
    drop(g);
    host.finish();
}

#[tokio::test]
async fn sudo_check_passes_with_real_sudo_and_fails_when_it_wants_a_password() {
    let host = LoopbackHost::start(&[]);
    let g = gate(&host, NodeCheck::Sudo);
    let v = through_gate_trait(&g).await;
    assert_eq!(
        v,
        GateVerdict::pass("real-host: sudo works without a password")
    );
    host.fake_command("sudo", "echo 'sudo: a password is required' >&2; exit 1");
    let v = g.verdict().await;
    assert!(failed_with(&v, "sudo asks for a password"), "{v:?}");
    host.remove_fake("sudo");
    assert!(g.verdict().await.passed());
    drop(g);
    host.finish();
}

#[tokio::test]
async fn wg0_check_fails_on_a_host_without_the_interface() {
    let host = LoopbackHost::start(&[]);
    let g = gate(
        &host,
        NodeCheck::Wireguard {
            address: "172.30.99.11".parse().unwrap(),
        },
    );
    let v = g.verdict().await;
    assert!(failed_with(&v, "real-host: wg0 does not exist"), "{v:?}");
    drop(g);
    host.finish();
}
