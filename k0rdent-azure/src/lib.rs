//! The Azure provider of k0rdent-deploy: everything the pipeline needs from Azure, through the
//! ARM REST API (no `az` for resource work).
//!
//! - [`blob::BlobStore`]: the state, its lease-based lock and the event log in Azure Blob
//!   Storage (`--state azblob://ACCOUNT/CONTAINER/PATH`);
//! - [`keyvault::VaultKeyStore`]: a cluster's private keys as Azure Key Vault secrets
//!   (`--keys keyvault://VAULT`), purged on reset;
//! - [`credential`]: tokens from a service principal (client secret or federated token file)
//!   or `az account get-access-token`, cached and never printed;
//! - [`client::ArmClient`]: api-version per type, request and correlation ids, bounded
//!   retries honouring Retry-After, `nextLink` paging, long-running operations, typed errors;
//! - [`endpoint`] and [`transport`]: where bearer tokens may be sent, and an endpoint that
//!   cannot be reached told apart from a passing blip — for ARM and the token endpoint alike;
//! - [`preflight`]: sizes, zones, quota, image architecture and providers, before any write;
//! - [`AzureDeployment`]: the `setup_network` and `create_vms/<vm>` steps, the bulk
//!   [`observe::AzureObserver`], the `azure_preflight` and `vms_running` gates, and reset;
//!
//! The crate takes typed inputs ([`spec::AzureSpec`], [`credential::CredentialSettings`]);
//! nothing deep inside reads the environment or configuration files.
//!
//! Why every write is journaled: a deployment must resume correctly after any interruption.
//! A step records its intent before a PUT and the operation URL as soon as ARM accepts it,
//! so a resumed run polls that operation instead of writing a second time, and a run whose
//! response was lost reads the resource before writing again.
//!
//! ```no_run
//! use std::sync::Arc;
//! use k0rdent_azure::AzureDeployment;
//! use k0rdent_azure::client::{ArmClient, DEFAULT_ARM_ENDPOINT};
//! use k0rdent_azure::credential::CredentialSettings;
//! use k0rdent_core::{Engine, FileStore, Pipeline};
//!
//! # async fn run(spec: k0rdent_azure::spec::AzureSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let credential = CredentialSettings::from_env().build()?;
//! let client = ArmClient::builder(DEFAULT_ARM_ENDPOINT, "<subscription id>", credential)
//!     .write_concurrency(spec.write_concurrency)
//!     .build()?;
//! let azure = AzureDeployment::new(client, spec)?;
//! let report = azure.preflight().await?;
//! if !report.passed() {
//!     eprintln!("{report}");
//! }
//! let pipeline = azure.add_to(Pipeline::builder()).build()?;
//! let engine = Engine::builder(pipeline, Arc::new(FileStore::new("state"))).build()?;
//! engine.deploy().await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod api;
pub mod blob;
pub mod client;
pub mod credential;
pub mod endpoint;
pub mod identity;
pub mod keyvault;
pub mod model;
pub mod names;
pub mod naming;
pub mod observe;
pub mod preflight;
pub mod reset;
pub mod resources;
pub mod spec;
pub mod steps;
pub mod transport;

pub use steps::AzureDeployment;
