//! Aligned tables with a header row: every column as wide as its widest cell, the last
//! column shortened with `…` to fit the terminal (never on a pipe or with `-v`), colour only
//! when the stream takes it.

use console::{Style, measure_text_width, truncate_str};

/// A cell's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// None.
    Plain,
    /// Work that adds (run).
    Green,
    /// Work that changes or resumes, drift.
    Yellow,
    /// Blocked, failed, replaced.
    Red,
    /// Nothing to do.
    Dim,
}

impl Paint {
    fn style(self) -> Style {
        let s = Style::new().force_styling(true);
        match self {
            Paint::Plain => s,
            Paint::Green => s.green(),
            Paint::Yellow => s.yellow(),
            Paint::Red => s.red().bold(),
            Paint::Dim => s.dim(),
        }
    }
}

/// One cell.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    paint: Paint,
}

impl Cell {
    /// Plain text.
    pub fn new(text: impl Into<String>) -> Self {
        Cell::painted(text, Paint::Plain)
    }

    /// Coloured text (on a terminal).
    pub fn painted(text: impl Into<String>, paint: Paint) -> Self {
        Cell {
            text: text.into(),
            paint,
        }
    }
}

/// A table: a header and rows, each row optionally followed by indented lines of its own
/// (a remedy under a blocked step).
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<(Vec<Cell>, Vec<String>)>,
    /// The columns that may be shortened to fit (by default the last).
    shrink: Vec<usize>,
}

const GAP: &str = "  ";
/// A column is never shortened below this: shorter, it says nothing.
const MIN_SHRUNK: usize = 16;

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&'static str]) -> Self {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
            shrink: vec![header.len().saturating_sub(1)],
        }
    }

    /// Lets these columns (0-based) be shortened to fit, the widest first, instead of only
    /// the last.
    pub fn shrinking(mut self, columns: &[usize]) -> Self {
        self.shrink = columns.to_vec();
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) -> &mut Self {
        self.rows.push((cells, Vec::new()));
        self
    }

    /// Adds a line under the last row, indented to its second column.
    pub fn under(&mut self, line: impl Into<String>) -> &mut Self {
        if let Some((_, lines)) = self.rows.last_mut() {
            lines.push(line.into());
        }
        self
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text: `width` is the terminal's (`None`: nothing shortened), `color`
    /// whether to colour. Cells never exceed their column: with a width, the shrinking
    /// columns give up room (to no less than 16 characters each) until the rows fit.
    pub fn render(&self, width: Option<usize>, color: bool) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for (cells, _) in &self.rows {
            for (i, c) in cells.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(measure_text_width(&c.text));
            }
        }
        if let Some(room) = width {
            let total = widths.iter().sum::<usize>() + GAP.len() * columns.saturating_sub(1);
            let mut over = total.saturating_sub(room);
            while over > 0 {
                // The widest column that may still shrink gives up what it can.
                let Some(&i) = self
                    .shrink
                    .iter()
                    .filter(|&&i| i < columns && widths[i] > MIN_SHRUNK)
                    .max_by_key(|&&i| widths[i])
                else {
                    break;
                };
                let give = (widths[i] - MIN_SHRUNK).min(over);
                widths[i] -= give;
                over -= give;
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self.header.iter().map(|h| Cell::new(*h)).collect();
        let bold = Style::new().force_styling(true).bold();
        let line = |out: &mut String, cells: &[Cell], head: bool| {
            let mut text = String::new();
            for (i, c) in cells.iter().enumerate().take(columns) {
                let last = i + 1 == columns;
                let shown = truncate_str(&c.text, widths[i], "…").into_owned();
                let pad = widths[i].saturating_sub(measure_text_width(&shown));
                let painted = match (color, head) {
                    (false, _) => shown,
                    (true, true) => bold.apply_to(shown).to_string(),
                    (true, false) => c.paint.style().apply_to(shown).to_string(),
                };
                text.push_str(&painted);
                if !last {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(GAP);
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &header, true);
        let indent = " ".repeat(widths.first().map_or(0, |w| w + GAP.len()));
        for (cells, under) in &self.rows {
            line(&mut out, cells, false);
            for u in under {
                out.push_str(&indent);
                out.push_str(u);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(&["STEP", "ACTION", "REASON"]);
        t.row(vec![
            Cell::new("prepare_deployment"),
            Cell::painted("run", Paint::Green),
            Cell::new("not done yet"),
        ]);
        t.row(vec![
            Cell::new("kof"),
            Cell::painted("disabled", Paint::Dim),
            Cell::new("kof.enabled is false in the configuration, so this phase does nothing"),
        ])
        .under("hint: something to do");
        t
    }

    #[test]
    fn columns_align_under_their_header() {
        let text = table().render(None, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "STEP                ACTION    REASON");
        assert_eq!(lines[1], "prepare_deployment  run       not done yet");
        assert!(lines[2].starts_with("kof                 disabled  kof.enabled"));
        assert_eq!(lines[3], "                    hint: something to do");
    }

    #[test]
    fn the_last_column_is_shortened_to_the_width_only_when_there_is_one() {
        let text = table().render(Some(60), false);
        for l in text.lines().take(3) {
            assert!(measure_text_width(l) <= 60, "{l}");
        }
        assert!(text.contains('…'), "{text}");
        assert!(!table().render(None, false).contains('…'));
    }

    #[test]
    fn colour_only_when_asked() {
        assert!(!table().render(None, false).contains('\u{1b}'));
        let coloured = table().render(None, true);
        assert!(coloured.contains("\u{1b}[32mrun"), "{coloured:?}");
        // Escape codes do not count towards the alignment.
        let plain = console::strip_ansi_codes(&coloured);
        assert_eq!(plain, table().render(None, false));
    }
}
