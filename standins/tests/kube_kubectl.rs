//! The real `kubectl` against the fake API server, through an unmodified kubeconfig:
//! version, nodes as a server-side table, errors, discovery, authentication, listeners.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use k0rdent_standins::kube::{Identity, NodeSpec};
use support::cluster::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_reports_the_server_version() {
    let c = start().await;
    c.kube.set_server_version("v1.32.6+k0s");
    let v = c.json(&["version", "-o", "json"]).await;
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.32.6+k0s", "{v}");
    assert_eq!(v["serverVersion"]["minor"], "32");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_nodes_prints_status_roles_and_version_from_the_server_table() {
    let c = start().await;
    c.kube
        .put_node(
            &NodeSpec::new("ctrl-1")
                .role("control-plane")
                .internal_ip("10.0.0.4"),
        )
        .unwrap();
    c.kube
        .put_node(&NodeSpec::new("worker-1").ready(false))
        .unwrap();
    let out = c.ok(&["get", "nodes"]).await;
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        "{out}"
    );
    assert_eq!(lines[1][..3], ["ctrl-1", "Ready", "control-plane"], "{out}");
    assert_eq!(lines[1][4], "v1.32.4+k0s");
    assert_eq!(lines[2][..3], ["worker-1", "NotReady", "<none>"], "{out}");
    let wide = c.ok(&["get", "nodes", "-o", "wide"]).await;
    assert!(
        wide.lines().next().unwrap().contains("INTERNAL-IP") && wide.contains("10.0.0.4"),
        "{wide}"
    );

    c.kube.set_node_ready("worker-1", true).unwrap();
    let out = c.ok(&["get", "node", "worker-1", "--no-headers"]).await;
    assert_eq!(out.split_whitespace().nth(1), Some("Ready"), "{out}");
    // A strategic merge patch on the status subresource merges conditions by type.
    let patch = r#"{"status":{"conditions":[{"type":"Ready","status":"Unknown"}]}}"#;
    c.ok(&[
        "patch",
        "node",
        "ctrl-1",
        "--subresource=status",
        "-p",
        patch,
    ])
    .await;
    let out = c.ok(&["get", "node", "ctrl-1", "--no-headers"]).await;
    assert_eq!(out.split_whitespace().nth(1), Some("Unknown"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_nodes_json_lists_the_objects() {
    let c = start().await;
    c.kube.put_node(&NodeSpec::new("a")).unwrap();
    c.kube.put_node(&NodeSpec::new("b").ready(false)).unwrap();
    let list = c.json(&["get", "nodes", "-o", "json"]).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["kind"], "Node");
    assert_eq!(items[1]["metadata"]["name"], "b");
    assert_eq!(items[1]["status"]["conditions"][0]["status"], "False");
    assert!(
        items[0]["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(items[0]["metadata"]["resourceVersion"].is_string());
    assert!(items[0]["metadata"]["creationTimestamp"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_node_is_a_not_found_status() {
    let c = start().await;
    let out = c.kubectl(&["get", "node", "missing"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"Error from server (NotFound): nodes "missing" not found"#),
        "{stderr}"
    );
    let out = c.kubectl(&["get", "management", "kcm"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"Error from server (NotFound): managements.k0rdent.mirantis.com "kcm" not found"#
        ),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_resources_come_from_discovery() {
    let c = start().await;
    let out = c.ok(&["api-resources"]).await;
    for expected in ["nodes", "namespaces", "secrets", "managements", "releases"] {
        assert!(
            out.lines().any(|l| l.starts_with(expected)),
            "{expected} missing:\n{out}"
        );
    }
    assert!(
        out.lines().any(|l| l.starts_with("managements")
            && l.contains("k0rdent.mirantis.com/v1beta1")
            && l.contains("false")
            && l.contains("Management")),
        "{out}"
    );
    // Aggregated discovery was answered, so kubectl never needed the per-group lists.
    let requests = c.kube.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert!(
        paths.contains(&"/api") && paths.contains(&"/apis"),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"/api/v1") && !paths.contains(&"/apis/k0rdent.mirantis.com/v1beta1"),
        "{paths:?}"
    );
    let groups = c.ok(&["api-versions"]).await;
    assert!(
        groups.contains("k0rdent.mirantis.com/v1beta1") && groups.lines().any(|l| l == "v1"),
        "{groups}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_falls_back_to_legacy_discovery() {
    let c = start().await;
    c.kube.set_aggregated_discovery(false);
    c.kube.put_node(&NodeSpec::new("n1")).unwrap();
    let out = c.ok(&["get", "no"]).await;
    assert!(out.contains("n1") && out.contains("Ready"), "{out}");
    let out = c
        .ok(&["api-resources", "--api-group=k0rdent.mirantis.com"])
        .await;
    assert!(
        out.contains("managements") && out.contains("releases"),
        "{out}"
    );
    let paths: Vec<String> = c.kube.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/api/v1")
            && paths
                .iter()
                .any(|p| p == "/apis/k0rdent.mirantis.com/v1beta1"),
        "{paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_certificate_from_the_ca_are_refused_at_the_handshake() {
    let c = start().await;
    let bad = c.dir.path().join("untrusted");
    std::fs::write(
        &bad,
        c.kube
            .untrusted_kubeconfig(&c.listener.url(), "k0rdent-test")
            .unwrap(),
    )
    .unwrap();
    let out = c.kubectl_with(&bad, &["get", "nodes"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("tls:"), "{stderr}");
    let anonymous = c.dir.path().join("anonymous");
    let without_cert: String = std::fs::read_to_string(&c.kubeconfig)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("client-"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &anonymous,
        without_cert.replace("  user:\n", "  user: {token: not-a-certificate}\n"),
    )
    .unwrap();
    let out = c.kubectl_with(&anonymous, &["get", "nodes"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("tls: certificate required"),
        "{stderr}"
    );
    assert!(
        c.kube.requests().is_empty(),
        "no request got through: {:?}",
        c.kube.requests()
    );
    // The same server accepts the good kubeconfig.
    c.ok(&["get", "nodes"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_outside_system_masters_is_forbidden() {
    let c = start().await;
    let viewer = c.dir.path().join("viewer");
    let identity = Identity {
        user: "viewer".into(),
        groups: vec!["viewers".into()],
    };
    std::fs::write(
        &viewer,
        c.kube
            .kubeconfig_for(identity, &c.listener.url(), "k0rdent-test")
            .unwrap(),
    )
    .unwrap();
    let out = c.kubectl_with(&viewer, &["get", "nodes"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"Error from server (Forbidden): nodes is forbidden: User "viewer" cannot list resource "nodes""#), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_listeners_share_the_data_and_one_can_be_cut() {
    let c = start().await;
    let second = c.kube.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let second_config = c.dir.path().join("second");
    std::fs::write(
        &second_config,
        c.kube
            .admin_kubeconfig(&second.url(), "k0rdent-test")
            .unwrap(),
    )
    .unwrap();
    c.kube.put_node(&NodeSpec::new("shared")).unwrap();
    let out = c
        .kubectl_with(&second_config, &["get", "nodes", "-o", "name"])
        .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "node/shared");
    second.stop().await;
    let out = c
        .kubectl_with(&second_config, &["get", "nodes", "-o", "name"])
        .await;
    assert!(!out.status.success(), "the cut listener no longer answers");
    assert_eq!(
        c.ok(&["get", "nodes", "-o", "name"]).await.trim(),
        "node/shared"
    );
}
