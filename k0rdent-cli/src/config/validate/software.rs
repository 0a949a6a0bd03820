//! The `software` section: the k0s and k0rdent versions and where k0rdent comes from.

use super::checks::Checks;
use crate::config::{Software, raw};

/// `v1.33.2+k0s.0`: a three-part version and a numeric k0s build.
fn is_k0s_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|v| v.split_once("+k0s."))
        .is_some_and(|(semver, build)| {
            semver.split('.').count() == 3
                && semver
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()))
                && !build.is_empty()
                && build.chars().all(|ch| ch.is_ascii_digit())
        })
}

/// The versions, with defaults.
pub(super) fn versions(c: &mut Checks, s: raw::Software) -> Software {
    let k0s_version = c.text("software.k0s.version", s.k0s.version, "v1.33.2+k0s.0");
    if !is_k0s_version(&k0s_version) {
        c.error(
            "software.k0s.version",
            format!("{k0s_version:?} is not a k0s version like v1.33.2+k0s.0"),
        );
    }
    let k0rdent_version = c.text("software.k0rdent.version", s.k0rdent.version, "1.4.0");
    // Where k0rdent publishes each version's Release object (its upgrade documentation).
    let release_manifest =
        format!("https://github.com/k0rdent/kcm/releases/download/v{k0rdent_version}/release.yaml");
    Software {
        k0s_version,
        k0rdent_release_manifest: c.text(
            "software.k0rdent.release_manifest",
            s.k0rdent.release_manifest,
            &release_manifest,
        ),
        k0rdent_version,
        k0rdent_registry: c.text(
            "software.k0rdent.registry",
            s.k0rdent.registry,
            "oci://ghcr.io/k0rdent/kcm/charts/kcm",
        ),
        k0rdent_namespace: c.text(
            "software.k0rdent.namespace",
            s.k0rdent.namespace,
            "kcm-system",
        ),
    }
}
