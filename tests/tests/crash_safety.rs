//! Crash safety of state saves: a child process saving a >1 MB state in a loop is SIGKILLed
//! at random moments; after every kill the file must parse and be exactly one of the written
//! versions. The same harness pointed at a writer that truncates and rewrites in place must
//! catch it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k0rdent_core::state::parse_state;
use k0rdent_core::store::STATE_FILE;
use k0rdent_tests::state_writer::is_written_version;

struct Stats {
    kills: usize,
    failures: Vec<String>,
    last_generation: u64,
}

fn check(dir: &Path, last: &mut u64) -> Result<(), String> {
    let bytes = match std::fs::read(dir.join(STATE_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && *last == 0 => return Ok(()),
        Err(e) => return Err(format!("state file unreadable: {e}")),
    };
    let m =
        parse_state(&bytes).map_err(|e| format!("does not parse ({} bytes): {e}", bytes.len()))?;
    if !is_written_version(&m.state) {
        return Err(format!(
            "generation {} does not hold its own payload",
            m.state.generation
        ));
    }
    if m.state.generation < *last {
        return Err(format!(
            "went back from generation {last} to {}",
            m.state.generation
        ));
    }
    if m.state.generation > 0 && bytes.len() < 1_000_000 {
        return Err(format!(
            "only {} bytes: the experiment needs states of at least 1 MB",
            bytes.len()
        ));
    }
    *last = m.state.generation;
    Ok(())
}

/// Runs `kills` kill/check cycles (stopping early after `stop_after` failures).
fn experiment(mode: &str, kills: usize, stop_after: usize) -> Stats {
    let dir = tempfile::tempdir().unwrap();
    let mut stats = Stats {
        kills: 0,
        failures: Vec::new(),
        last_generation: 0,
    };
    for _ in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_state-writer"))
            .arg(dir.path())
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Wait until it has loaded the previous version and starts writing.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("ready"), "writer said {line:?}");
        // A random moment within the next few saves.
        std::thread::sleep(Duration::from_micros(fastrand::u64(0..150_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stats.kills += 1;
        if let Err(e) = check(dir.path(), &mut stats.last_generation) {
            stats.failures.push(e);
            if stats.failures.len() >= stop_after {
                break;
            }
            // Start the next round from a clean slate so each failure is independent.
            let _ = std::fs::remove_file(dir.path().join(STATE_FILE));
            stats.last_generation = 0;
        }
    }
    stats
}

#[test]
fn atomic_saves_survive_200_random_sigkills() {
    let stats = experiment("atomic", 200, 1);
    assert!(
        stats.failures.is_empty(),
        "after {} kills: {:?}",
        stats.kills,
        stats.failures
    );
    assert_eq!(stats.kills, 200);
    // Kills land mid-save often: the writer completed this many saves across 200 kills.
    assert!(
        stats.last_generation >= 100,
        "the writer made progress: generation {}",
        stats.last_generation
    );
}

#[test]
fn the_same_test_catches_a_writer_that_rewrites_in_place() {
    let stats = experiment("in-place", 200, 1);
    assert!(
        !stats.failures.is_empty(),
        "{} kills of the in-place writer went unnoticed: the crash test cannot fail",
        stats.kills
    );
}
