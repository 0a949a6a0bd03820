//! Test doubles for the tools the install phases drive, kept apart from the product crates so
//! a mistake in the client cannot be mirrored by its own double: everything here is written
//! from the public documentation and sources of the real thing (the Kubernetes API
//! conventions, k0sctl's `v1beta1` types and rig's SSH behaviour, Helm 3's storage driver) and
//! depends on no k0rdent crate.
#![deny(missing_docs)]

pub mod helm;
pub mod k0sctl;
pub mod kube;
