//! Logs on stderr through `tracing`: `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` wins.
//! Colour codes only when stderr takes colour; written with the live progress area hidden,
//! so a log line never tears it.

use std::io::Write;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (once per process).
pub fn init(verbose: u8, color: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(color)
        .with_target(false)
        .try_init();
}

/// stderr, through [`crate::view::progress::suspended`].
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::view::progress::suspended(|| std::io::stderr().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        crate::view::progress::suspended(|| std::io::stderr().lock().write_all(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
