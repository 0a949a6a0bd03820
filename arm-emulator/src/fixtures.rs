//! Ready-made specs and clients for tests against the emulator. The only module that names
//! `k0rdent_azure`: the emulator answers as the ARM documentation says, whatever the client
//! expects, so it takes nothing else from the client.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k0rdent_core::{secret::Secret, step::RetryPolicy};

use crate::Emulator;
use k0rdent_azure::client::{ArmClient, RetryConfig};
use k0rdent_azure::credential::{ClientSecretCredential, TokenCredential};
use k0rdent_azure::spec::{AzureSpec, EvictionPolicy, NodeRole as Role, Priority, VmSpec};
use k0rdent_azure::steps::{PollConfig, Tuning};

/// A test SSH public key (not a secret).
pub const SSH_PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq1oVbqnQpSxfRdxCKxLqbyoeHvmKyfGm3iUu5zH9Z1 test@k0rdent";

/// A spec with `controllers` controllers and `workers` workers, zones rotating 1–3.
pub fn spec(cluster_id: &str, controllers: usize, workers: usize) -> AzureSpec {
    let mut vms = Vec::new();
    for (role, n, size) in [
        (Role::Controller, controllers, "Standard_D2s_v5"),
        (Role::Worker, workers, "Standard_D4s_v5"),
    ] {
        for i in 1..=n {
            let name = format!("k0s-{}-{i}", role.as_str());
            vms.push(VmSpec {
                custom_data: Secret::new(
                    format!("#cloud-config\n# node {name}\nwrite_files: []\n").into_bytes(),
                ),
                name,
                role,
                size: size.into(),
                zone: Some(u8::try_from((i - 1) % 3 + 1).unwrap_or(1)),
                priority: Priority::Regular,
                eviction_policy: EvictionPolicy::Deallocate,
                image: k0rdent_azure::spec::ImageRef {
                    publisher: "Debian".into(),
                    offer: "debian-12".into(),
                    sku: "12-gen2".into(),
                    version: "latest".into(),
                },
                admin_user: "k0rdent".into(),
                ssh_public_key: SSH_PUBLIC_KEY.into(),
                os_disk_size_gb: 64,
                os_disk_type: "StandardSSD_LRS".into(),
                adopted: None,
            });
        }
    }
    AzureSpec {
        cluster_id: cluster_id.into(),
        location: "westeurope".into(),
        resource_group: None,
        vnet_cidr: "10.0.0.0/16".parse().expect("a valid CIDR literal"),
        subnet_cidr: "10.0.1.0/24".parse().expect("a valid CIDR literal"),
        wireguard_port: 51820,
        owner: "tester@example.com".into(),
        extra_tags: BTreeMap::new(),
        vms,
        write_concurrency: 10,
        imported: false,
    }
}

/// Timings for fast tests: polls of 5–20 ms, step retries after 10 ms.
pub fn fast_tuning() -> Tuning {
    Tuning {
        step_retry: RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        poll: PollConfig {
            min: Duration::from_millis(5),
            max: Duration::from_millis(200),
            default: Duration::from_millis(20),
        },
        preflight_ttl: Duration::from_secs(300),
        reset_poll: Duration::from_millis(20),
    }
}

/// Client retries for fast tests.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 8,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(30),
    }
}

impl Emulator {
    /// The emulator's service principal as a credential (token endpoint on the emulator).
    pub fn credential(&self) -> Arc<dyn TokenCredential> {
        let authority = url::Url::parse(&self.url()).expect("the emulator URL always parses");
        Arc::new(ClientSecretCredential::new(
            authority,
            &self.tenant_id(),
            &self.client_id(),
            self.client_secret(),
        ))
    }

    /// A client for the emulator with fast retries.
    pub fn client(&self) -> ArmClient {
        ArmClient::builder(&self.url(), &self.subscription_id(), self.credential())
            .retry(fast_retry())
            .build()
            .expect("the builder accepts http://127.0.0.1:<port>")
    }
}
