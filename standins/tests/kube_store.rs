//! The fake API's write rules, through the data handle the lab uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k0rdent_standins::kube::{FakeKube, NodeSpec, Part, Resource};
use serde_json::json;

fn rv(v: &serde_json::Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_stale_resource_version_is_a_conflict_and_an_unset_one_is_not() {
    let kube = FakeKube::new().unwrap();
    let created = kube
        .create(
            Resource::Secrets,
            Some("default"),
            json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}}),
        )
        .unwrap();
    let mut first = created.clone();
    first["data"]["a"] = json!("eQ==");
    let updated = kube
        .update(Resource::Secrets, Some("default"), "s", first, Part::Main)
        .unwrap();
    assert_ne!(rv(&updated), rv(&created));
    let mut stale = created.clone();
    stale["data"]["a"] = json!("eg==");
    let err = kube
        .update(
            Resource::Secrets,
            Some("default"),
            "s",
            stale.clone(),
            Part::Main,
        )
        .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    assert!(
        err.message
            .contains(r#"Operation cannot be fulfilled on secrets "s""#),
        "{}",
        err.message
    );
    stale["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    kube.update(Resource::Secrets, Some("default"), "s", stale, Part::Main)
        .unwrap();
    assert_eq!(
        kube.get(Resource::Secrets, Some("default"), "s").unwrap()["data"]["a"],
        "eg=="
    );
}

#[test]
fn creation_needs_a_free_name_and_an_existing_namespace() {
    let kube = FakeKube::new().unwrap();
    let err = kube
        .create(
            Resource::Secrets,
            Some("nope"),
            json!({"metadata": {"name": "s"}}),
        )
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, r#"namespaces "nope" not found"#)
    );
    kube.create(Resource::Nodes, None, NodeSpec::new("n").to_object())
        .unwrap();
    let err = kube
        .create(Resource::Nodes, None, NodeSpec::new("n").to_object())
        .unwrap_err();
    assert_eq!(
        (err.code, err.reason, err.message.as_str()),
        (409, "AlreadyExists", r#"nodes "n" already exists"#)
    );
    let err = kube
        .create(
            Resource::Nodes,
            None,
            json!({"kind": "Secret", "metadata": {"name": "x"}}),
        )
        .unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn custom_resources_keep_status_apart_and_count_spec_generations() {
    let kube = FakeKube::new().unwrap();
    let m = json!({"apiVersion": "k0rdent.mirantis.com/v1beta1", "kind": "Management", "metadata": {"name": "kcm"}, "spec": {"release": "a"}, "status": {"release": "ignored"}});
    let created = kube.create(Resource::Managements, None, m).unwrap();
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(
        created.get("status").is_none(),
        "status is not taken on create"
    );
    let with_status = kube
        .merge_patch(
            Resource::Managements,
            None,
            "kcm",
            json!({"status": {"release": "a"}, "spec": {"release": "b"}}),
            Part::Status,
        )
        .unwrap();
    assert_eq!(
        (
            with_status["spec"]["release"].as_str(),
            with_status["metadata"]["generation"].as_i64()
        ),
        (Some("a"), Some(1)),
        "the status subresource ignores spec"
    );
    let before = rv(&with_status);
    let same = kube
        .merge_patch(
            Resource::Managements,
            None,
            "kcm",
            json!({"spec": {"release": "a"}}),
            Part::Main,
        )
        .unwrap();
    assert_eq!(
        rv(&same),
        before,
        "a no-op write does not bump resourceVersion"
    );
    let bumped = kube
        .merge_patch(
            Resource::Managements,
            None,
            "kcm",
            json!({"spec": {"release": "b"}, "status": {"release": "x"}}),
            Part::Main,
        )
        .unwrap();
    assert_eq!(bumped["metadata"]["generation"], 2);
    assert_eq!(
        bumped["status"]["release"], "a",
        "the main resource ignores status"
    );
}

#[test]
fn finalizers_delay_deletion_until_they_are_removed() {
    let kube = FakeKube::new().unwrap();
    let m = json!({"apiVersion": "k0rdent.mirantis.com/v1beta1", "kind": "Management", "metadata": {"name": "kcm", "finalizers": ["k0rdent.mirantis.com/management"]}, "spec": {}});
    kube.create(Resource::Managements, None, m).unwrap();
    let marked = kube.delete(Resource::Managements, None, "kcm").unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert!(
        kube.management().is_some(),
        "still there while a finalizer is set"
    );
    kube.merge_patch(
        Resource::Managements,
        None,
        "kcm",
        json!({"metadata": {"finalizers": null}}),
        Part::Main,
    )
    .unwrap();
    assert!(kube.management().is_none());
}

#[test]
fn nodes_flip_readiness_and_namespaces_take_their_objects_along() {
    let kube = FakeKube::new().unwrap();
    kube.put_node(&NodeSpec::new("n").role("control-plane"))
        .unwrap();
    kube.set_node_ready("n", false).unwrap();
    let node = &kube.nodes()[0];
    assert_eq!(node["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        "true"
    );
    assert_eq!(kube.set_node_ready("missing", true).unwrap_err().code, 404);
    kube.create(
        Resource::Namespaces,
        None,
        json!({"metadata": {"name": "x"}}),
    )
    .unwrap();
    kube.create(
        Resource::Secrets,
        Some("x"),
        json!({"metadata": {"name": "s", "labels": {"owner": "helm"}}}),
    )
    .unwrap();
    assert_eq!(
        kube.list(Resource::Secrets, None, "owner=helm")
            .unwrap()
            .len(),
        1
    );
    kube.delete(Resource::Namespaces, None, "x").unwrap();
    assert!(kube.list(Resource::Secrets, None, "").unwrap().is_empty());
}
