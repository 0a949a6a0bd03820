//! The `azure` section: location, image, priority, subscription, resource group, disk and
//! write concurrency. The naming rules are the library's types; this only maps keys to them.

use k0rdent_azure::naming::{Location, ResourceGroupName};

use super::checks::Checks;
use crate::config::raw;
use crate::config::{AzureSettings, Eviction, Image, Priority};

/// The image when `azure.vm_image` is unusable, so the size checks still run.
fn fallback_image() -> Image {
    Image {
        publisher: "Debian".into(),
        offer: "debian-12".into(),
        sku: "12-gen2".into(),
        version: "latest".into(),
    }
}

/// The section's settings (`None` when a check failed) and the image the size checks use.
pub(super) fn settings(c: &mut Checks, a: raw::Azure) -> (Image, Option<AzureSettings>) {
    let location = match a.location.as_deref().map(Location::parse) {
        None => {
            c.error("azure.location", "is required (e.g. westeurope)");
            None
        }
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            c.error("azure.location", e.to_string());
            None
        }
    };
    let image_text = c.text(
        "azure.vm_image",
        a.vm_image,
        "Debian:debian-12:12-gen2:latest",
    );
    let image = image_text.parse::<Image>().unwrap_or_else(|e| {
        c.error("azure.vm_image", e.message);
        fallback_image()
    });
    let priority = match a.vm_priority.as_deref().map(str::parse::<Priority>) {
        None => Priority::Regular,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            c.error("azure.vm_priority", e.message);
            Priority::Regular
        }
    };
    if priority == Priority::Spot {
        c.warn(
            "azure.vm_priority",
            "Spot VMs include the controllers: an eviction stops an etcd member, and losing a \
             majority stops the cluster's API; use Regular for production",
        );
    }
    let eviction_policy = match a.eviction_policy.as_deref().map(str::parse::<Eviction>) {
        None => Eviction::Deallocate,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            c.error("azure.eviction_policy", e.message);
            Eviction::Deallocate
        }
    };
    if let Some(sub) = &a.subscription_id
        && (sub.len() != 36 || sub.chars().filter(|ch| *ch == '-').count() != 4)
    {
        c.error(
            "azure.subscription_id",
            format!("{sub:?} is not a subscription GUID"),
        );
    }
    let resource_group = match a.resource_group.as_deref().map(ResourceGroupName::parse) {
        None => Ok(None),
        Some(Ok(rg)) => Ok(Some(rg)),
        Some(Err(e)) => {
            c.error("azure.resource_group", e.to_string());
            Err(())
        }
    };
    let write_concurrency = match a.write_concurrency {
        Some(0) => {
            c.error("azure.write_concurrency", "must be at least 1");
            10
        }
        Some(n) => n,
        None => 10,
    };
    let os_disk_size_gb = match a.os_disk_size_gb {
        Some(n) if !(30..=4095).contains(&n) => {
            c.error("azure.os_disk_size_gb", format!("{n} is outside 30..4095"));
            64
        }
        Some(n) => n,
        None => 64,
    };
    let settings = match (location, resource_group) {
        (Some(location), Ok(resource_group)) => Some(AzureSettings {
            location,
            image: image.clone(),
            priority,
            eviction_policy,
            subscription_id: a.subscription_id,
            resource_group,
            arm_endpoint: a.arm_endpoint,
            os_disk_size_gb,
            write_concurrency,
        }),
        _ => None,
    };
    (image, settings)
}
