//! A stand-in Helm 3, written from Helm's documentation and sources: its release storage
//! ([`record`]), the commands k0rdent-deploy runs and the ways they fail.

pub mod record;
