//! Nothing here: the programs are the examples next to this crate's manifest.
