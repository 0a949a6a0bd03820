//! Azure provider for k0rdent-deploy (in progress).

#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod credential;
pub mod identity;
pub mod model;
pub mod names;
pub mod observe;
pub mod preflight;
pub mod reset;
pub mod resources;
pub mod spec;
pub mod steps;

pub use steps::AzureDeployment;
#[cfg(feature = "emulator")]
pub mod emulator;
