//! The stand-in `k0sctl` executable: see `k0rdent_standins::k0sctl::cli`.

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let code = k0rdent_standins::k0sctl::cli::run(
        &argv,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
