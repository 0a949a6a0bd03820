//! Node-access benchmark on the lab (root): the "VPN up" gate's decision time with all peers
//! up and with one down, SSH connect time (first contact with pinning, pinned over the
//! tunnel, direct), and per-command time on a reused session. Prints a table.
//!
//! Run: `cargo bench -p k0rdent-tests --bench node_access` (as root).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k0rdent_ssh::ssh::{NodeTarget, Route, StatePins};
use k0rdent_tests::lab::tunnel::Tunnel;

struct Row {
    what: &'static str,
    samples: Vec<Duration>,
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print(rows: &[Row]) {
    println!(
        "| {:<58} | {:>4} | {:>9} | {:>9} | {:>9} | {:>9} |",
        "measurement (ms)", "n", "min", "median", "p95", "max"
    );
    println!(
        "|{:-<60}|{:->6}|{:->11}|{:->11}|{:->11}|{:->11}|",
        "", "", "", "", "", ""
    );
    for r in rows {
        let mut s = r.samples.clone();
        s.sort();
        let n = s.len();
        let p95 = s[((n * 95).div_ceil(100)).saturating_sub(1).min(n - 1)];
        println!(
            "| {:<58} | {:>4} | {:>9} | {:>9} | {:>9} | {:>9} |",
            r.what,
            n,
            ms(s[0]),
            ms(s[n / 2]),
            ms(p95),
            ms(s[n - 1])
        );
    }
}

async fn time<T>(f: impl std::future::Future<Output = T>) -> (Duration, T) {
    let start = Instant::now();
    let v = f.await;
    (start.elapsed(), v)
}

async fn bench() -> Vec<Row> {
    let t = Tunnel::up(&["bench-ctl", "bench-wrk"], None).await;
    t.wait_all_alive(Duration::from_secs(5)).await.unwrap();
    let mut rows = Vec::new();

    let mut s = Vec::new();
    for _ in 0..50 {
        let (d, r) = time(t.report()).await;
        assert!(r.all_alive(), "{r}");
        s.push(d);
    }
    rows.push(Row {
        what: "gate decision, 2 peers, all up",
        samples: s,
    });

    let pins = StatePins::new(t.state.clone());
    let target = NodeTarget::tunnel(&t.state, "bench-ctl").unwrap();
    let (d, c) = time(async {
        let c = t.connector(t.tunnel_route());
        c.connect(&target, &pins).await.unwrap();
        c
    })
    .await;
    assert_eq!(c.attempts(), 1);
    rows.push(Row {
        what: "SSH connect, first contact (VPN check + pin 3 keys)",
        samples: vec![d],
    });

    let mut s = Vec::new();
    for _ in 0..20 {
        let (d, sess) = time(c.connect(&target, &pins)).await;
        drop(sess.unwrap());
        s.push(d);
    }
    rows.push(Row {
        what: "SSH connect over the tunnel, pinned (incl. VPN check)",
        samples: s,
    });

    let direct = t.connector(Route::Direct);
    let public = NodeTarget::new(
        "bench-ctl",
        SocketAddr::new(t.lab.public_ips()["bench-ctl"], 22),
    );
    let mut s = Vec::new();
    for _ in 0..20 {
        let (d, sess) = time(direct.connect(&public, &pins)).await;
        drop(sess.unwrap());
        s.push(d);
    }
    rows.push(Row {
        what: "SSH connect direct (no VPN check), pinned",
        samples: s,
    });

    let session = c.session(&target, &pins).await.unwrap();
    let mut s = Vec::new();
    for _ in 0..200 {
        let (d, out) = time(session.exec("true")).await;
        assert!(out.unwrap().success());
        s.push(d);
    }
    rows.push(Row {
        what: "command `true` on a reused session (over the tunnel)",
        samples: s,
    });
    let mut s = Vec::new();
    for _ in 0..50 {
        let (d, out) = time(session.exec("head -c 65536 /dev/zero")).await;
        assert_eq!(out.unwrap().stdout.len(), 65536);
        s.push(d);
    }
    rows.push(Row {
        what: "command printing 64 KiB on a reused session",
        samples: s,
    });
    drop(session);

    t.lab.node("bench-wrk").kill_wireguard();
    let mut s = Vec::new();
    for _ in 0..5 {
        let (d, r) = time(t.report()).await;
        assert!(
            !r.all_alive() && r.peer("bench-ctl").unwrap().is_alive(),
            "{r}"
        );
        s.push(d);
    }
    rows.push(Row {
        what: "gate decision, 2 peers, one down (2 s probe timeout)",
        samples: s,
    });
    t.finish().await;
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass test flags: ignore both.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(bench());
    print(&rows);
}
