//! `k0rdent completions SHELL`: a completion script generated from the clap definition, so
//! it always offers exactly the commands and flags of this binary.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::args::Cli;
use crate::exit::ExitStatus;
use crate::printer::Printer;

/// Prints the script for `shell` (in JSON mode as the `text` of a `completions` result).
pub(crate) fn run(shell: Shell, printer: &Printer) -> ExitStatus {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "k0rdent", &mut script);
    let script = String::from_utf8_lossy(&script);
    printer.text(&script);
    printer.json(&serde_json::json!({
        "result": "completions",
        "shell": shell.to_string(),
        "text": script,
    }));
    ExitStatus::Success
}
