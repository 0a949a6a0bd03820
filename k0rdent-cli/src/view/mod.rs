//! How text output looks: colour and width from the terminal (`term`), and aligned tables
//! (`table`). The printer decides once per run; commands build tables and hand them over.

pub mod progress;
pub mod table;
pub mod term;
pub mod tunnel;

pub use table::{Cell, Paint, Table};
pub use term::Term;
