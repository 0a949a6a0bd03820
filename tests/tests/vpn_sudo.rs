//! Without root, `vpn up` uses sudo, which never prompts from the background process group
//! the runner puts wg-quick in: under `-y` (or without a terminal) it runs `sudo -n`, and when
//! a password would be needed the run fails at once with a message saying what to do.
//! Run as the unprivileged `nobody`, who has no sudo rights, with the real sudo.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use k0rdent_tests::vpn_state::state_for_nobody;

#[tokio::test]
async fn without_root_sudo_never_prompts_under_yes_or_without_a_terminal_and_says_what_to_do() {
    k0rdent_tests::lab::require_root();
    let dir = tempfile::tempdir().unwrap();
    let state = state_for_nobody(dir.path()).await;
    for args in [&["vpn", "up", "-y"][..], &["vpn", "up"][..]] {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_fake-k0rdent"))
            .args(args)
            .arg("--state-dir")
            .arg(&state)
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
        let out = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("`{}` hangs (a sudo prompt?)", args.join(" ")));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("sudo -n"), "{args:?}: ran sudo -n: {err}");
        assert!(err.contains("a password is required"), "{args:?}: {err}");
        assert!(
            err.contains("hint: sudo needs your password and may not ask for it here"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("run `sudo -v` in this terminal first"),
            "{err}"
        );
        assert!(
            !Path::new("/sys/class/net/wgk0sudo0001").exists(),
            "nothing was brought up"
        );
    }
}

#[tokio::test]
async fn in_a_terminal_sudo_validates_once_in_the_foreground_before_wg_quick_runs() {
    k0rdent_tests::lab::require_root();
    let dir = tempfile::tempdir().unwrap();
    let state = state_for_nobody(dir.path()).await;
    // `script` gives the CLI a terminal whose foreground process group is its own, as an
    // interactive shell does. `nobody` may not use sudo at all: sudo says so on the
    // terminal (it could have asked for a password there), and nothing else runs.
    let line = format!(
        "setpriv --reuid=nobody --regid=nogroup --clear-groups {} vpn up --state-dir {}",
        env!("CARGO_BIN_EXE_fake-k0rdent"),
        state.display()
    );
    let child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output().unwrap()));
    let out = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("`vpn up` in a terminal hangs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Sorry, user nobody may not run sudo"),
        "sudo -v ran on the terminal: {text}"
    );
    assert!(
        text.contains("sudo could not validate your credentials: `") && text.contains("sudo -v -p"),
        "{text}"
    );
    assert!(!text.contains("wg-quick up"), "wg-quick never ran: {text}");
}
