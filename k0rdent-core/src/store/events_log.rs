//! `deployment-events.jsonl`: an append-only JSON Lines log that tolerates a torn last line.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::History;
use super::StoreError;
use super::atomic::io_err;
use crate::event::EventRecord;

/// Opens the log for appending. If a crash tore the last line, a newline is written first so
/// the next record starts on a line of its own.
pub(crate) fn open_for_append(path: &Path) -> Result<File, StoreError> {
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1)).map_err(io_err(path))?;
        f.read_exact(&mut last).map_err(io_err(path))?;
        if last[0] != b'\n' {
            f.write_all(b"\n").map_err(io_err(path))?;
        }
    }
    Ok(f)
}

/// Appends one record as one line (a single write, so a crash tears at most this line).
pub(crate) fn append(f: &mut File, path: &Path, record: &EventRecord) -> Result<(), StoreError> {
    let mut line = serde_json::to_vec(record).map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    line.push(b'\n');
    f.write_all(&line).map_err(io_err(path))
}

/// A missing file reads as empty; a torn last line (a crash during an append) and other
/// unreadable lines are reported in the [`History`], not as errors.
pub(crate) fn read(path: &Path) -> Result<History, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(History::default()),
        Err(e) => return Err(io_err(path)(e)),
    };
    Ok(parse(&bytes))
}

/// Reads an event log's bytes (JSON Lines): a torn last line (a crash during an append) and
/// other unreadable lines are reported in the [`History`], not as errors.
pub fn parse(bytes: &[u8]) -> History {
    let mut history = History::default();
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last_nonempty = lines.iter().rposition(|l| !l.is_empty());
    for (i, line) in lines.iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<EventRecord>(line) {
            Ok(r) => history.events.push(r),
            Err(_) if Some(i) == last_nonempty && !bytes.ends_with(b"\n") => {
                history.torn_tail = true;
            }
            Err(_) => history.unreadable_lines.push(i + 1),
        }
    }
    history
}
