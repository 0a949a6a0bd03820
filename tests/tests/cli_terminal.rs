//! The CLI as a terminal shows it: the real binary (over the fake world) in a pseudo-terminal
//! of fixed size and `TERM`, its output read through a terminal emulator (vt100), not as raw
//! bytes. Colours where they belong, the live progress while a deploy runs (a line per
//! phase with N of M and the elapsed time, a spinner per step in flight) and the final
//! summary; through a pipe the same run has no escape code at all; `NO_COLOR` and `--color`
//! do what they say.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

const ROWS: u16 = 30;
const COLS: u16 = 100;

/// A run of the fake CLI in a pseudo-terminal, its screen kept by a vt100 parser.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn std::io::Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    reader: std::thread::JoinHandle<()>,
}

impl Screen {
    fn spawn(state: &Path, delay_ms: u64, env: &[(&str, &str)], args: &[&str]) -> Screen {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_fake-k0rdent"));
        cmd.env_clear();
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd.env("TERM", "xterm-256color");
        cmd.env("K0RDENT_STATE_DIR", state);
        cmd.env("FAKE_WORLD_DIR", state.join("world"));
        cmd.env("FAKE_STEP_DELAY_MS", delay_ms.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args);
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().unwrap();
        let writer = pty.master.take_writer().unwrap();
        let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
        let p = parser.clone();
        // Keep the master open while reading: dropping it hangs up the child's terminal.
        let master = pty.master;
        let reader = std::thread::spawn(move || {
            let _master = master;
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                p.lock().unwrap().process(&buf[..n]);
            }
        });
        Screen {
            parser,
            writer,
            child,
            reader,
        }
    }

    /// Types `text` (a line ends with `\r`, as a terminal sends Enter).
    fn type_in(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).unwrap();
        self.writer.flush().unwrap();
    }

    /// Waits until the screen shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.contents().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn contents(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// The screen's rows as text.
    fn rows(&self) -> Vec<String> {
        self.parser.lock().unwrap().screen().rows(0, COLS).collect()
    }

    /// The foreground colour of the first cell of `text` on the screen.
    fn color_of(&self, text: &str) -> Option<vt100::Color> {
        let rows = self.rows();
        let parser = self.parser.lock().unwrap();
        for (r, line) in rows.iter().enumerate() {
            if let Some(c) = line.find(text) {
                let col = line[..c].chars().count();
                let cell = parser.screen().cell(r as u16, col as u16)?;
                return Some(cell.fgcolor());
            }
        }
        None
    }

    fn wait(mut self) -> (i32, Screen) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.exit_code() as i32;
            }
            assert!(
                Instant::now() < deadline,
                "still running:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        // Everything the child wrote has reached the parser once the reader sees the end.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        (code, self)
    }
}

const GREEN: vt100::Color = vt100::Color::Idx(2);

#[test]
fn plan_on_a_terminal_is_a_coloured_table_and_no_color_turns_it_off() {
    let dir = tempfile::tempdir().unwrap();
    let (code, screen) = Screen::spawn(dir.path(), 0, &[], &["plan"]).wait();
    assert_eq!(code, 2, "{}", screen.contents());
    let rows = screen.rows();
    let header = rows.iter().position(|r| r.starts_with("STEP ")).unwrap();
    assert!(
        rows[header].contains("ACTION") && rows[header].contains("REASON"),
        "{rows:?}"
    );
    assert!(
        rows[header + 1].starts_with("prepare_deployment"),
        "{rows:?}"
    );
    // "run" in green, the step name in the terminal's default colour.
    assert_eq!(screen.color_of("run  "), Some(GREEN), "{rows:?}");
    assert_eq!(
        screen.color_of("prepare_deployment"),
        Some(vt100::Color::Default)
    );
    assert!(rows.iter().any(|r| r.starts_with("Plan: ")), "{rows:?}");

    for env in [&[("NO_COLOR", "1")][..], &[]] {
        let args: &[&str] = if env.is_empty() {
            &["plan", "--color", "never"]
        } else {
            &["plan"]
        };
        let (_, screen) = Screen::spawn(dir.path(), 0, env, args).wait();
        assert_eq!(
            screen.color_of("run  "),
            Some(vt100::Color::Default),
            "{env:?} {args:?}: {}",
            screen.contents()
        );
    }
}

#[test]
fn deploy_shows_live_progress_per_phase_then_a_summary_and_a_pipe_gets_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let screen = Screen::spawn(dir.path(), 700, &[], &["deploy"]);
    // While it runs: a phase line with N/M and its elapsed time, and under it a spinner line
    // for the step in flight.
    let phase_line = regex_lite_phase();
    let mut seen_phase = None;
    let mut seen_op = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (seen_phase.is_none() || seen_op.is_none()) && Instant::now() < deadline {
        for row in screen.rows() {
            if seen_phase.is_none() && phase_line(&row) {
                seen_phase = Some(row.clone());
            }
            if seen_op.is_none()
                && row.starts_with("  ")
                && row.contains("create_vms/k0s-")
                && row.trim_end().ends_with('s')
            {
                seen_op = Some(row.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, screen) = screen.wait();
    let text = screen.contents();
    assert_eq!(code, 0, "{text}");
    let phase = seen_phase.unwrap_or_else(|| panic!("no live phase line; at the end:\n{text}"));
    let op = seen_op.unwrap_or_else(|| panic!("no spinner line; at the end:\n{text}"));
    eprintln!("live: {phase:?} / {op:?}");
    // At the end: the live area is gone, each phase's total and the overall time remain.
    assert!(
        text.contains("+ create_vms: 2 of 2 done in"),
        "phase total:\n{text}"
    );
    assert!(text.contains("Finished in "), "overall time:\n{text}");
    assert!(text.contains("Deployment converged."), "{text}");
    assert!(
        !screen
            .rows()
            .iter()
            .any(|r| r.starts_with("  ") && r.contains('⠋')),
        "a spinner was left behind:\n{text}"
    );

    // The same run through a pipe: plain lines, no escape code on either stream.
    let dir = tempfile::tempdir().unwrap();
    let out = k0rdent_tests::fake_world::command(
        Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")),
        dir.path(),
        50,
    )
    .env("TERM", "xterm-256color")
    .args(["deploy", "-vv"])
    .output()
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stdout:?}{stderr:?}"
    );
    assert!(
        stderr.contains("+ create_vms/k0s-worker-1: done"),
        "{stderr}"
    );
    // `--color always` colours a pipe too.
    let dir = tempfile::tempdir().unwrap();
    let out = k0rdent_tests::fake_world::command(
        Path::new(env!("CARGO_BIN_EXE_fake-k0rdent")),
        dir.path(),
        0,
    )
    .args(["plan", "--color", "always"])
    .output()
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\u{1b}[32mrun"));
}

/// Whether a row is a live phase line: `<spinner> <phase> <n>/<m> … <elapsed>`.
fn regex_lite_phase() -> impl Fn(&str) -> bool {
    |row: &str| {
        let words: Vec<&str> = row.split_whitespace().collect();
        words.len() >= 4
            && ["create_vms", "setup_network", "setup_vpn", "connect_vpn"].contains(&words[1])
            && words[2]
                .split_once('/')
                .is_some_and(|(n, m)| n.parse::<u32>().is_ok() && m.parse::<u32>().is_ok())
            && words
                .last()
                .is_some_and(|w| w.ends_with('s') && w[..w.len() - 1].parse::<u32>().is_ok())
    }
}

#[test]
fn reset_asks_naming_what_goes_and_no_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (code, screen) = Screen::spawn(dir.path(), 0, &[], &["deploy"]).wait();
    assert_eq!(code, 0, "{}", screen.contents());
    let mut screen = Screen::spawn(dir.path(), 0, &[], &["reset"]);
    screen.wait_for("Type 'yes' to continue:");
    let text = screen.contents();
    for what in [
        "subscription",
        "resource group",
        "VMs             2 (k0s-controller-1, k0s-worker-1)",
        "local files",
        "keys (SSH and WireGuard keys)",
    ] {
        assert!(
            text.contains(what),
            "{what} missing from the prompt:\n{text}"
        );
    }
    screen.type_in("no\r");
    let (code, screen) = screen.wait();
    assert_eq!(code, 1, "{}", screen.contents());
    assert!(
        screen
            .contents()
            .contains("Reset cancelled; nothing was changed.")
    );
    assert!(dir.path().join("deployment-state.yaml").exists());
}
