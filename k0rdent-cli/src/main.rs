//! The `k0rdent` binary.

fn main() -> std::process::ExitCode {
    k0rdent_cli::main()
}
