//! The real `kubectl` reading and writing objects on the fake API server: the `Management`
//! custom resource, secrets selected by label, namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k0rdent_standins::kube::{Part, Resource};
use serde_json::json;
use support::cluster::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_custom_resource_is_served_and_patched() {
    let c = start().await;
    let management = json!({"apiVersion": "k0rdent.mirantis.com/v1beta1", "kind": "Management", "metadata": {"name": "kcm"}, "spec": {"release": "kcm-1-4-0"}});
    c.kube
        .create(Resource::Managements, None, management)
        .unwrap();
    let status = json!({"status": {"observedGeneration": 1, "release": "kcm-1-4-0", "conditions": [{"type": "Ready", "status": "True"}]}});
    c.kube
        .merge_patch(Resource::Managements, None, "kcm", status, Part::Status)
        .unwrap();
    let m = c.json(&["get", "management", "kcm", "-o", "json"]).await;
    assert_eq!(m["kind"], "Management");
    assert_eq!(m["apiVersion"], "k0rdent.mirantis.com/v1beta1");
    assert_eq!(m["metadata"]["generation"], 1);
    assert_eq!(m["status"]["release"], "kcm-1-4-0");
    let table = c.ok(&["get", "managements"]).await;
    assert!(
        table.starts_with("NAME") && table.contains("kcm") && table.contains("True"),
        "{table}"
    );

    c.ok(&[
        "patch",
        "management",
        "kcm",
        "--type=merge",
        "-p",
        r#"{"spec":{"release":"kcm-1-5-0"}}"#,
    ])
    .await;
    let m = c.kube.management().unwrap();
    assert_eq!(
        m["metadata"]["generation"], 2,
        "a spec change bumps the generation"
    );
    assert_eq!(
        m["status"]["observedGeneration"], 1,
        "status is untouched by the main resource"
    );
    c.ok(&[
        "patch",
        "management",
        "kcm",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"x":"y"}}}"#,
    ])
    .await;
    assert_eq!(
        c.kube.management().unwrap()["metadata"]["generation"],
        2,
        "metadata changes do not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_selected_by_label() {
    let c = start().await;
    c.kube
        .create(
            Resource::Namespaces,
            None,
            json!({"metadata": {"name": "x"}}),
        )
        .unwrap();
    let secret = |name: &str, owner: &str| json!({"metadata": {"name": name, "labels": {"owner": owner}}, "type": "helm.sh/release.v1", "data": {"release": "e30="}});
    c.kube
        .create(
            Resource::Secrets,
            Some("x"),
            secret("sh.helm.release.v1.kcm.v1", "helm"),
        )
        .unwrap();
    c.kube
        .create(Resource::Secrets, Some("x"), secret("other", "someone"))
        .unwrap();
    let err = c
        .kube
        .create(Resource::Secrets, Some("x"), secret("other", "someone"))
        .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    let list = c
        .json(&[
            "get",
            "secrets",
            "-n",
            "x",
            "-l",
            "owner=helm",
            "-o",
            "json",
        ])
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sh.helm.release.v1.kcm.v1"]);
    let table = c.ok(&["get", "secrets", "-n", "x"]).await;
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .eq(["NAME", "TYPE", "DATA", "AGE"]),
        "{table}"
    );
    let out = c
        .kubectl(&[
            "get",
            "secrets",
            "-n",
            "nope",
            "-l",
            "owner=helm",
            "-o",
            "json",
        ])
        .await;
    assert!(
        out.status.success(),
        "listing in an empty namespace is an empty list"
    );
}
