//! The k0rdent CLI (in progress).
