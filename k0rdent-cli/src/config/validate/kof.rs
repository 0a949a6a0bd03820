//! The `kof` section: the optional KOF phases, which need a domain and an admin e-mail when
//! enabled.

use std::time::Duration;

use k0rdent_azure::naming::Location;

use super::checks::Checks;
use crate::config::Kof;
use crate::config::raw::{self, NumOrText};

/// KOF's settings; the regional location defaults to `location` (the deployment's).
pub(super) fn settings(c: &mut Checks, k: raw::Kof, location: Option<&Location>) -> Kof {
    let r = k.regional;
    let root_volume_size = match r.root_volume_size {
        None => 32,
        Some(NumOrText::Num(n)) if n > 0 => u32::try_from(n).unwrap_or(32),
        Some(NumOrText::Text(s)) if s.trim().parse::<u32>().is_ok_and(|n| n > 0) => {
            s.trim().parse().unwrap_or(32)
        }
        Some(other) => {
            c.error(
                "kof.regional.root_volume_size",
                format!("{other:?} is not a size in GB"),
            );
            32
        }
    };
    let kof = Kof {
        enabled: k.enabled.unwrap_or(false),
        version: k.version.unwrap_or_else(|| "1.1.0".into()),
        istio_version: k.istio.version.unwrap_or_else(|| "1.1.0".into()),
        istio_namespace: k.istio.namespace.unwrap_or_else(|| "istio-system".into()),
        mothership_namespace: k.mothership.namespace.unwrap_or_else(|| "kof".into()),
        storage_class: k
            .mothership
            .storage_class
            .unwrap_or_else(|| "default".into()),
        install_retries: u32::try_from(k.mothership.install_retries.unwrap_or(3).max(1))
            .unwrap_or(3),
        retry_delay: Duration::from_secs(
            u64::try_from(k.mothership.retry_delay_seconds.unwrap_or(30).max(0)).unwrap_or(30),
        ),
        regional_cluster_name: r.cluster_name.unwrap_or_default(),
        regional_domain: r.domain.unwrap_or_default(),
        admin_email: r.admin_email.unwrap_or_default(),
        regional_location: r
            .location
            .unwrap_or_else(|| location.map(ToString::to_string).unwrap_or_default()),
        template: r
            .template
            .unwrap_or_else(|| "azure-standalone-cp-1-0-8".into()),
        credential: r
            .credential
            .unwrap_or_else(|| "azure-cluster-credential".into()),
        cp_instance_size: r
            .cp_instance_size
            .unwrap_or_else(|| "Standard_A4_v2".into()),
        worker_instance_size: r
            .worker_instance_size
            .unwrap_or_else(|| "Standard_A4_v2".into()),
        root_volume_size,
    };
    if kof.enabled {
        if kof.regional_domain.is_empty() {
            c.error(
                "kof.regional.domain",
                "is required when kof.enabled is true",
            );
        }
        if !kof.admin_email.contains('@') {
            c.error(
                "kof.regional.admin_email",
                "must be an e-mail address when kof.enabled is true",
            );
        }
    }
    kof
}
