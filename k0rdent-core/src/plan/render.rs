//! Human rendering of a plan.

use std::fmt;

use super::{Decision, Plan};
use crate::remedy::Hint;

fn symbol(d: Decision) -> char {
    match d {
        Decision::Skip => '=',
        Decision::Run => '+',
        Decision::Resume => '>',
        Decision::Rerun => '~',
        Decision::Replace => '!',
        Decision::Blocked => 'x',
        Decision::Disabled => '-',
    }
}

impl fmt::Display for Plan {
    /// One line per step (`symbol decision step  reason`), a `hint:` line under blocked steps
    /// with a remedy, and a summary line. A plan with nothing to do says so.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.has_changes() && !self.is_blocked() {
            return writeln!(
                f,
                "Nothing to do: all {} steps are up to date.",
                self.entries.len()
            );
        }
        let width = self
            .entries
            .iter()
            .map(|e| e.step.as_str().len())
            .max()
            .unwrap_or(0);
        for e in &self.entries {
            let mark = if e.provisional { "*" } else { " " };
            writeln!(
                f,
                "  {} {:<8}{} {:<width$}  {}",
                symbol(e.decision),
                e.decision.as_str(),
                mark,
                e.step.as_str(),
                e.message,
            )?;
            if e.decision == Decision::Blocked
                && let Some(hint) = Hint::of(&e.reason)
            {
                writeln!(f, "      {hint}")?;
            }
        }
        let summary: Vec<String> = self
            .counts()
            .iter()
            .map(|(d, n)| format!("{n} {}", d.as_str()))
            .collect();
        writeln!(f, "Plan: {}", summary.join(", "))?;
        if self.entries.iter().any(|e| e.provisional) {
            writeln!(f, "(* re-planned after the steps before it have run)")?;
        }
        Ok(())
    }
}
