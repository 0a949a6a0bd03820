//! The `cluster` and `vm_sizing` sections: how many controllers and workers, in which zones,
//! of which size, and whether the sizes run the image's architecture.

use k0rdent_azure::naming::{AvailabilityZone, VmSize};
use k0rdent_core::role::NodeRole;

use super::checks::Checks;
use crate::config::{Image, NodeGroup, is_arm64, raw};

/// A group as far as it checked out: the count and zones always (the network checks need
/// them), the size only when it is one.
pub(super) struct Group {
    pub(super) count: u32,
    zones: Vec<u8>,
    size: Option<VmSize>,
}

impl Group {
    /// The validated group, if its size checked out.
    pub(super) fn finish(self) -> Option<NodeGroup> {
        Some(NodeGroup {
            count: self.count,
            zones: self.zones,
            size: self.size?,
        })
    }
}

/// `cluster.<role>s` with `vm_sizing.<role>.size`; at least `min` nodes.
fn group(
    c: &mut Checks,
    role: NodeRole,
    g: raw::NodeGroup,
    size: Option<String>,
    min: i64,
) -> Group {
    let count_key = format!("cluster.{role}s.count");
    let count = match g.count.unwrap_or(1) {
        n if n < min => {
            c.error(&count_key, format!("must be at least {min}, found {n}"));
            1
        }
        n if n > 100 => {
            c.error(
                &count_key,
                format!("{n} is more than this tool deploys (at most 100)"),
            );
            1
        }
        n => u32::try_from(n).unwrap_or(1),
    };
    let zones_key = format!("cluster.{role}s.zones");
    let mut zones = Vec::new();
    for z in g.zones.unwrap_or_default() {
        match AvailabilityZone::new(z) {
            Ok(z) => zones.push(z.get()),
            Err(e) => c.error(&zones_key, e.to_string()),
        }
    }
    let size_key = format!("vm_sizing.{role}.size");
    let size = c.text(&size_key, size, "Standard_D2s_v5");
    let size = VmSize::parse(&size)
        .map_err(|e| c.error(&size_key, e.to_string()))
        .ok();
    Group { count, zones, size }
}

fn arch(arm64: bool) -> &'static str {
    if arm64 { "arm64" } else { "x86_64" }
}

/// The controllers and the workers, with the warnings about their counts and a problem for a
/// size whose architecture is not the image's.
pub(super) fn groups(
    c: &mut Checks,
    cluster: raw::Cluster,
    sizing: raw::VmSizing,
    image: &Image,
) -> (Group, Group) {
    let controllers = group(
        c,
        NodeRole::Controller,
        cluster.controllers,
        sizing.controller.size,
        1,
    );
    let workers = group(c, NodeRole::Worker, cluster.workers, sizing.worker.size, 0);
    if controllers.count > 1 && controllers.count.is_multiple_of(2) {
        c.warn(
            "cluster.controllers.count",
            format!(
                "{} controllers: an odd number keeps etcd quorum",
                controllers.count
            ),
        );
    }
    if workers.count == 0 {
        c.warn(
            "cluster.workers.count",
            "0 workers: workloads run on the controllers",
        );
    }
    for (key, g) in [
        ("vm_sizing.controller.size", &controllers),
        ("vm_sizing.worker.size", &workers),
    ] {
        if let Some(size) = &g.size
            && is_arm64(image) != size.is_arm64()
        {
            c.error(
                key,
                format!(
                    "{size} is an {} size but the image {image} is {}",
                    arch(size.is_arm64()),
                    arch(is_arm64(image)),
                ),
            );
        }
    }
    (controllers, workers)
}
