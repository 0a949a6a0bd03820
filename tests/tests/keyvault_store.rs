//! The Key Vault key store against the emulator's secrets API over real HTTP: exact bytes
//! round-trip (not UTF-8 included), names mapped onto `[0-9a-z-]` without collisions, one
//! cluster's keys kept apart from another's, `remove_all` deleting and purging (through a
//! deletion that is still in progress), a secret of another writer refused, and a caller
//! without the data-plane role told the role to ask for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use k0rdent_arm_emulator::Emulator;
use k0rdent_azure::credential::{CachedCredential, StaticToken};
use k0rdent_azure::keyvault::{KeyVault, KeyVaultUrl, secret_name};
use k0rdent_core::Remedy;
use k0rdent_core::store::KeyStore;

const VAULT: &str = "kv-test";

async fn vault(emu: &Emulator) -> KeyVault {
    let token = StaticToken::new(emu.issue_token(), Duration::from_secs(3600));
    KeyVault::new(
        KeyVaultUrl {
            vault: VAULT.into(),
        },
        &emu.keyvault_url(VAULT),
        Arc::new(CachedCredential::new(Arc::new(token))),
    )
    .unwrap()
}

#[tokio::test]
async fn keys_round_trip_exact_bytes_under_mapped_names() {
    let emu = Emulator::builder().start().await.unwrap();
    let kv = vault(&emu).await;
    let a = kv.for_cluster("k0rdent-ab12cd34");
    let b = kv.for_cluster("k0rdent-zz99zz99");
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    a.put_secret("ssh-admin.key", &binary).await.unwrap();
    a.put_secret("wireguard-hub.key", b"hub\n").await.unwrap();
    // Names that map alike stay apart.
    a.put_secret("wireguard-hub-key", b"other").await.unwrap();
    b.put_secret("ssh-admin.key", b"b's key").await.unwrap();
    assert_eq!(
        a.get_secret("ssh-admin.key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        &binary
    );
    assert_eq!(
        a.get_secret("wireguard-hub.key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        b"hub\n"
    );
    assert_eq!(
        a.get_secret("wireguard-hub-key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        b"other"
    );
    assert!(a.get_secret("absent.key").await.unwrap().is_none());
    // Replacing keeps one secret per key.
    a.put_secret("wireguard-hub.key", b"hub 2").await.unwrap();
    let names = emu.keyvault_secrets(VAULT);
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.contains(&secret_name("k0rdent-ab12cd34", "ssh-admin.key")));
    for n in &names {
        assert!(
            n.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'),
            "{n}"
        );
    }
    let mut fetched = a.fetch_all().await.unwrap();
    fetched.sort_by(|x, y| x.0.cmp(&y.0));
    let keys: Vec<&str> = fetched.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["ssh-admin.key", "wireguard-hub-key", "wireguard-hub.key"]
    );
    assert_eq!(fetched[2].1.expose(), b"hub 2");
}

#[tokio::test]
async fn fetch_all_pages_through_many_keys() {
    let emu = Emulator::builder().start().await.unwrap();
    let kv = vault(&emu).await.for_cluster("k0rdent-many");
    for i in 0..30 {
        kv.put_secret(
            &format!("wireguard-node-{i}.key"),
            format!("k{i}").as_bytes(),
        )
        .await
        .unwrap();
    }
    assert_eq!(kv.fetch_all().await.unwrap().len(), 30);
}

#[tokio::test]
async fn remove_all_deletes_and_purges_through_a_deletion_in_progress() {
    let emu = Emulator::builder()
        .keyvault_delete_latency(Duration::from_millis(400))
        .start()
        .await
        .unwrap();
    let kv = vault(&emu).await;
    let mine = kv.for_cluster("k0rdent-mine");
    let other = kv.for_cluster("k0rdent-other");
    mine.put_secret("ssh-admin.key", b"1").await.unwrap();
    mine.put_secret("wireguard-hub.key", b"2").await.unwrap();
    other.put_secret("ssh-admin.key", b"3").await.unwrap();
    let started = std::time::Instant::now();
    mine.remove_all().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        emu.keyvault_secrets(VAULT),
        [secret_name("k0rdent-other", "ssh-admin.key")]
    );
    assert!(emu.keyvault_deleted_secrets(VAULT).is_empty());
    // A key written again after a reset that was interrupted between delete and purge.
    mine.put_secret("ssh-admin.key", b"4").await.unwrap();
    let url = format!(
        "{}/secrets/{}?api-version=7.4",
        emu.keyvault_url(VAULT),
        secret_name("k0rdent-mine", "ssh-admin.key")
    );
    let token = emu.issue_token();
    let status = raw_delete(&url, token.expose()).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(450)).await;
    mine.put_secret("ssh-admin.key", b"5").await.unwrap();
    assert_eq!(
        mine.get_secret("ssh-admin.key")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        b"5"
    );
    mine.remove_all().await.unwrap();
    assert!(emu.keyvault_deleted_secrets(VAULT).is_empty());
}

async fn raw_delete(url: &str, token: &str) -> u16 {
    // The test's own request, outside the store (no HTTP client dependency here).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url.strip_prefix("http://").unwrap();
    let (host, path) = u.split_at(u.find('/').unwrap());
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "DELETE {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_caller_without_the_data_plane_role_is_told_the_role() {
    let emu = Emulator::builder().start().await.unwrap();
    let kv = vault(&emu).await.for_cluster("k0rdent-denied");
    emu.deny_keyvault_data(true);
    let e = kv.put_secret("ssh-admin.key", b"x").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("403") && text.contains("ForbiddenByRbac"),
        "{text}"
    );
    assert!(text.contains("keyvault://kv-test"), "{text}");
    assert!(!text.contains("emu."), "no token in errors: {text}");
    assert!(
        e.remedy().unwrap().contains("Key Vault Secrets Officer"),
        "{:?}",
        e.remedy()
    );
}

#[tokio::test]
async fn a_secret_holding_another_key_is_refused_not_overwritten() {
    let emu = Emulator::builder().start().await.unwrap();
    let kv = vault(&emu).await;
    let a = kv.for_cluster("k0rdent-a");
    a.put_secret("ssh-admin.key", b"mine").await.unwrap();
    // Another writer's value under our name: no tags (an `az keyvault secret set`).
    let secret = secret_name("k0rdent-a", "wireguard-hub.key");
    let url = format!(
        "{}/secrets/{secret}?api-version=7.4",
        emu.keyvault_url(VAULT)
    );
    let token = emu.issue_token();
    put_untagged(&url, token.expose()).await;
    let e = a.put_secret("wireguard-hub.key", b"new").await.unwrap_err();
    assert!(e.to_string().contains("not written by this store"), "{e}");
    let e = a.get_secret("wireguard-hub.key").await.unwrap_err();
    assert!(e.to_string().contains("not written by this store"), "{e}");
}

async fn put_untagged(url: &str, token: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let u = url.strip_prefix("http://").unwrap();
    let (host, path) = u.split_at(u.find('/').unwrap());
    let body = r#"{"value":"someone else's"}"#;
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}
