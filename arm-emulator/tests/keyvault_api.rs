//! The emulator's Key Vault secrets API over real HTTP, checked against what Microsoft's REST
//! reference (api-version 7.4) and the service's observed behaviour say: set/get/list with
//! paging, soft delete, 409 `ObjectIsDeletedButRecoverable`, purge, recover, the name rule,
//! the api-version check, the 401 challenge and 403 `ForbiddenByRbac`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k0rdent_arm_emulator::Emulator;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const V: &str = "api-version=7.4";

struct Kv {
    emu: Emulator,
    http: Client,
    token: String,
    base: String,
}

impl Kv {
    async fn start(delete_latency: Duration) -> Kv {
        let emu = Emulator::builder()
            .keyvault_delete_latency(delete_latency)
            .start()
            .await
            .unwrap();
        let token = emu.issue_token().expose().clone();
        let base = emu.keyvault_url("kv1");
        Kv {
            emu,
            http: Client::new(),
            token,
            base,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}{sep}{V}", self.base)
        };
        let mut rb = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn set(&self, name: &str, value: &str) -> (StatusCode, Value) {
        self.call(
            Method::PUT,
            &format!("/secrets/{name}"),
            Some(json!({"value": value, "contentType": "text/plain", "tags": {"owner": "t"}})),
        )
        .await
    }
}

fn inner_code(v: &Value) -> &str {
    v.pointer("/error/innererror/code")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn code(v: &Value) -> &str {
    v.pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[tokio::test]
async fn set_get_and_versions_follow_the_secret_bundle_shape() {
    let kv = Kv::start(Duration::ZERO).await;
    let (s, b) = kv.set("My-Secret", "one").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = b["id"].as_str().unwrap();
    let prefix = format!("{}/secrets/My-Secret/", kv.base);
    assert!(id.starts_with(&prefix), "{id}");
    let v1 = id.rsplit('/').next().unwrap().to_owned();
    assert_eq!(v1.len(), 32);
    assert_eq!(b["value"], "one");
    assert_eq!(b["contentType"], "text/plain");
    assert_eq!(b["tags"]["owner"], "t");
    assert_eq!(b["attributes"]["enabled"], true);
    kv.set("my-secret", "two").await;
    // Names are case-insensitive; the latest version wins; an old version stays readable.
    let (s, b) = kv.call(Method::GET, "/secrets/MY-SECRET", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["value"], "two");
    let (_, b) = kv
        .call(Method::GET, &format!("/secrets/my-secret/{v1}"), None)
        .await;
    assert_eq!(b["value"], "one");
    let (s, b) = kv.call(Method::GET, "/secrets/absent", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(code(&b), "SecretNotFound");
}

#[tokio::test]
async fn lists_page_with_maxresults_and_next_link() {
    let kv = Kv::start(Duration::ZERO).await;
    for i in 0..7 {
        kv.set(&format!("s{i}"), "x").await;
    }
    let (s, mut page) = kv.call(Method::GET, "/secrets?maxresults=3", None).await;
    assert_eq!(s, StatusCode::OK);
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        for item in page["value"].as_array().unwrap() {
            assert!(item.get("value").is_none(), "a list never returns values");
            ids.push(
                item["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned(),
            );
        }
        let Some(next) = page["nextLink"].as_str() else {
            break;
        };
        assert!(next.contains("maxresults=3") && next.contains(V), "{next}");
        page = kv.call(Method::GET, next, None).await.1;
    }
    assert_eq!(pages, 3);
    assert_eq!(ids, ["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
    let (s, b) = kv.call(Method::GET, "/secrets?maxresults=26", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(code(&b), "BadParameter");
}

#[tokio::test]
async fn a_deleted_name_conflicts_until_purged_or_recovered() {
    let kv = Kv::start(Duration::ZERO).await;
    kv.set("a", "1").await;
    kv.set("b", "2").await;
    let (s, d) = kv.call(Method::DELETE, "/secrets/a", None).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(
        d["recoveryId"].as_str().unwrap(),
        format!("{}/deletedsecrets/a", kv.base)
    );
    assert!(d["scheduledPurgeDate"].as_i64().unwrap() > d["deletedDate"].as_i64().unwrap());
    assert!(d.get("value").is_none());
    let (s, _) = kv.call(Method::GET, "/secrets/a", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = kv.set("a", "again").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(code(&b), "Conflict");
    assert_eq!(inner_code(&b), "ObjectIsDeletedButRecoverable");
    let (s, b) = kv.call(Method::GET, "/deletedsecrets/a", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["recoveryId"], d["recoveryId"]);
    let (_, l) = kv.call(Method::GET, "/deletedsecrets", None).await;
    assert_eq!(l["value"].as_array().unwrap().len(), 1);
    assert_eq!(kv.emu.keyvault_deleted_secrets("kv1"), ["a"]);

    // Recover brings the value back under the same name.
    let (s, _) = kv
        .call(Method::POST, "/deletedsecrets/a/recover", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = kv.call(Method::GET, "/secrets/a", None).await;
    assert_eq!(b["value"], "1");

    // Purge frees the name for good.
    kv.call(Method::DELETE, "/secrets/b", None).await;
    let (s, _) = kv.call(Method::DELETE, "/deletedsecrets/b", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = kv.call(Method::DELETE, "/deletedsecrets/b", None).await;
    assert_eq!((s, code(&b)), (StatusCode::NOT_FOUND, "SecretNotFound"));
    let (s, _) = kv.set("b", "new").await;
    assert_eq!(s, StatusCode::OK);
    assert!(kv.emu.keyvault_deleted_secrets("kv1").is_empty());
    assert_eq!(kv.emu.keyvault_secrets("kv1"), ["a", "b"]);
}

#[tokio::test]
async fn a_purge_right_after_a_delete_finds_the_deletion_in_progress() {
    let kv = Kv::start(Duration::from_millis(300)).await;
    kv.set("c", "1").await;
    kv.call(Method::DELETE, "/secrets/c", None).await;
    let (s, b) = kv.call(Method::DELETE, "/deletedsecrets/c", None).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(inner_code(&b), "ObjectIsBeingDeleted");
    let (s, _) = kv.call(Method::GET, "/deletedsecrets/c", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (s, _) = kv.call(Method::DELETE, "/deletedsecrets/c", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn names_api_versions_tokens_and_roles_are_checked() {
    let kv = Kv::start(Duration::ZERO).await;
    for bad in ["a_b", "a.b", &"x".repeat(128)] {
        let (s, b) = kv.set(bad, "v").await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::BAD_REQUEST, "BadParameter"),
            "{bad}"
        );
    }
    let (s, _) = kv.set(&"x".repeat(127), "v").await;
    assert_eq!(s, StatusCode::OK);

    let r = kv
        .http
        .get(format!("{}/secrets/x", kv.base))
        .bearer_auth(&kv.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = kv
        .http
        .get(format!("{}/secrets/x?api-version=1999-01-01", kv.base))
        .bearer_auth(&kv.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = kv
        .http
        .get(format!("{}/secrets/x?{V}", kv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("Bearer authorization=\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("resource=\"https://vault.azure.net\""),
        "{challenge}"
    );

    kv.emu.deny_keyvault_data(true);
    let (s, b) = kv.set("y", "v").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(code(&b), "Forbidden");
    assert_eq!(inner_code(&b), "ForbiddenByRbac");
    kv.emu.deny_keyvault_data(false);
    let (s, _) = kv.set("y", "v").await;
    assert_eq!(s, StatusCode::OK);
}
