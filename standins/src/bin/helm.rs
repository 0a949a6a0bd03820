//! The stand-in `helm` executable; see `k0rdent_standins::helm`.

fn main() -> std::process::ExitCode {
    k0rdent_standins::helm::main_with(std::env::args().collect())
}
