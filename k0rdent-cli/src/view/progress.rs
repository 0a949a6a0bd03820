//! Live progress on a terminal: one line per phase with N of M steps and its elapsed time,
//! under it a spinner per operation in flight with its own elapsed time and latest message,
//! phase totals and the overall time at the end. Lines that are not progress (drift, a
//! failure, a note) are printed above the live area, never through it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use k0rdent_core::event::Event;
use k0rdent_core::plan::{Decision, Plan};

/// The live area being drawn, for writers outside the printer (logs) to print through.
static DRAWING: std::sync::OnceLock<MultiProgress> = std::sync::OnceLock::new();

/// Runs `f` with the live area, if one is drawn, hidden meanwhile: log lines never tear it.
pub fn suspended<R>(f: impl FnOnce() -> R) -> R {
    match DRAWING.get() {
        Some(multi) => multi.suspend(f),
        None => f(),
    }
}

/// The live area of one run.
pub struct Live {
    multi: MultiProgress,
    phases: BTreeMap<String, Phase>,
    /// The order phases appear in (the plan's).
    order: Vec<String>,
    ops: BTreeMap<String, ProgressBar>,
    started: Instant,
    color: bool,
}

#[derive(Default)]
struct Phase {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    started: Option<Instant>,
    took: Option<Duration>,
}

/// The phase a step belongs to: the part of its id before the first `/`.
pub fn phase_of(step: &str) -> &str {
    step.split('/').next().unwrap_or(step)
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

/// Seconds as people read them: `4.2s`, `1m05s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

impl Live {
    /// A live area drawn on stderr.
    pub fn new(color: bool) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let _ = DRAWING.set(multi.clone());
        Live {
            multi,
            phases: BTreeMap::new(),
            order: Vec::new(),
            ops: BTreeMap::new(),
            started: Instant::now(),
            color,
        }
    }

    /// Prints `text` above the live area.
    pub fn println(&self, text: &str) {
        for line in text.trim_end_matches('\n').lines() {
            let _ = self.multi.println(line);
        }
    }

    fn planned(&mut self, plan: &Plan) {
        let mut totals: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for e in &plan.entries {
            let phase = phase_of(e.step.as_str());
            if !self.order.iter().any(|p| p == phase) {
                self.order.push(phase.to_owned());
            }
            let t = totals.entry(phase).or_default();
            if e.decision.executes() {
                t.0 += 1;
            } else if e.decision == Decision::Skip {
                t.1 += 1;
            }
        }
        for (phase, (work, skipped)) in totals {
            let p = self.phases.entry(phase.to_owned()).or_default();
            // A re-plan after upstream steps ran: the phase's size is what is done plus
            // what is still to do.
            if p.bar.is_none() {
                p.total = work + skipped;
                p.done = skipped;
            } else {
                p.total = p.total.max(p.done + work);
            }
        }
    }

    fn phase_bar(&mut self, phase: &str) -> ProgressBar {
        let color = self.color;
        let p = self.phases.entry(phase.to_owned()).or_default();
        if let Some(bar) = &p.bar {
            return bar.clone();
        }
        let template = if color {
            "{spinner:.cyan} {prefix:.bold} {pos}/{len} {msg} {elapsed:.dim}"
        } else {
            "{spinner} {prefix} {pos}/{len} {msg} {elapsed}"
        };
        let bar = self
            .multi
            .add(ProgressBar::new(p.total.max(1) as u64).with_style(style(template)));
        bar.set_prefix(phase.to_owned());
        bar.set_position(p.done as u64);
        bar.enable_steady_tick(Duration::from_millis(100));
        p.started = Some(Instant::now());
        p.bar = Some(bar.clone());
        bar
    }

    fn op_bar(&mut self, step: &str) -> ProgressBar {
        if let Some(b) = self.ops.get(step) {
            return b.clone();
        }
        let phase = self.phase_bar(phase_of(step));
        let template = if self.color {
            "  {spinner:.cyan} {prefix} {wide_msg} {elapsed:.dim}"
        } else {
            "  {spinner} {prefix} {wide_msg} {elapsed}"
        };
        let bar = self.multi.insert_after(
            &phase,
            ProgressBar::new_spinner().with_style(style(template)),
        );
        bar.set_prefix(step.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.ops.insert(step.to_owned(), bar.clone());
        bar
    }

    fn finish_op(&mut self, step: &str, completed: bool) {
        if let Some(bar) = self.ops.remove(step) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        if !completed {
            return;
        }
        let phase = phase_of(step).to_owned();
        if let Some(p) = self.phases.get_mut(&phase) {
            p.done += 1;
            if let Some(bar) = &p.bar {
                bar.set_length(p.total.max(p.done) as u64);
                bar.set_position(p.done as u64);
                if p.done >= p.total {
                    let took = p.started.map(|s| s.elapsed()).unwrap_or_default();
                    p.took = Some(took);
                    bar.finish_and_clear();
                    self.multi.remove(bar);
                    let _ = self.multi.println(format!(
                        "+ {phase}: {} of {} done in {}",
                        p.done,
                        p.total,
                        human(took)
                    ));
                }
            }
        }
    }

    /// Shows `event`; returns the line to print above the live area instead, if it is not
    /// progress.
    pub fn event(&mut self, event: &Event) -> bool {
        match event {
            Event::Planned { plan } => self.planned(plan),
            Event::StepStarted { step, decision, .. } => {
                self.op_bar(step.as_str())
                    .set_message(format!("{decision}"));
            }
            Event::StepProgress { step, message } => {
                self.op_bar(step.as_str()).set_message(message.clone());
            }
            Event::StepPending { step, detail, .. } => {
                self.op_bar(step.as_str())
                    .set_message(format!("waiting: {detail}"));
            }
            Event::GateWaiting {
                step, gate, reason, ..
            } => {
                self.op_bar(step.as_str())
                    .set_message(format!("waiting for {gate}: {reason}"));
            }
            Event::StepRetrying {
                step,
                error,
                delay_ms,
                ..
            } => {
                self.op_bar(step.as_str()).set_message(format!(
                    "{error}; retrying in {}",
                    human(Duration::from_millis(*delay_ms))
                ));
            }
            Event::StepCompleted { step, .. } => self.finish_op(step.as_str(), true),
            Event::StepFailed { step, .. }
            | Event::StepBlocked { step, .. }
            | Event::StepInterrupted { step, .. } => {
                self.finish_op(step.as_str(), false);
                return false;
            }
            Event::RunFinished { .. } => self.finish(),
            _ => return false,
        }
        true
    }

    /// Clears what is left and prints the overall time.
    fn finish(&mut self) {
        for (_, bar) in std::mem::take(&mut self.ops) {
            bar.finish_and_clear();
        }
        for p in self.phases.values_mut() {
            if let Some(bar) = p.bar.take() {
                bar.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
        let ran: Vec<String> = self
            .order
            .iter()
            .filter_map(|name| {
                let p = self.phases.get(name)?;
                p.took.map(|t| format!("{name} {}", human(t)))
            })
            .collect();
        if !ran.is_empty() {
            let _ = self.multi.println(format!(
                "Finished in {} ({}).",
                human(self.started.elapsed()),
                ran.join(", ")
            ));
        }
    }
}
