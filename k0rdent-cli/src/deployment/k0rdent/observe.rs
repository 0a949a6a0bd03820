//! `install_k0rdent` as observed through the cluster layer: the `kcm` helm release (pending
//! ones included) and k0rdent's `Management` object. Done only when the release is deployed
//! and `Management` `kcm` is Ready, has observed its latest generation and runs the Release
//! of the configured version.

use k0rdent_core::state::StepRecord;
use k0rdent_core::{Evidence, Observation, Snapshot};

use crate::cluster::facts::{HelmRelease, release_name};
use crate::cluster::observer::{CLUSTER_OBSERVER, ClusterFacts};

/// The helm release name of k0rdent's management components.
pub const RELEASE: &str = "kcm";

/// What to do with the `kcm` release before waiting for readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseAction {
    /// No release (or only a failed first install): `helm upgrade --install`.
    Install,
    /// A `pending-install` left by a helm that died: drop its pending record, install again
    /// (an uninstall would delete kcm's CRDs and can hang on the Management finalizer).
    ReinstallPending {
        /// Its revision.
        revision: String,
    },
    /// A `pending-upgrade`/`pending-rollback` left by a helm that died: roll back.
    RollBack,
    /// Deployed: kcm's Flux owns it now; never run helm against it again.
    Keep,
}

/// Decides from the latest revision of `kcm`.
pub fn release_action(releases: &[HelmRelease]) -> ReleaseAction {
    match releases.iter().find(|r| r.name == RELEASE) {
        None => ReleaseAction::Install,
        Some(r) => match r.status.as_str() {
            "pending-install" => ReleaseAction::ReinstallPending {
                revision: r.revision.clone(),
            },
            "pending-upgrade" | "pending-rollback" => ReleaseAction::RollBack,
            "deployed" | "superseded" => ReleaseAction::Keep,
            // failed, uninstalled, unknown: helm's own upgrade --install handles them.
            _ => ReleaseAction::Install,
        },
    }
}

/// Interprets the snapshot for `install_k0rdent` (`version`: `software.k0rdent.version`).
pub fn observe(snapshot: &Snapshot, record: Option<&StepRecord>, version: &str) -> Observation {
    let unseen = |o: Observation| crate::deployment::unseen::not_yet_seen(record, o);
    let c = match snapshot.require::<ClusterFacts>(CLUSTER_OBSERVER) {
        Ok(c) => c,
        Err(o) => return unseen(o),
    };
    if !c.kubeconfig {
        return Observation::absent("k0s is not installed yet (no kubeconfig)");
    }
    if c.answered_by.is_none() {
        return unseen(Observation::unknown(format!(
            "the cluster API does not answer: {}",
            c.api_error.as_deref().unwrap_or("no controller answered")
        )));
    }
    let Some(releases) = &c.releases else {
        return unseen(Observation::unknown(format!(
            "cannot list helm releases: {}",
            c.helm_error.as_deref().unwrap_or("helm failed")
        )));
    };
    let want = release_name(version);
    let mut ev = Evidence::new().with("release", RELEASE);
    match release_action(releases) {
        ReleaseAction::Install => {
            return Observation::absent(format!("the {RELEASE} helm release is not installed"));
        }
        ReleaseAction::ReinstallPending { revision } => {
            return Observation::partial(
                format!(
                    "the {RELEASE} release is pending-install (revision {revision}, left by a helm \
                     that stopped): its pending record is removed and it is installed again"
                ),
                ev,
            );
        }
        ReleaseAction::RollBack => {
            return Observation::partial(
                format!(
                    "the {RELEASE} release was left pending by a helm that stopped: it is rolled back"
                ),
                ev,
            );
        }
        ReleaseAction::Keep => {}
    }
    let Some(m) = &c.management else {
        return Observation::partial(
            "the kcm release is deployed; the Management object kcm does not exist yet",
            ev,
        );
    };
    if let Some(r) = &m.status_release {
        ev = ev.with("management_release", r);
    }
    if m.spec_release.as_deref() != Some(want.as_str()) {
        return Observation::partial(
            format!(
                "k0rdent runs {} but the configuration asks for {version}: upgraded by applying \
                 the Release {want} and patching Management.spec.release",
                m.status_release
                    .as_deref()
                    .or(m.spec_release.as_deref())
                    .unwrap_or("no release")
            ),
            ev,
        );
    }
    if m.ready && m.observed && m.status_release.as_deref() == Some(want.as_str()) {
        return Observation::done(ev.with("management", "Ready"));
    }
    Observation::partial(
        format!(
            "Management kcm is not ready yet{}",
            m.message
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ),
        ev,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(status: &str) -> Vec<HelmRelease> {
        vec![HelmRelease {
            name: "kcm".into(),
            namespace: "kcm-system".into(),
            revision: "2".into(),
            status: status.into(),
            chart: "kcm-1.4.0".into(),
            app_version: "1.4.0".into(),
        }]
    }

    #[test]
    fn a_deployed_release_is_never_touched_and_pending_ones_are_settled() {
        assert_eq!(release_action(&[]), ReleaseAction::Install);
        assert_eq!(release_action(&rel("deployed")), ReleaseAction::Keep);
        assert_eq!(
            release_action(&rel("pending-install")),
            ReleaseAction::ReinstallPending {
                revision: "2".into()
            }
        );
        assert_eq!(
            release_action(&rel("pending-upgrade")),
            ReleaseAction::RollBack
        );
        assert_eq!(
            release_action(&rel("pending-rollback")),
            ReleaseAction::RollBack
        );
        assert_eq!(release_action(&rel("failed")), ReleaseAction::Install);
    }
}
