//! Logs on stderr through `tracing`: `-v` info, `-vv` debug, `-vvv` trace; `RUST_LOG` wins.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (once per process).
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
