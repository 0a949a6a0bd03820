//! Azure provider for k0rdent-deploy (in progress).

#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod credential;
pub mod model;
pub mod names;
pub mod spec;
