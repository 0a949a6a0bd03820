//! `state-writer DIR atomic|in-place`: saves megabyte states in a loop until killed.
//! Test fixture for the crash-safety test.

use std::io::Write;
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), Some(mode)) = (args.next(), args.next()) else {
        let _ = writeln!(std::io::stderr(), "usage: state-writer DIR atomic|in-place");
        return std::process::ExitCode::from(1);
    };
    let dir = PathBuf::from(dir);
    let out = std::io::stdout();
    let result = match mode.to_str() {
        Some("atomic") => {
            k0rdent_tests::state_writer::run_atomic(&dir, out).map_err(|e| e.to_string())
        }
        Some("in-place") => {
            k0rdent_tests::state_writer::run_in_place(&dir, out).map_err(|e| e.to_string())
        }
        _ => Err("mode must be atomic or in-place".to_owned()),
    };
    if let Err(e) = result {
        let _ = writeln!(std::io::stderr(), "state-writer: {e}");
    }
    std::process::ExitCode::from(1)
}
