//! `k0rdent man`: the man page, rendered by `clap_mangen` from the same clap definition as
//! `--help`.
//!
//! Why a hidden command and not a generated `docs/k0rdent.1` checked in: the page can never
//! be out of date with the binary that prints it (packagers run `k0rdent man > k0rdent.1` at
//! build time, users `k0rdent man | man -l -`), and a change to any help text does not have
//! to regenerate and commit a second copy of it. The help texts are already tested through
//! the `--help` snapshot; a checked-in page would only duplicate that snapshot. It is hidden
//! because it is for packaging, not a daily command.

use clap::CommandFactory;

use crate::args::Cli;
use crate::error::CliError;
use crate::exit::ExitStatus;
use crate::printer::Printer;

/// Prints the roff source of `k0rdent(1)` (in JSON mode as the `text` of a `man` result).
pub(crate) fn run(printer: &Printer) -> Result<ExitStatus, CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|source| CliError::Io {
            path: "man page".into(),
            source,
        })?;
    let page = String::from_utf8_lossy(&page);
    printer.text(&page);
    printer.json(&serde_json::json!({"result": "man", "text": page}));
    Ok(ExitStatus::Success)
}
