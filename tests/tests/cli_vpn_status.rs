//! `vpn status` as a table: a header row, one row per node, a diagnosis every node shares
//! printed once under the table, and its remedy (`k0rdent vpn up`) once; the JSON form has
//! every peer. The tunnel is planned but never brought up, so nothing is contacted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

#[tokio::test]
async fn a_tunnel_that_is_down_is_diagnosed_once_for_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let state = k0rdent_tests::vpn_state::planned(dir.path(), &["ctl-1", "ctl-2", "wrk-1"]).await;
    let run = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fake-k0rdent"));
        c.args(["vpn", "status", "--state-dir"])
            .arg(&state)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        if json {
            c.args(["-o", "json"]);
        }
        let o = c.output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(false);
    assert_eq!(code, 3, "a tunnel that is down blocks:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.starts_with("NODE "))
        .unwrap_or_else(|| panic!("no header row:\n{out}"));
    for column in ["TUNNEL IP", "RESULT", "HANDSHAKE", "DIAGNOSIS"] {
        assert!(lines[header].contains(column), "{out}");
    }
    for (i, node) in ["ctl-1", "ctl-2", "wrk-1"].iter().enumerate() {
        let row = lines[header + 1 + i];
        assert!(row.starts_with(node), "{out}");
        assert!(row.ends_with("(below)"), "{out}");
    }
    let shared: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("All 3 nodes: "))
        .collect();
    assert_eq!(shared.len(), 1, "{out}");
    assert!(
        shared[0].contains("the hub interface does not exist"),
        "{out}"
    );
    let hints: Vec<&&str> = lines.iter().filter(|l| l.starts_with("hint: ")).collect();
    assert_eq!(hints, [&"hint: run `k0rdent vpn up`"], "{out}");

    let (code, out) = run(true);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["result"], "vpn_status", "{v}");
    assert_eq!(v["report"]["peers"].as_array().unwrap().len(), 3, "{v}");
}
