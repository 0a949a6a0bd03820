//! From the file's keys to a validated [`Config`]: defaults, then every check, one function
//! per section, each failure one problem naming its key. Azure's naming rules are
//! `k0rdent_azure::naming`'s types; the sections map keys to them and never restate a rule.
//!
//! Every section runs even after another failed, so one run reports every problem; the
//! configuration is built only when none was found.

mod azure;
mod checks;
mod cluster;
mod kof;
mod network;
mod software;
mod ssh;
mod timeouts;

use std::path::Path;

use checks::Checks;

use super::raw::Raw;
use super::{Config, ConfigError};

pub(super) fn validate(path: &Path, raw: Raw) -> Result<(Config, Vec<String>), ConfigError> {
    let mut c = Checks::default();
    if let Some(schema) = &raw.metadata.schema
        && schema != "k0rdent-config"
    {
        c.warn(
            "metadata.schema",
            format!("{schema:?} is not \"k0rdent-config\""),
        );
    }
    let (image, azure) = azure::settings(&mut c, raw.azure);
    let (controllers, workers) = cluster::groups(&mut c, raw.cluster, raw.vm_sizing, &image);
    let nodes = u64::from(controllers.count) + u64::from(workers.count);
    let network = network::settings(&mut c, raw.network, nodes);
    let ssh_user = ssh::admin_user(&mut c, raw.ssh);
    let software = software::versions(&mut c, raw.software);
    let timeouts = timeouts::limits(&mut c, raw.timeouts);
    let kof = kof::settings(&mut c, raw.kof, azure.as_ref().map(|a| &a.location));
    let (Some(azure), Some(controllers), Some(workers), Some(ssh_user)) =
        (azure, controllers.finish(), workers.finish(), ssh_user)
    else {
        return Err(c.into_error(path));
    };
    if !c.passed() {
        return Err(c.into_error(path));
    }
    let config = Config {
        owner: raw.metadata.owner.filter(|o| !o.trim().is_empty()),
        description: raw.metadata.description,
        azure,
        network,
        controllers,
        workers,
        ssh_user,
        software,
        timeouts,
        kof,
        azure_children: raw.azure_children.enabled.unwrap_or(false),
        azure_csi: raw.azure_csi.enabled.unwrap_or(false),
        tools: raw.tools,
    };
    Ok((config, c.warnings(path)))
}
