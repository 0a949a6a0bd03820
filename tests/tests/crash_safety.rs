//! Crash safety of state saves: a child process saving a >1 MB state in a loop is SIGKILLed
//! at moments chosen from its progress as seen from outside (the size of the save being
//! written); after every kill the file must parse and be exactly one of the written versions.
//! The same harness pointed at a writer that truncates and rewrites in place must catch it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

fn len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// The size of the save in progress (the writer's temp file), if one is being written.
fn temp_len(dir: &Path) -> Option<u64> {
    let prefix = format!(".{STATE_FILE}.tmp-");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .max()
}

/// Polls `cond` until it holds. The bound only catches a writer that stopped making
/// progress; it never decides when a kill lands.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "the writer stopped: {what}");
        // Short enough to see a save in progress, long enough to leave the writer the CPU.
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Where a kill landed, as seen from outside when it was sent.
#[derive(Default)]
struct Landed {
    mid_write: usize,
    after_rename: usize,
}

/// Runs `kills` kill/check cycles (stopping early after `stop_after` failures). Each kill is
/// triggered by the writer's progress observed from outside — never by the clock, and with
/// no hook in product code — so the experiment means the same on a fast or a loaded machine:
///
/// - atomic: after at least one save of this round completed (the state file's inode changed),
///   the kill goes out once the next save's temp file has reached a random size (every other
///   round), or as soon as that save was renamed into place;
/// - in-place: once a complete file was seen, the kill goes out as soon as the file is seen
///   truncated for the next rewrite.
fn experiment(mode: &str, kills: usize, stop_after: usize) -> (Stats, Landed) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(STATE_FILE);
    let mut landed = Landed::default();
    let mut stats = Stats {
        kills: 0,
        failures: Vec::new(),
        last_generation: 0,
    };
    for round in 0..kills {
        let before = inode(&state);
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
        if mode == "atomic" {
            wait_for("no save completed", || inode(&state) != before);
            let saved = inode(&state);
            // Every other round: a random point of the next save's write; otherwise right
            // after its rename (while the directory is being fsynced and the backup pruned).
            let target = if round % 2 == 0 {
                fastrand::u64(0..=len(&state).unwrap_or(0))
            } else {
                u64::MAX
            };
            wait_for("the next save did not start", || {
                inode(&state) != saved || temp_len(dir.path()).is_some_and(|l| l >= target)
            });
            if inode(&state) == saved {
                landed.mid_write += 1;
            } else {
                landed.after_rename += 1;
            }
        } else {
            wait_for("no complete file", || {
                len(&state).is_some_and(|l| l >= 1_000_000)
            });
            wait_for("no rewrite started", || {
                len(&state).is_some_and(|l| l < 1_000_000)
            });
            landed.mid_write += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stats.kills += 1;
        if let Err(e) = check(dir.path(), &mut stats.last_generation) {
            stats.failures.push(e);
            if stats.failures.len() >= stop_after {
                break;
            }
            // Start the next round from a clean slate so each failure is independent.
            let _ = std::fs::remove_file(&state);
            stats.last_generation = 0;
        }
    }
    (stats, landed)
}

#[test]
fn atomic_saves_survive_200_sigkills_mid_write_and_right_after_a_rename() {
    let (stats, landed) = experiment("atomic", 200, 1);
    eprintln!(
        "atomic: {} kills, {} mid-write, {} after a rename, generation {}",
        stats.kills, landed.mid_write, landed.after_rename, stats.last_generation
    );
    assert!(
        stats.failures.is_empty(),
        "after {} kills: {:?}",
        stats.kills,
        stats.failures
    );
    assert_eq!(stats.kills, 200);
    // Every round completed a save before its kill.
    assert!(
        stats.last_generation >= 200,
        "the writer made progress: generation {}",
        stats.last_generation
    );
    // Kills were sent while a save was being written and right after its rename.
    assert!(
        landed.mid_write >= 50 && landed.after_rename >= 50,
        "{} kills mid-write, {} after a rename",
        landed.mid_write,
        landed.after_rename
    );
}

#[test]
fn the_same_test_catches_a_writer_that_rewrites_in_place() {
    let (stats, landed) = experiment("in-place", 200, 1);
    eprintln!(
        "in-place: caught after {} kills ({} sent mid-rewrite): {:?}",
        stats.kills, landed.mid_write, stats.failures
    );
    assert!(
        !stats.failures.is_empty(),
        "{} kills of the in-place writer ({} sent mid-rewrite) went unnoticed: the crash test cannot fail",
        stats.kills,
        landed.mid_write
    );
}
