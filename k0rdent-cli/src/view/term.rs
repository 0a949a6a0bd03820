//! What the streams are: a terminal or not, colour on or off, the width to fit.

use std::io::IsTerminal;

use crate::args::ColorChoice;

/// Decided once per run from `--color`, `NO_COLOR` and whether stdout and stderr are
/// terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// Colour on stdout (results).
    pub color_out: bool,
    /// Colour on stderr (progress, notes, errors, logs).
    pub color_err: bool,
    /// Whether stderr is a terminal: live progress instead of plain lines.
    pub live: bool,
    /// The width tables fit on stdout (a terminal's columns); `None` on a pipe: nothing is
    /// shortened.
    pub width: Option<usize>,
}

impl Term {
    /// From the real streams and environment.
    pub fn detect(choice: ColorChoice) -> Self {
        let out = std::io::stdout().is_terminal();
        let err = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = out
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_, cols)| usize::from(cols));
        Term::decide(choice, no_color, out, err, width)
    }

    /// The decision itself: `NO_COLOR` (<https://no-color.org>) turns `auto` off, never
    /// `always`; a dumb terminal gets no live progress.
    pub fn decide(
        choice: ColorChoice,
        no_color: bool,
        out_tty: bool,
        err_tty: bool,
        width: Option<usize>,
    ) -> Self {
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let color = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color && !dumb,
        };
        Term {
            color_out: color(out_tty),
            color_err: color(err_tty),
            live: err_tty && !dumb,
            width,
        }
    }

    /// Plain: no colour, nothing live, nothing shortened (pipes, tests, embedders).
    pub fn plain() -> Self {
        Term {
            color_out: false,
            color_err: false,
            live: false,
            width: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_turns_auto_off_but_not_always() {
        let t = Term::decide(ColorChoice::Auto, true, true, true, Some(80));
        assert!(!t.color_out && !t.color_err);
        let t = Term::decide(ColorChoice::Always, true, false, false, None);
        assert!(t.color_out && t.color_err);
        let t = Term::decide(ColorChoice::Never, false, true, true, Some(80));
        assert!(!t.color_out && !t.color_err);
    }

    #[test]
    fn auto_colours_only_terminals() {
        let t = Term::decide(ColorChoice::Auto, false, false, true, None);
        assert!(!t.color_out);
        assert_eq!(
            t.color_err,
            std::env::var("TERM").map_or(true, |t| t != "dumb")
        );
    }
}
