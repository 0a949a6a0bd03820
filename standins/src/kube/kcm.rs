//! A stand-in for kcm's controller and Flux, switched on by the lab: after a Helm release
//! `kcm` is deployed it creates the `Management` `kcm` (and its `Release`), later marks it
//! Ready, reconciles `spec.release` changes the way k0rdent upgrades are made, and can bump
//! the Helm release revision on its own as Flux's HelmRelease does after an install.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::helm::record;

use super::FakeKube;
use super::resources::Resource;
use super::store::{Part, now_rfc3339};

/// Timings of the simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KcmSimulation {
    /// The Helm release name watched (`kcm`).
    pub release_name: String,
    /// Delay between the release becoming `deployed` and the `Management` appearing.
    pub appear_after: Duration,
    /// Delay between a `Management` generation appearing and it being reconciled Ready.
    pub ready_after: Duration,
    /// When set, this long after the `Management` first becomes Ready a new Helm revision
    /// (`deployed`, the previous one `superseded`) is written, as Flux would.
    pub flux_bump_after: Option<Duration>,
}

impl Default for KcmSimulation {
    fn default() -> Self {
        KcmSimulation {
            release_name: "kcm".into(),
            appear_after: Duration::from_millis(300),
            ready_after: Duration::from_millis(500),
            flux_bump_after: None,
        }
    }
}

/// Keeps the simulation running; dropping it stops it.
#[derive(Debug)]
pub struct KcmSimulationHandle {
    task: JoinHandle<()>,
}

impl Drop for KcmSimulationHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `Release` object name kcm uses for a chart version: `kcm-1-4-0` for `1.4.0`.
pub fn release_object_name(version: &str) -> String {
    format!("kcm-{}", version.replace(['.', '+'], "-"))
}

#[derive(Default)]
struct State {
    deployed_seen: Option<Instant>,
    created: bool,
    reconcile_since: Option<(Value, Instant)>,
    first_ready: Option<Instant>,
    bumped: bool,
}

impl FakeKube {
    /// Starts the simulation on the current Tokio runtime.
    pub fn start_kcm_simulation(&self, sim: KcmSimulation) -> KcmSimulationHandle {
        let kube = self.clone();
        let task = tokio::spawn(async move {
            let mut changes = kube.subscribe();
            let mut state = State::default();
            loop {
                tick(&kube, &sim, &mut state, Instant::now());
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        });
        KcmSimulationHandle { task }
    }

    /// The cluster-scoped `Management` `kcm`, if it exists.
    pub fn management(&self) -> Option<Value> {
        self.get(Resource::Managements, None, "kcm")
    }
}

/// The newest `deployed` record of the watched release (secret object and decoded release).
fn latest_deployed(kube: &FakeKube, name: &str) -> Option<(Value, record::Release)> {
    let selector = format!("owner=helm,name={name},status=deployed");
    let secrets = kube.list(Resource::Secrets, None, &selector).ok()?;
    secrets
        .into_iter()
        .filter_map(|s| record::from_secret(&s).ok().map(|r| (s, r)))
        .max_by_key(|(_, r)| r.version)
}

fn tick(kube: &FakeKube, sim: &KcmSimulation, st: &mut State, now: Instant) {
    let deployed = latest_deployed(kube, &sim.release_name);
    if let Some((_, release)) = &deployed {
        let seen = *st.deployed_seen.get_or_insert(now);
        if !st.created && kube.management().is_none() && now - seen >= sim.appear_after {
            let release_name = release_object_name(&release.chart.metadata.version);
            ensure_release_object(kube, &release_name, &release.chart.metadata.version);
            let management = json!({
                "apiVersion": "k0rdent.mirantis.com/v1beta1",
                "kind": "Management",
                "metadata": {"name": "kcm"},
                "spec": {"release": release_name, "providers": []},
            });
            st.created = kube.create(Resource::Managements, None, management).is_ok();
        }
    }
    reconcile_management(kube, sim, st, now);
    if let (Some(after), Some(ready_at), Some((secret, release))) =
        (sim.flux_bump_after, st.first_ready, deployed)
        && !st.bumped
        && now - ready_at >= after
    {
        st.bumped = flux_bump(kube, &secret, release);
    }
}

fn ensure_release_object(kube: &FakeKube, name: &str, version: &str) {
    if kube.get(Resource::Releases, None, name).is_some() {
        return;
    }
    let object = json!({
        "apiVersion": "k0rdent.mirantis.com/v1beta1",
        "kind": "Release",
        "metadata": {"name": name},
        "spec": {"version": version, "kcm": {"template": format!("kcm-{}", version.replace(['.', '+'], "-"))}},
    });
    if kube.create(Resource::Releases, None, object).is_ok() {
        let status = json!({"status": {"ready": true, "conditions": [ready(true, "Succeeded", "Release is ready", None)]}});
        let _ = kube.merge_patch(Resource::Releases, None, name, status, Part::Status);
    }
}

fn ready(ok: bool, reason: &str, message: &str, generation: Option<i64>) -> Value {
    let mut condition = json!({
        "type": "Ready",
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    });
    if let Some(generation) = generation {
        condition["observedGeneration"] = json!(generation);
    }
    condition
}

fn reconcile_management(kube: &FakeKube, sim: &KcmSimulation, st: &mut State, now: Instant) {
    let Some(management) = kube.management() else {
        st.reconcile_since = None;
        return;
    };
    let generation = management
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let wanted = management
        .pointer("/spec/release")
        .cloned()
        .unwrap_or(Value::Null);
    let is_ready = management
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let settled = is_ready
        && management
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            == Some(generation)
        && management.pointer("/status/release") == Some(&wanted);
    if settled {
        st.reconcile_since = None;
        return;
    }
    let key = json!([generation, wanted]);
    let since = match &st.reconcile_since {
        Some((k, since)) if *k == key => *since,
        _ => {
            st.reconcile_since = Some((key.clone(), now));
            now
        }
    };
    if now - since < sim.ready_after {
        return;
    }
    let release_name = wanted.as_str().unwrap_or("");
    let status = if kube.get(Resource::Releases, None, release_name).is_some() {
        json!({"status": {
            "observedGeneration": generation,
            "release": release_name,
            "conditions": [ready(true, "Succeeded", "Management is ready", Some(generation))],
        }})
    } else {
        json!({"status": {
            "observedGeneration": generation,
            "conditions": [ready(false, "ReleaseNotFound", &format!("Release {release_name} is not found"), Some(generation))],
        }})
    };
    let ok = kube
        .merge_patch(Resource::Managements, None, "kcm", status, Part::Status)
        .is_ok();
    if ok && kube.get(Resource::Releases, None, release_name).is_some() {
        st.first_ready.get_or_insert(now);
    }
}

/// Writes revision N+1 `deployed` and marks revision N `superseded`.
fn flux_bump(kube: &FakeKube, secret: &Value, release: record::Release) -> bool {
    let namespace = release.namespace.clone();
    let mut next = release.clone();
    next.version += 1;
    next.info.last_deployed = record::now();
    next.info.description = "Upgrade complete".into();
    let Ok(next_secret) = record::to_secret(&next, true) else {
        return false;
    };
    let mut old = release;
    old.info.status = "superseded".into();
    let Ok(mut old_secret) = record::to_secret(&old, false) else {
        return false;
    };
    old_secret["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"].clone();
    let old_name = record::secret_name(&old.name, old.version);
    kube.update(
        Resource::Secrets,
        Some(&namespace),
        &old_name,
        old_secret,
        Part::Main,
    )
    .is_ok()
        && kube
            .create(Resource::Secrets, Some(&namespace), next_secret)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_names_replace_dots_and_plus() {
        assert_eq!(release_object_name("1.4.0"), "kcm-1-4-0");
        assert_eq!(release_object_name("1.0.0+rc.1"), "kcm-1-0-0-rc-1");
    }
}
