//! A local k0rdent deployment that needs no Azure account: the ARM emulator whose VMs are
//! network namespaces with real sshd and wireguard-go, the stand-in k0sctl and helm, the fake
//! Kubernetes API on the controllers, and the real `k0rdent` CLI deploying into it.
//!
//! - `k0rdent-lab run [DIR]` (the default): the whole job once — lab up, a 3+2 deploy through
//!   `install_k0rdent` killed once mid-way and resumed, `status`, `kubectl get nodes`,
//!   `reset`, lab down.
//! - `k0rdent-lab up [DIR]`: the lab in the background; prints `export` lines to `eval`.
//! - `k0rdent-lab status [DIR]`, `k0rdent-lab down [DIR]`.
//!
//! The same executable is `k0rdent`, `k0sctl` and `helm` in the lab's `bin/` (the wrappers set
//! `K0RDENT_LAB_AS`).

#![allow(clippy::print_stderr, clippy::print_stdout)] // A demo binary: it talks to the user.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use k0rdent_tests::lab_up::{self, LabHome, control};

/// The lab: k0rdent deployments on this machine, no Azure account (root; Debian).
///
/// Without a command, `run`: the whole job once. DIR (default `./lab-state`) holds the
/// lab's configuration, state, `export` lines, wrappers and log; a directory the lab made is
/// reused (only its own entries replaced), any other non-empty directory is refused.
#[derive(Debug, Parser)]
#[command(name = "k0rdent-lab", version, max_term_width = 100)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Brings the lab up, deploys 3 controllers and 2 workers through install_k0rdent with
    /// the plain `k0rdent` CLI (killed once mid-way, then resumed), shows `k0rdent status`
    /// and `kubectl get nodes` through the tunnel, resets the deployment and takes the lab
    /// down.
    Run {
        #[arg(value_name = "DIR", default_value = "lab-state")]
        dir: PathBuf,
    },
    /// Starts the lab in the background and prints `export` lines for your shell:
    /// `eval "$(k0rdent-lab up)"`, then `k0rdent deploy` deploys into it.
    Up {
        #[arg(value_name = "DIR", default_value = "lab-state")]
        dir: PathBuf,
    },
    /// Takes the lab down: every VM, namespace, process, interface and firewall table goes.
    Down {
        #[arg(value_name = "DIR", default_value = "lab-state")]
        dir: PathBuf,
    },
    /// Whether the lab is up, and its VMs (exit 0 when up, 1 when down).
    Status {
        #[arg(value_name = "DIR", default_value = "lab-state")]
        dir: PathBuf,
    },
    /// The lab itself, in the foreground (what `up` starts).
    #[command(hide = true)]
    Serve { dir: PathBuf },
}

fn main() -> ExitCode {
    match std::env::var(lab_up::AS_ENV).as_deref() {
        Ok("k0rdent") => return k0rdent_cli::main(),
        Ok("helm") => return k0rdent_standins::helm::main_with(std::env::args().collect()),
        Ok("k0sctl") => {
            let argv: Vec<String> = std::env::args().collect();
            let code = k0rdent_standins::k0sctl::cli::run(
                &argv,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            return ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
        _ => {}
    }
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // --help and --version are successes; usage errors exit 1, as in `k0rdent`.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let command = args.command.unwrap_or(Cmd::Run {
        dir: PathBuf::from("lab-state"),
    });
    let dir = match &command {
        Cmd::Run { dir }
        | Cmd::Up { dir }
        | Cmd::Down { dir }
        | Cmd::Status { dir }
        | Cmd::Serve { dir } => dir,
    };
    let home = match LabHome::new(dir) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::from(1);
        }
    };
    if matches!(command, Cmd::Run { .. } | Cmd::Up { .. })
        && let Err(e) = k0rdent_tests::lab::prepare_machine()
    {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let result = match command {
        Cmd::Run { .. } => lab_up::demo::run(&home),
        Cmd::Up { .. } => control::up(&home, true).map(|env| {
            print!("{env}");
            eprintln!(
                "The lab is up. In your shell: eval \"$(k0rdent-lab up {d})\"; then k0rdent deploy. \
                 Take it down with: k0rdent-lab down {d}",
                d = home.dir.display()
            );
        }),
        Cmd::Down { .. } => control::down(&home).map(|()| {
            eprintln!("The lab is down; nothing of it is left.");
        }),
        Cmd::Status { .. } => {
            let (text, up) = control::status(&home);
            print!("{text}");
            if up {
                Ok(())
            } else {
                return ExitCode::from(1);
            }
        }
        Cmd::Serve { .. } => lab_up::serve::serve(&home),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
