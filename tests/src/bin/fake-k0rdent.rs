//! The `k0rdent` CLI over the file-backed fake world (see `k0rdent_tests::fake_world`).
//! Test fixture only; never shipped.

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    k0rdent_cli::run_with(
        std::env::args_os(),
        Arc::new(k0rdent_tests::fake_world::WorldFactory),
    )
    .into()
}
