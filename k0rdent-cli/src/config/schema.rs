//! Which keys a configuration may have: every key of the Bash tool's schema (used or not yet),
//! plus our additive ones. Anything else is an error with a "did you mean" taken from the keys
//! valid at that level — a misspelt `contollers:` must never silently deploy defaults.

/// Every key the schema knows, as dotted paths. A `*` entry accepts any key beneath its parent
/// (free-form values passed through, e.g. `kof.mothership.collectors`).
pub(crate) const KNOWN_KEYS: &[&str] = &[
    "metadata",
    "metadata.version",
    "metadata.schema",
    "metadata.description",
    "metadata.owner",
    "azure",
    "azure.location",
    "azure.vm_image",
    "azure.vm_priority",
    "azure.eviction_policy",
    "azure.subscription_id",
    "azure.resource_group",
    "azure.arm_endpoint",
    "azure.os_disk_size_gb",
    "azure.write_concurrency",
    "network",
    "network.vnet_prefix",
    "network.subnet_prefix",
    "network.wireguard_network",
    "network.wireguard_port",
    "vm_sizing",
    "vm_sizing.controller",
    "vm_sizing.controller.size",
    "vm_sizing.worker",
    "vm_sizing.worker.size",
    "cluster",
    "cluster.controllers",
    "cluster.controllers.count",
    "cluster.controllers.zones",
    "cluster.workers",
    "cluster.workers.count",
    "cluster.workers.zones",
    "ssh",
    "ssh.username",
    "ssh.key_comment",
    "software",
    "software.k0s",
    "software.k0s.version",
    "software.k0rdent",
    "software.k0rdent.version",
    "software.k0rdent.registry",
    "software.k0rdent.namespace",
    "software.k0rdent.release_manifest",
    "timeouts",
    "timeouts.ssh_connect",
    "timeouts.ssh_command",
    "timeouts.k0s_install_wait",
    "timeouts.k0rdent_install_wait",
    "timeouts.wireguard_connect_wait",
    "timeouts.vm_creation_minutes",
    "timeouts.vm_wait_check_interval",
    "timeouts.cloud_init_timeout",
    "timeouts.cloud_init_check_interval",
    "timeouts.verification_retries",
    "timeouts.verification_retry_delay",
    "kof",
    "kof.enabled",
    "kof.version",
    "kof.istio",
    "kof.istio.version",
    "kof.istio.namespace",
    "kof.mothership",
    "kof.mothership.namespace",
    "kof.mothership.storage_class",
    "kof.mothership.install_retries",
    "kof.mothership.retry_delay_seconds",
    "kof.mothership.collectors",
    "kof.mothership.collectors.*",
    "kof.regional",
    "kof.regional.cluster_name",
    "kof.regional.domain",
    "kof.regional.admin_email",
    "kof.regional.location",
    "kof.regional.template",
    "kof.regional.credential",
    "kof.regional.cp_instance_size",
    "kof.regional.worker_instance_size",
    "kof.regional.root_volume_size",
    "azure_children",
    "azure_children.enabled",
    "azure_csi",
    "azure_csi.enabled",
    "tools",
    "tools.k0sctl",
    "tools.helm",
    "tools.kubectl",
];

/// A key the schema does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownKey {
    /// The key's path from the top (`["cluster", "contollers"]`).
    pub path: Vec<String>,
    /// What it was probably meant to be (a full dotted path), if anything is close.
    pub suggestion: Option<String>,
    /// The keys valid where it stands.
    pub valid_here: Vec<&'static str>,
}

impl UnknownKey {
    /// The dotted path (`cluster.contollers`).
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }

    /// What to say about it.
    pub fn message(&self) -> String {
        match &self.suggestion {
            Some(s) => format!("unknown key; did you mean {s}?"),
            None if self.valid_here.is_empty() => "unknown key".to_owned(),
            None => format!(
                "unknown key; the keys here are {}",
                self.valid_here.join(", ")
            ),
        }
    }
}

/// A mapping key as text (YAML keys may be numbers or booleans too).
pub(crate) fn key_text(k: &serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

fn known(path: &str) -> bool {
    KNOWN_KEYS.contains(&path)
}

/// The keys valid directly under `prefix` ("" for the top level), in schema order.
fn children(prefix: &str) -> Vec<&'static str> {
    KNOWN_KEYS
        .iter()
        .filter_map(|k| {
            let rest = if prefix.is_empty() {
                Some(*k)
            } else {
                k.strip_prefix(prefix)?.strip_prefix('.')
            };
            rest.filter(|r| !r.contains('.') && *r != "*")
        })
        .collect()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), on chars,
/// ignoring ASCII case.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// How many edits still count as a typo of a key this long.
fn tolerance(len: usize) -> usize {
    match len {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    }
}

/// The closest valid key at this level, else the same key where it belongs elsewhere
/// (`location` at the top → `azure.location or kof.regional.location`).
fn suggest(prefix: &str, key: &str, valid_here: &[&'static str]) -> Option<String> {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    let best = valid_here
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= tolerance(key.chars().count()))
        .min_by_key(|(d, _)| *d);
    if let Some((_, k)) = best {
        return Some(join(k));
    }
    let elsewhere: Vec<&str> = KNOWN_KEYS
        .iter()
        .copied()
        .filter(|k| k.rsplit('.').next() == Some(key))
        .collect();
    (!elsewhere.is_empty()).then(|| elsewhere.join(" or "))
}

/// Every key of `v` the schema does not know, in document order. Keys under an unknown key
/// are not reported again.
pub(crate) fn unknown_keys(v: &serde_yaml::Value) -> Vec<UnknownKey> {
    fn walk(v: &serde_yaml::Value, path: &mut Vec<String>, out: &mut Vec<UnknownKey>) {
        let serde_yaml::Value::Mapping(m) = v else {
            return;
        };
        let prefix = path.join(".");
        if known(&format!("{prefix}.*")) {
            return;
        }
        for (k, child) in m {
            let key = key_text(k);
            path.push(key.clone());
            let dotted = path.join(".");
            if known(&dotted) {
                walk(child, path, out);
            } else {
                let valid_here = children(&prefix);
                out.push(UnknownKey {
                    path: path.clone(),
                    suggestion: suggest(&prefix, &key, &valid_here),
                    valid_here,
                });
            }
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(doc: &str) -> Vec<(String, Option<String>)> {
        unknown_keys(&serde_yaml::from_str(doc).unwrap())
            .into_iter()
            .map(|u| (u.dotted(), u.suggestion))
            .collect()
    }

    #[test]
    fn typos_are_suggested_from_the_keys_valid_at_that_level() {
        assert_eq!(
            unknown("cluster:\n  contollers:\n    count: 3\n"),
            [(
                "cluster.contollers".into(),
                Some("cluster.controllers".into())
            )]
        );
        assert_eq!(
            unknown("azure:\n  vm_priorty: Spot\n  Location: x\n"),
            [
                ("azure.vm_priorty".into(), Some("azure.vm_priority".into())),
                ("azure.Location".into(), Some("azure.location".into())),
            ]
        );
        // A transposition is one edit.
        assert_eq!(
            unknown("timeouts:\n  shs_connect: 3\n"),
            [(
                "timeouts.shs_connect".into(),
                Some("timeouts.ssh_connect".into())
            )]
        );
        // The right key in the wrong place.
        assert_eq!(
            unknown("vm_priority: Spot\nlocation: westeurope\n"),
            [
                ("vm_priority".into(), Some("azure.vm_priority".into())),
                (
                    "location".into(),
                    Some("azure.location or kof.regional.location".into())
                ),
            ]
        );
        // Nothing close: no guess, but the valid keys are listed.
        let u = unknown_keys(&serde_yaml::from_str("cluster:\n  banana: 1\n").unwrap());
        assert_eq!(u[0].suggestion, None);
        assert_eq!(
            u[0].message(),
            "unknown key; the keys here are controllers, workers"
        );
        // A misspelt tool is caught too.
        assert_eq!(
            unknown("tools:\n  kubctl: /usr/bin/kubectl\n"),
            [("tools.kubctl".into(), Some("tools.kubectl".into()))]
        );
    }

    #[test]
    fn free_form_values_and_known_keys_are_not_reported() {
        assert!(unknown("kof:\n  mothership:\n    collectors:\n      global: {a: 1}\n").is_empty());
        assert!(unknown("cluster:\n  controllers:\n    count: 3\n").is_empty());
        // Keys below an unknown key are not reported again.
        assert_eq!(unknown("extras:\n  a: 1\n"), [("extras".into(), None)]);
    }

    #[test]
    fn distance_counts_edits_and_transpositions() {
        assert_eq!(distance("contollers", "controllers"), 1);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("Zones", "zones"), 0);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    /// Every known key is read by the raw types (which deny unknown fields in unit tests), so
    /// no key can be accepted by the schema and then silently ignored.
    #[test]
    fn every_known_key_is_read_by_the_raw_types() {
        for key in KNOWN_KEYS.iter().filter(|k| !k.contains('*')) {
            if KNOWN_KEYS.iter().any(|k| k.starts_with(&format!("{key}."))) {
                continue; // A section: covered by its leaves.
            }
            let value = if key.starts_with("tools.") {
                "/bin/true"
            } else {
                "null"
            };
            let mut doc = String::new();
            for (depth, part) in key.split('.').enumerate() {
                doc.push_str(&"  ".repeat(depth));
                doc.push_str(part);
                doc.push(':');
                doc.push(if depth + 1 == key.split('.').count() {
                    ' '
                } else {
                    '\n'
                });
            }
            doc.push_str(value);
            doc.push('\n');
            let parsed: Result<super::super::raw::Raw, _> = serde_yaml::from_str(&doc);
            assert!(parsed.is_ok(), "{key}: {:?}", parsed.err());
            assert!(unknown(&doc).is_empty(), "{key}");
        }
    }
}
