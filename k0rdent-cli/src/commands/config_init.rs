//! `k0rdent config init`: writes a commented starting configuration, as `k0sctl init` and
//! `terraform init` users expect — to `--config` (or `K0RDENT_CONFIG`), else `./k0rdent.yaml`;
//! never over an existing file without `--force`; `-` or `--stdout` prints it instead.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Ctx;
use crate::config::presets::Preset;
use crate::error::CliError;
use crate::exit::ExitStatus;

/// Where the configuration goes when `--config` is not given.
const DEFAULT_PATH: &str = "k0rdent.yaml";

/// Where `config init` writes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Stdout,
    File(PathBuf),
}

/// `--stdout`, or `--config -` (made absolute by the request, so compared as such), else
/// `--config`, else `./k0rdent.yaml`.
fn target(config: Option<&Path>, stdout: bool) -> Target {
    let dash = std::path::absolute("-").ok();
    match config {
        _ if stdout => Target::Stdout,
        Some(p) if p == Path::new("-") || dash.as_deref() == Some(p) => Target::Stdout,
        Some(p) => Target::File(p.to_path_buf()),
        None => Target::File(PathBuf::from(DEFAULT_PATH)),
    }
}

/// How the written path reads in the next command: as given when relative to here.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(|d| path.strip_prefix(d).ok()) {
        Some(rel) if !rel.as_os_str().is_empty() => format!("./{}", rel.display()),
        _ => path.display().to_string(),
    }
}

/// Shell-quotes a path for a command line the user can paste.
fn quoted(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[derive(Serialize)]
struct Written<'a> {
    written: String,
    preset: &'a str,
    next: String,
}

pub(super) fn run(
    ctx: &Ctx,
    preset: Preset,
    force: bool,
    stdout: bool,
) -> Result<ExitStatus, CliError> {
    let path = match target(ctx.request.config.as_deref(), stdout) {
        Target::Stdout => {
            let text = preset.render(DEFAULT_PATH);
            ctx.printer.text(&text);
            ctx.printer.json(&serde_json::json!({
                "preset": preset.name(),
                "config": text,
            }));
            return Ok(ExitStatus::Success);
        }
        Target::File(path) => path,
    };
    let display = shown(&path);
    let text = preset.render(&quoted(&display));
    write_new(&path, text.as_bytes(), force)?;
    let next = format!("k0rdent plan --config {}", quoted(&display));
    ctx.printer.text(&format!(
        "Wrote {display} (preset {preset}). Review it (azure.location at least), then run:\n  {next}"
    ));
    ctx.printer.json(&Written {
        written: path.display().to_string(),
        preset: preset.name(),
        next,
    });
    Ok(ExitStatus::Success)
}

/// Writes `bytes` to a new file at `path` (or over an existing one with `force`), creating
/// nothing else: a missing directory is an error, as for `k0sctl init > dir/file`.
fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(CliError::usage(
            format!("{} is a directory", path.display()),
            "pass --config with a file name (e.g. --config k0rdent.yaml)",
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        // Atomic: never overwrites a file that appeared since any check.
        options.create_new(true);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::usage(
                format!("{} already exists; it was left as it is", path.display()),
                "pass --force to overwrite it, --config OTHER_FILE to write elsewhere, or \
                 --stdout to print the configuration",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::usage(
                format!(
                    "cannot write {}: its directory does not exist",
                    path.display()
                ),
                "create the directory first, or pass --config with another path",
            ));
        }
        Err(e) => return Err(io(e)),
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_stdout_for_a_dash_or_the_flag_else_the_file_or_the_default() {
        assert_eq!(target(None, true), Target::Stdout);
        assert_eq!(target(Some(Path::new("-")), false), Target::Stdout);
        let dash = std::path::absolute("-").unwrap();
        assert_eq!(target(Some(&dash), false), Target::Stdout);
        assert_eq!(
            target(Some(Path::new("/x/c.yaml")), false),
            Target::File("/x/c.yaml".into())
        );
        assert_eq!(target(None, false), Target::File("k0rdent.yaml".into()));
    }

    #[test]
    fn paths_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(quoted("./k0rdent.yaml"), "./k0rdent.yaml");
        assert_eq!(quoted("/tmp/my dir/c.yaml"), "'/tmp/my dir/c.yaml'");
        assert_eq!(quoted("it's.yaml"), r"'it'\''s.yaml'");
    }
}
