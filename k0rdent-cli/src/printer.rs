//! The one place that writes to stdout and stderr. Results and JSON go to stdout, progress
//! and messages to stderr; logs go to stderr through `tracing`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use k0rdent_core::event::{Event, EventSink};
use k0rdent_core::remedy::Hint;
use serde::Serialize;

use crate::args::OutputFormat;
use crate::error::CliError;
use crate::view::progress::Live;
use crate::view::{Table, Term};

/// Writes results, progress and errors in the chosen format.
pub struct Printer {
    format: OutputFormat,
    lock: Mutex<()>,
    term: Term,
    verbose: u8,
    /// The live progress area, once a run has shown progress on a terminal.
    live: Mutex<Option<Live>>,
    /// On a pipe: per step, the last waiting message printed, so a poll that reports the
    /// same thing again prints nothing.
    last_wait: Mutex<HashMap<String, String>>,
}

impl Printer {
    /// A plain printer for `format`: no colour, nothing live, nothing shortened.
    pub fn new(format: OutputFormat) -> Self {
        Printer::with_term(format, Term::plain(), 0)
    }

    /// A printer for `format` on `term`; with `verbose` > 0 tables are never shortened.
    pub fn with_term(format: OutputFormat, term: Term, verbose: u8) -> Self {
        Printer {
            format,
            lock: Mutex::new(()),
            term,
            verbose,
            live: Mutex::new(None),
            last_wait: Mutex::new(HashMap::new()),
        }
    }

    /// The output format.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// `table` rendered for stdout: fitted to the terminal unless `-v`, coloured if stdout
    /// takes colour.
    pub fn table(&self, table: &Table) -> String {
        let width = if self.verbose > 0 {
            None
        } else {
            self.term.width
        };
        table.render(width, self.term.color_out)
    }

    /// Whether stdout takes colour.
    pub fn color_out(&self) -> bool {
        self.term.color_out
    }

    fn out(&self, text: &str) {
        let _g = self.lock.lock();
        let mut o = std::io::stdout().lock();
        // A closed pipe (`k0rdent plan | head`) is not an error worth reporting.
        let _ = o.write_all(text.as_bytes());
        let _ = o.flush();
    }

    fn err(&self, text: &str) {
        if let Ok(live) = self.live.lock()
            && let Some(live) = live.as_ref()
        {
            live.println(text);
            return;
        }
        let _g = self.lock.lock();
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(text.as_bytes());
    }

    /// Shows `event` in the live area (on a terminal); `true` when it was progress and
    /// needs no line of its own.
    fn live(&self, event: &Event) -> bool {
        if !self.term.live {
            return false;
        }
        let Ok(mut live) = self.live.lock() else {
            return false;
        };
        let live = live.get_or_insert_with(|| Live::new(self.term.color_err));
        live.event(event)
    }

    /// On a pipe: whether this waiting message for `step` repeats the last one printed.
    fn repeated(&self, step: &str, message: &str) -> bool {
        let Ok(mut last) = self.last_wait.lock() else {
            return false;
        };
        if last.get(step).is_some_and(|m| m == message) {
            return true;
        }
        last.insert(step.to_owned(), message.to_owned());
        false
    }

    /// The line's leading mark coloured by what it says (stderr only, when it takes colour).
    fn mark(&self, line: String) -> String {
        if !self.term.color_err {
            return line;
        }
        let style = console::Style::new().force_styling(true);
        let style = match line.chars().next() {
            Some('+') => style.green(),
            Some('x') => style.red().bold(),
            Some('~' | '!') => style.yellow(),
            Some('>') => style.cyan(),
            Some('-') => style.dim(),
            _ => return line,
        };
        match line.split_once(' ') {
            Some((mark, rest)) => format!("{} {rest}", style.apply_to(mark)),
            None => line,
        }
    }

    /// A result in text mode (stdout).
    pub fn text(&self, text: &str) {
        if self.format == OutputFormat::Text {
            self.out(text);
            if !text.ends_with('\n') {
                self.out("\n");
            }
        }
    }

    /// A result in JSON mode: one line on stdout, in the [`crate::json_line`] envelope.
    pub fn json<T: Serialize>(&self, value: &T) {
        self.json_line(&crate::json_line::Line::object(value));
    }

    fn json_line<T: Serialize>(&self, line: &T) {
        if self.format == OutputFormat::Json {
            match serde_json::to_string(line) {
                Ok(line) => self.out(&format!("{line}\n")),
                Err(e) => self.err(&format!("error: could not render JSON output: {e}\n")),
            }
        }
    }

    /// A message for humans (stderr), in both formats.
    pub fn note(&self, text: &str) {
        self.err(&format!("{text}\n"));
    }

    /// An error with its hint (stderr; in JSON mode also a JSON line on stdout).
    pub fn error(&self, e: &CliError) {
        let hint = Hint::of(e);
        // One `error:` line per problem (a configuration can have several).
        let mut text: String = e
            .to_string()
            .lines()
            .map(|l| format!("error: {l}\n"))
            .collect();
        text.push_str(&hint_line(hint.as_ref(), ""));
        self.err(&text);
        #[derive(Serialize)]
        struct JsonError<'a> {
            error: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            remedy: Option<Hint<'a>>,
            exit_code: u8,
        }
        self.json(&JsonError {
            error: e.to_string(),
            remedy: hint,
            exit_code: e.exit_status().code(),
        });
    }

    fn progress(&self, event: &Event) {
        if self.live(event) {
            return;
        }
        let waiting = match event {
            Event::StepPending { step, detail, .. } => Some((step, detail.clone())),
            Event::GateWaiting {
                step, gate, reason, ..
            } => Some((step, format!("{gate}: {reason}"))),
            _ => None,
        };
        if let Some((step, message)) = waiting
            && self.repeated(step.as_str(), &message)
        {
            return;
        }
        let line = match event {
            Event::Observed {
                observer,
                error: Some(e),
                ..
            } => format!("! {observer}: could not observe: {e}"),
            Event::Drift { step, detail } => format!("~ {step}: drift: {detail}"),
            Event::StepStarted { step, decision, .. } => format!("> {step}: {decision}"),
            Event::StepProgress { step, message } => format!("  {step}: {message}"),
            Event::StepPending { step, detail, .. } => format!("  {step}: waiting: {detail}"),
            Event::StepRetrying {
                step,
                error,
                delay_ms,
                ..
            } => format!(
                "  {step}: {error}; retrying in {:.1} s",
                *delay_ms as f64 / 1000.0
            ),
            Event::StepCompleted {
                step, duration_ms, ..
            } => format!("+ {step}: done ({:.1} s)", *duration_ms as f64 / 1000.0),
            Event::StepFailed { step, error, .. } => format!("x {step}: failed: {error}"),
            Event::StepBlocked { step, reason, .. } => format!("x {step}: blocked: {reason}"),
            Event::StepInterrupted { step, reason } => format!("- {step}: interrupted: {reason}"),
            Event::GateWaiting {
                step,
                gate,
                reason,
                remaining_ms,
            } => format!(
                "  {step}: waiting for {gate}: {reason} ({} s left)",
                remaining_ms / 1000
            ),
            Event::GateFailed {
                step, gate, reason, ..
            } => format!("x {step}: gate {gate} failed: {reason}"),
            Event::TeardownStarted { step } => format!("> {step}: tearing down"),
            Event::TeardownCompleted {
                step,
                nothing_to_undo: None,
            } => format!("- {step}: torn down"),
            Event::TeardownCompleted {
                step,
                nothing_to_undo: Some(why),
            } => format!("- {step}: nothing of its own to undo ({why})"),
            Event::StepConfirmed { step, change } => {
                format!("! {step}: confirmed by -y: {change}")
            }
            Event::StepStopping {
                step,
                what,
                grace_ms,
            } => format!(
                "  {step}: stopping {what}: sent SIGTERM, killing it in {} s if it has not stopped",
                grace_ms.div_ceil(1000)
            ),
            Event::TeardownFailed { step, error } => format!("x {step}: teardown failed: {error}"),
            Event::StopRequested { reason } => format!(
                "Stopping at the next safe point ({reason}); press Ctrl-C again to exit at once."
            ),
            Event::PreviousRunDied { run_id, pid } => {
                format!(
                    "note: the previous run ({run_id}, pid {pid}) ended without recording an outcome; resuming"
                )
            }
            _ => return,
        };
        // A failed step's or gate's remedy, under its line.
        let line = self.mark(line);
        self.err(&format!(
            "{line}\n{}",
            hint_line(Hint::of(event).as_ref(), "  ")
        ));
    }
}

/// A remedy's `hint:` line under the line it belongs to (indented like that line's
/// details), with its newline; empty without a remedy. In JSON the same [`Hint`] is the
/// `remedy` field.
fn hint_line(hint: Option<&Hint<'_>>, indent: &str) -> String {
    hint.map_or_else(String::new, |h| format!("{indent}{h}\n"))
}

impl EventSink for Printer {
    fn emit(&self, event: &Event) {
        match self.format {
            OutputFormat::Json => {
                self.json_line(&crate::json_line::Line::event(event, chrono::Utc::now()));
            }
            OutputFormat::Text => self.progress(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a pipe, a poll that reports the same thing again for a step prints nothing; a new
    /// message, or the same one for another step, prints.
    #[test]
    fn a_repeated_waiting_message_is_dropped_per_step() {
        let p = Printer::new(OutputFormat::Text);
        assert!(!p.repeated("create_vms/a", "NIC a: accepted"));
        assert!(p.repeated("create_vms/a", "NIC a: accepted"));
        assert!(!p.repeated("create_vms/b", "NIC a: accepted"));
        assert!(!p.repeated("create_vms/a", "VM a: creating"));
        assert!(!p.repeated("create_vms/a", "NIC a: accepted"));
    }
}
