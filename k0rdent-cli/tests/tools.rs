//! Finding and version-checking the external tools: the real kubectl on this machine, and
//! scripts standing in for tools that print odd or unsupported versions.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use k0rdent_cli::tools::{self, HELM, K0SCTL, KUBECTL, ToolError, ToolSpec, Version};
use k0rdent_core::Remedy;

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[tokio::test]
async fn the_real_kubectl_is_found_on_path_with_its_version() {
    let t = tools::check(&KUBECTL, &BTreeMap::new()).await.unwrap();
    assert!(t.path.ends_with("kubectl"), "{t:?}");
    assert!(t.version >= Version(1, 27, 0), "{t:?}");
}

#[tokio::test]
async fn missing_misconfigured_odd_and_unsupported_tools_each_get_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let ghost = ToolSpec {
        name: "k0rdent-no-such-tool",
        ..K0SCTL
    };
    let e = tools::check(&ghost, &BTreeMap::new()).await.unwrap_err();
    assert_eq!(e.to_string(), "k0rdent-no-such-tool was not found on PATH");
    assert!(e.remedy().unwrap().contains("tools.k0rdent-no-such-tool"));

    let cfg = BTreeMap::from([("helm".to_owned(), dir.path().join("nope"))]);
    let e = tools::check(&HELM, &cfg).await.unwrap_err();
    assert!(matches!(e, ToolError::BadConfigured { .. }), "{e}");

    let old = script(&dir, "helm", "echo v3.7.2+g663a896");
    let cfg = BTreeMap::from([("helm".to_owned(), old.clone())]);
    let e = tools::check(&HELM, &cfg).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{} is helm 3.7.2; this release needs >= 3.8.0, < 4.0.0",
            old.display()
        )
    );
    let ok = script(
        &dir,
        "helm3",
        "[ \"$*\" = 'version --short' ] && echo v3.16.2+g13654a5",
    );
    let cfg = BTreeMap::from([("helm".to_owned(), ok)]);
    assert_eq!(
        tools::check(&HELM, &cfg).await.unwrap().version,
        Version(3, 16, 2)
    );

    let odd = script(&dir, "k0sctl", "echo 'no idea'");
    let cfg = BTreeMap::from([("k0sctl".to_owned(), odd)]);
    let e = tools::check(&K0SCTL, &cfg).await.unwrap_err();
    assert!(matches!(e, ToolError::NoVersion { .. }), "{e}");
    assert!(e.to_string().contains("no idea"), "{e}");
}
