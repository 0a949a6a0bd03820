//! The nodes layer's observer against lab nodes reached through a real WireGuard tunnel:
//! what it reads (cloud-init, wg0, k0s), that it keeps one SSH connection per node for the
//! run, that it contacts no node while the hub interface is gone, and that a silent peer is
//! reported with the tunnel's diagnosis within the probe timeout, without an SSH attempt.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k0rdent_cli::deployment::nodes::{K0sStatus, NodeFact, NodesFacts, NodesObserver};
use k0rdent_core::observation::{Observer, Snapshot};
use k0rdent_core::state::keys;
use k0rdent_core::store::KeyStore;
use k0rdent_ssh::node_checks::WireguardStatus;
use k0rdent_ssh::ssh::ConnectOptions;
use k0rdent_tests::lab::tunnel::Tunnel;

async fn observe(o: &NodesObserver, t: &Tunnel) -> Result<NodesFacts, String> {
    match o.observe(&t.state).await {
        Ok(f) => {
            let mut s = Snapshot::new();
            s.insert(f);
            Ok(s.get::<NodesFacts>().unwrap().clone())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_read_over_one_session_each_and_never_while_the_tunnel_is_down() {
    let t = Tunnel::up(&["ctl-n", "wrk-n"], None).await;
    t.wait_all_alive(Duration::from_secs(10))
        .await
        .unwrap_or_else(|r| panic!("{r}"));
    t.store
        .put_secret(keys::SSH_ADMIN, t.lab.admin_key_text().as_bytes())
        .await
        .unwrap();
    // ctl-n has a k0s controller running (a stand-in binary answering `status -o json` as
    // k0s does); wrk-n has none.
    let fake = t.lab.node("ctl-n").root.join("sbin/k0s");
    std::fs::write(
        &fake,
        "#!/bin/sh\n[ \"$1 $2 $3\" = 'status -o json' ] || exit 2\n\
         echo '{\"Version\":\"v1.33.2+k0s.0\",\"Pid\":4242,\"PPid\":1,\"Role\":\"controller\",\"Workloads\":false,\"SingleNode\":false}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    let keys: Arc<dyn KeyStore> = Arc::new(t.store.clone());
    let o = NodesObserver::new(keys.clone(), "root", ConnectOptions::default());
    let f = observe(&o, &t).await.unwrap();
    println!("{f:#?}");
    match &f.nodes["ctl-n"] {
        NodeFact::Seen { wireguard, k0s, .. } => {
            assert_eq!(*wireguard, WireguardStatus::Up);
            assert_eq!(
                *k0s,
                K0sStatus::Running {
                    role: "controller".into(),
                    version: "v1.33.2+k0s.0".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(
            &f.nodes["wrk-n"],
            NodeFact::Seen {
                k0s: K0sStatus::NotInstalled,
                ..
            }
        ),
        "{:?}",
        f.nodes["wrk-n"]
    );
    // A second observation in the same run reuses the sessions.
    let accepted = |n: &str| t.lab.node(n).sshd.count("Accepted publickey");
    observe(&o, &t).await.unwrap();
    assert_eq!((accepted("ctl-n"), accepted("wrk-n")), (1, 1));

    // wrk-n's WireGuard dies: it is reported with the tunnel's diagnosis, quickly, and
    // without a new SSH connection; ctl-n is still read.
    t.lab.node("wrk-n").kill_wireguard();
    let start = Instant::now();
    let f = observe(&o, &t).await.unwrap();
    let took = start.elapsed();
    match &f.nodes["wrk-n"] {
        NodeFact::Unreachable(why) => {
            assert!(why.starts_with("no SSH attempt: peer wrk-n"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(f.nodes["ctl-n"], NodeFact::Seen { .. }));
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert_eq!(accepted("wrk-n"), 1);

    // The hub interface is gone. Before connect_vpn ever completed that is no failure: no
    // node is contacted and nothing is reported.
    t.vpn.down().await.unwrap();
    let o2 = NodesObserver::new(keys, "root", ConnectOptions::default());
    let f = observe(&o2, &t).await.unwrap();
    assert!(f.nodes.is_empty(), "{f:?}");
    // Once the tunnel was connected, it is: the observer fails at once and contacts nobody.
    let mut connected = t.state.clone();
    connected
        .record_mut(&k0rdent_core::StepId::parse("connect_vpn").unwrap())
        .status = k0rdent_core::state::Status::Completed;
    let start = Instant::now();
    let e = o2.observe(&connected).await.unwrap_err().to_string();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        e.contains("the tunnel is down") && e.contains("vpn up"),
        "{e}"
    );
    assert_eq!((accepted("ctl-n"), accepted("wrk-n")), (1, 1));
    t.lab.teardown();
}
