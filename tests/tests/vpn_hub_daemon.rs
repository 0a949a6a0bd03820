//! The hub's wireguard-go outlives the CLI that started it: `k0rdent vpn up` (the real CLI
//! code path: wg-quick through the process runner, in a session of its own) runs as a shell
//! job would, exits, its job's process group then gets the terminal's hangup and a Ctrl-C —
//! and the tunnel still works. `k0rdent vpn down` then stops it.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use k0rdent_tests::lab::cmd;
use k0rdent_tests::lab::tunnel::Tunnel;
use k0rdent_tests::lab::wireguard::find_wireguard_go;

fn stat_field(pid: i32, n: usize) -> i32 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = s.rsplit_once(") ").unwrap();
    rest.split_whitespace().nth(n).unwrap().parse().unwrap()
}

fn pgid_of(pid: i32) -> i32 {
    stat_field(pid, 2)
}

fn session_of(pid: i32) -> i32 {
    stat_field(pid, 3)
}

/// The real CLI (`vpn` does not use the fake world's pipeline) as a shell job: in a process
/// group of its own, under `-y` (never prompts).
fn vpn(state: &Path, verb: &str) -> (i32, i32, String) {
    let mut c =
        k0rdent_tests::fake_world::command(Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")), state, 0);
    c.args(["vpn", verb, "-y"]).process_group(0);
    let child = c.spawn().unwrap();
    let pgid = i32::try_from(child.id()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        pgid,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn signal_group(pgid: i32, sig: rustix::process::Signal) {
    let p = rustix::process::Pid::from_raw(pgid).unwrap();
    let _ = rustix::process::kill_process_group(p, sig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_wireguard_go_survives_the_exit_of_the_cli_that_started_it() {
    let t = Tunnel::prepared(&["ctl-g", "wrk-g"], None).await;
    let state = t.lab.state_dir();
    let iface = t.net.interface.to_string();

    let (code, job, out) = vpn(&state, "up");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{iface}: done")), "{out}");
    let go = find_wireguard_go(&iface).expect("wireguard-go runs after the CLI exited");
    t.hub_is_up();
    assert_ne!(pgid_of(go), job, "not in the CLI's process group");
    assert_ne!(
        session_of(go),
        session_of(i32::try_from(std::process::id()).unwrap()),
        "in a session of its own, away from the terminal's"
    );

    // What a terminal does to a finished job's group when it hangs up or the user presses
    // Ctrl-C: nothing reaches the daemon.
    signal_group(job, rustix::process::Signal::HUP);
    signal_group(job, rustix::process::Signal::INT);
    assert!(
        !cmd::wait_for(0.5, || !cmd::alive(go)),
        "wireguard-go {go} died with the CLI's job"
    );
    let took = t
        .wait_all_alive(Duration::from_secs(5))
        .await
        .unwrap_or_else(|r| panic!("the tunnel does not work after the CLI exited:\n{r}"));
    println!("every peer answered {took:?} after the CLI exited");

    let (code, _, out) = vpn(&state, "down");
    assert_eq!(code, 0, "{out}");
    assert!(cmd::wait_for(5.0, || !cmd::alive(go)), "vpn down stops it");
    t.finish().await;
}
