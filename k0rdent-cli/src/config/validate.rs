//! From the file's keys to a validated [`Config`]: defaults, then every check, each failure
//! one problem naming its key.

// User names Azure refuses for the admin account: one list, in the library.
use k0rdent_azure::spec::RESERVED_ADMIN_USERS as AZURE_RESERVED_USERS;
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::raw::{self, NumOrText, Raw};
use super::{
    AzureSettings, Config, ConfigError, Eviction, Image, Kof, NetworkSettings, NodeGroup, Priority,
    Problem, Software, Timeouts, is_arm64,
};

/// k0s's default pod and service networks: the tunnel must not overlap them.
const K0S_POD_CIDR: &str = "10.244.0.0/16";
const K0S_SERVICE_CIDR: &str = "10.96.0.0/12";

struct Checks {
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Checks {
    fn error(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: Some(key.to_owned()),
            line: None,
            message: message.into(),
        });
    }

    fn warn(&mut self, key: &str, message: impl Into<String>) {
        self.warnings.push(format!("{key}: {}", message.into()));
    }

    fn text(&mut self, key: &str, v: Option<String>, default: &str) -> String {
        match v {
            Some(s) if s.trim().is_empty() => {
                self.error(key, "must not be empty (remove the key to use the default)");
                default.to_owned()
            }
            Some(s) => s.trim().to_owned(),
            None => default.to_owned(),
        }
    }

    fn cidr(&mut self, key: &str, v: Option<String>, default: &str) -> Ipv4Net {
        let text = v.unwrap_or_else(|| default.to_owned());
        let fallback = default.parse().unwrap_or_default();
        match text.trim().parse::<Ipv4Net>() {
            Ok(net) if net.trunc() != net => {
                self.error(
                    key,
                    format!("{text} has host bits set; did you mean {}?", net.trunc()),
                );
                fallback
            }
            Ok(net) => net,
            Err(_) => {
                self.error(
                    key,
                    format!("{text:?} is not an IPv4 CIDR like 10.0.0.0/16"),
                );
                fallback
            }
        }
    }

    fn seconds(&mut self, key: &str, v: Option<i64>, default: u64, unit: u64) -> Duration {
        match v {
            None => Duration::from_secs(default * unit),
            Some(n) if n > 0 => Duration::from_secs(u64::try_from(n).unwrap_or(1) * unit),
            Some(n) => {
                self.error(key, format!("must be a positive number, found {n}"));
                Duration::from_secs(default * unit)
            }
        }
    }

    fn group(
        &mut self,
        role: &str,
        g: raw::NodeGroup,
        size: Option<String>,
        min: i64,
    ) -> NodeGroup {
        let count_key = format!("cluster.{role}s.count");
        let count = match g.count.unwrap_or(1) {
            n if n < min => {
                self.error(&count_key, format!("must be at least {min}, found {n}"));
                1
            }
            n if n > 100 => {
                self.error(
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
            match u8::try_from(z) {
                Ok(z @ 1..=3) => zones.push(z),
                _ => self.error(
                    &zones_key,
                    format!("zone {z} is not an Azure availability zone (1, 2 or 3)"),
                ),
            }
        }
        let size_key = format!("vm_sizing.{role}.size");
        let size = self.text(&size_key, size, "Standard_D2s_v5");
        if !size.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.error(
                &size_key,
                format!("{size:?} is not an Azure VM size like Standard_D4s_v5"),
            );
        }
        NodeGroup { count, zones, size }
    }
}

fn parse_image(c: &mut Checks, text: &str) -> Image {
    match text.parse::<Image>() {
        Ok(i) => i,
        Err(e) => {
            c.error("azure.vm_image", e.message);
            Image {
                publisher: "Debian".into(),
                offer: "debian-12".into(),
                sku: "12-gen2".into(),
                version: "latest".into(),
            }
        }
    }
}

/// Azure arm64 sizes carry a `p` after the vCPU count (`Standard_D4pls_v6`, `E8ps_v5`).
fn arm64_size(size: &str) -> bool {
    let s = size.strip_prefix("Standard_").unwrap_or(size);
    let rest = s.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let after_digits = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.len() != after_digits.len() && after_digits.starts_with('p')
}

fn private_range(net: &Ipv4Net) -> bool {
    [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
    ]
    .iter()
    .filter_map(|r| r.parse::<Ipv4Net>().ok())
    .any(|r| r.contains(net))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub(super) fn validate(path: &Path, raw: Raw) -> Result<(Config, Vec<String>), ConfigError> {
    let mut c = Checks {
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(schema) = &raw.metadata.schema
        && schema != "k0rdent-config"
    {
        c.warn(
            "metadata.schema",
            format!("{schema:?} is not \"k0rdent-config\""),
        );
    }

    // azure
    let location = match raw.azure.location {
        None => {
            c.error("azure.location", "is required (e.g. westeurope)");
            String::new()
        }
        Some(l)
            if l.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
                && !l.is_empty() =>
        {
            l
        }
        Some(l) => {
            c.error(
                "azure.location",
                format!("{l:?} is not an Azure location name like westeurope"),
            );
            l
        }
    };
    let image_text = c.text(
        "azure.vm_image",
        raw.azure.vm_image,
        "Debian:debian-12:12-gen2:latest",
    );
    let image = parse_image(&mut c, &image_text);
    let priority = match raw
        .azure
        .vm_priority
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("regular") => Priority::Regular,
        Some("spot") => Priority::Spot,
        Some(_) => {
            c.error(
                "azure.vm_priority",
                format!(
                    "{:?} must be Regular or Spot",
                    raw.azure.vm_priority.unwrap_or_default()
                ),
            );
            Priority::Regular
        }
    };
    let eviction_policy = match raw
        .azure
        .eviction_policy
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("deallocate") => Eviction::Deallocate,
        Some("delete") => Eviction::Delete,
        Some(_) => {
            c.error(
                "azure.eviction_policy",
                format!(
                    "{:?} must be Deallocate or Delete",
                    raw.azure.eviction_policy.unwrap_or_default()
                ),
            );
            Eviction::Deallocate
        }
    };
    if let Some(sub) = &raw.azure.subscription_id
        && (sub.len() != 36 || sub.chars().filter(|ch| *ch == '-').count() != 4)
    {
        c.error(
            "azure.subscription_id",
            format!("{sub:?} is not a subscription GUID"),
        );
    }
    if let Some(rg) = &raw.azure.resource_group
        && (rg.is_empty()
            || rg.len() > 90
            || !rg
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "-_.()".contains(ch)))
    {
        c.error(
            "azure.resource_group",
            format!("{rg:?} is not a valid resource group name"),
        );
    }
    let write_concurrency = match raw.azure.write_concurrency {
        Some(0) => {
            c.error("azure.write_concurrency", "must be at least 1");
            10
        }
        Some(n) => n,
        None => 10,
    };
    let os_disk_size_gb = match raw.azure.os_disk_size_gb {
        Some(n) if !(30..=4095).contains(&n) => {
            c.error("azure.os_disk_size_gb", format!("{n} is outside 30..4095"));
            64
        }
        Some(n) => n,
        None => 64,
    };

    // cluster and sizes
    let controllers = c.group(
        "controller",
        raw.cluster.controllers,
        raw.vm_sizing.controller.size,
        1,
    );
    let workers = c.group("worker", raw.cluster.workers, raw.vm_sizing.worker.size, 0);
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
        if is_arm64(&image) != arm64_size(&g.size) {
            c.error(
                key,
                format!(
                    "{} is an {} size but the image {} is {}",
                    g.size,
                    if arm64_size(&g.size) {
                        "arm64"
                    } else {
                        "x86_64"
                    },
                    image,
                    if is_arm64(&image) { "arm64" } else { "x86_64" },
                ),
            );
        }
    }

    // network
    let vnet = c.cidr(
        "network.vnet_prefix",
        raw.network.vnet_prefix,
        "10.0.0.0/16",
    );
    let subnet = c.cidr(
        "network.subnet_prefix",
        raw.network.subnet_prefix,
        "10.0.1.0/24",
    );
    let wireguard = c.cidr(
        "network.wireguard_network",
        raw.network.wireguard_network,
        "192.168.100.0/24",
    );
    if !vnet.contains(&subnet) {
        c.error(
            "network.subnet_prefix",
            format!("{subnet} is not inside network.vnet_prefix {vnet}"),
        );
    }
    if subnet.prefix_len() > 29 {
        c.error(
            "network.subnet_prefix",
            format!("{subnet} is too small for the VMs (Azure needs at least a /29)"),
        );
    }
    if overlaps(&wireguard, &vnet) {
        c.error(
            "network.wireguard_network",
            format!("{wireguard} overlaps network.vnet_prefix {vnet}"),
        );
    }
    for (name, range) in [("pod", K0S_POD_CIDR), ("service", K0S_SERVICE_CIDR)] {
        if let Ok(r) = range.parse::<Ipv4Net>() {
            if overlaps(&wireguard, &r) {
                c.error(
                    "network.wireguard_network",
                    format!("{wireguard} overlaps k0s's {name} network {r}"),
                );
            }
            if overlaps(&vnet, &r) {
                c.error(
                    "network.vnet_prefix",
                    format!("{vnet} overlaps k0s's {name} network {r}"),
                );
            }
        }
    }
    let nodes = u64::from(controllers.count) + u64::from(workers.count);
    let host_bits = 32 - u32::from(wireguard.prefix_len());
    let usable = (1u64 << host_bits).saturating_sub(2);
    if usable < nodes + 1 {
        c.error(
            "network.wireguard_network",
            format!(
                "{wireguard} has {usable} addresses; {nodes} nodes and this machine need {}",
                nodes + 1
            ),
        );
    }
    if !private_range(&wireguard) {
        c.warn("network.wireguard_network", format!("{wireguard} is not a private range; traffic to real hosts there would go into the tunnel"));
    }
    if let Some(p) = raw.network.wireguard_port
        && p < 1024
    {
        c.error(
            "network.wireguard_port",
            format!("{p} is a privileged port; use 1024-65535"),
        );
    }

    // ssh
    let ssh_user = c.text("ssh.username", raw.ssh.username, "k0rdent");
    let valid_user = ssh_user.len() <= 32
        && ssh_user.starts_with(|ch: char| ch.is_ascii_lowercase() || ch == '_')
        && ssh_user
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-');
    if !valid_user {
        c.error(
            "ssh.username",
            format!("{ssh_user:?} is not a Linux user name (lowercase, digits, _ and -)"),
        );
    } else if AZURE_RESERVED_USERS.contains(&ssh_user.as_str()) {
        c.error(
            "ssh.username",
            format!("{ssh_user:?} is reserved by Azure; pick another admin user"),
        );
    }

    // software
    let k0s_version = c.text(
        "software.k0s.version",
        raw.software.k0s.version,
        "v1.33.2+k0s.0",
    );
    let k0s_ok = k0s_version
        .strip_prefix('v')
        .and_then(|v| v.split_once("+k0s."))
        .is_some_and(|(semver, build)| {
            semver.split('.').count() == 3
                && semver
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()))
                && !build.is_empty()
                && build.chars().all(|ch| ch.is_ascii_digit())
        });
    if !k0s_ok {
        c.error(
            "software.k0s.version",
            format!("{k0s_version:?} is not a k0s version like v1.33.2+k0s.0"),
        );
    }
    let software = Software {
        k0s_version,
        k0rdent_version: c.text(
            "software.k0rdent.version",
            raw.software.k0rdent.version,
            "1.4.0",
        ),
        k0rdent_registry: c.text(
            "software.k0rdent.registry",
            raw.software.k0rdent.registry,
            "oci://ghcr.io/k0rdent/kcm/charts/kcm",
        ),
        k0rdent_namespace: c.text(
            "software.k0rdent.namespace",
            raw.software.k0rdent.namespace,
            "kcm-system",
        ),
    };

    // timeouts
    let t = raw.timeouts;
    let verification_retries = match t.verification_retries {
        Some(n) if n < 1 => {
            c.error(
                "timeouts.verification_retries",
                format!("must be at least 1, found {n}"),
            );
            3
        }
        Some(n) => u32::try_from(n).unwrap_or(3),
        None => 3,
    };
    let timeouts = Timeouts {
        ssh_connect: c.seconds("timeouts.ssh_connect", t.ssh_connect, 30, 1),
        ssh_command: c.seconds("timeouts.ssh_command", t.ssh_command, 300, 1),
        k0s_install_wait: c.seconds("timeouts.k0s_install_wait", t.k0s_install_wait, 600, 1),
        k0rdent_install_wait: c.seconds(
            "timeouts.k0rdent_install_wait",
            t.k0rdent_install_wait,
            1500,
            1,
        ),
        wireguard_connect_wait: c.seconds(
            "timeouts.wireguard_connect_wait",
            t.wireguard_connect_wait,
            5,
            1,
        ),
        vm_creation: c.seconds(
            "timeouts.vm_creation_minutes",
            t.vm_creation_minutes,
            15,
            60,
        ),
        vm_wait_check_interval: c.seconds(
            "timeouts.vm_wait_check_interval",
            t.vm_wait_check_interval,
            30,
            1,
        ),
        cloud_init: c.seconds("timeouts.cloud_init_timeout", t.cloud_init_timeout, 900, 1),
        cloud_init_check_interval: c.seconds(
            "timeouts.cloud_init_check_interval",
            t.cloud_init_check_interval,
            15,
            1,
        ),
        verification_retries,
        verification_retry_delay: c.seconds(
            "timeouts.verification_retry_delay",
            t.verification_retry_delay,
            10,
            1,
        ),
    };

    // kof
    let k = raw.kof;
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
        regional_location: r.location.unwrap_or_else(|| location.clone()),
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
    if !c.problems.is_empty() {
        return Err(ConfigError {
            path: path.to_path_buf(),
            problems: c.problems,
        });
    }
    let warnings = c
        .warnings
        .into_iter()
        .map(|w| format!("{}: {w}", path.display()))
        .collect();
    Ok((
        Config {
            owner: raw.metadata.owner.filter(|o| !o.trim().is_empty()),
            description: raw.metadata.description,
            azure: AzureSettings {
                location,
                image,
                priority,
                eviction_policy,
                subscription_id: raw.azure.subscription_id,
                resource_group: raw.azure.resource_group,
                arm_endpoint: raw.azure.arm_endpoint,
                os_disk_size_gb,
                write_concurrency,
            },
            network: NetworkSettings {
                vnet,
                subnet,
                wireguard,
                wireguard_port: raw.network.wireguard_port,
            },
            controllers,
            workers,
            ssh_user,
            software,
            timeouts,
            kof,
            azure_children: raw.azure_children.enabled.unwrap_or(false),
            azure_csi: raw.azure_csi.enabled.unwrap_or(false),
            tools: raw.tools,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::arm64_size;

    #[test]
    fn arm64_sizes_are_recognised_by_name() {
        for s in [
            "Standard_D4pls_v6",
            "Standard_D16pls_v6",
            "Standard_E8ps_v5",
            "Standard_D2pds_v5",
        ] {
            assert!(arm64_size(s), "{s}");
        }
        for s in [
            "Standard_B2s",
            "Standard_DS2_v2",
            "Standard_D4_v5",
            "Standard_A4_v2",
            "Standard_D2s_v5",
        ] {
            assert!(!arm64_size(s), "{s}");
        }
    }
}
