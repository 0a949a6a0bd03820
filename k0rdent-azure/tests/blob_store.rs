#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What only the blob store does, against a real Azurite: the lease fences a writer whose
//! lease was broken, is renewed past its length, and a holder that cannot renew stops before
//! it could lapse; bearer tokens over HTTPS (`--oauth basic`).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k0rdent_azure::blob::{BlobAccess, BlobAuth, BlobStore, StateUrl};
use k0rdent_azure::credential::{CachedCredential, StaticToken};
use k0rdent_core::cancel::Cancellation;
use k0rdent_core::id::RunId;
use k0rdent_core::secret::Secret;
use k0rdent_core::state::DeploymentState;
use k0rdent_core::store::{LockHolder, StateStore, StoreError};
use k0rdent_testkit::azurite::{self, Azurite, Options};

fn shared() -> &'static Azurite {
    static A: OnceLock<Azurite> = OnceLock::new();
    A.get_or_init(Azurite::start)
}

fn url(tag: &str) -> StateUrl {
    format!(
        "azblob://{}/{}/s?lease=15",
        azurite::ACCOUNT,
        azurite::fresh_container(tag)
    )
    .parse()
    .unwrap()
}

fn store(a: &Azurite, url: &StateUrl) -> BlobStore {
    let cs = a.connection_string();
    let access = BlobAccess::from_lookup(&url.account, move |k| {
        (k == "AZURE_STORAGE_CONNECTION_STRING").then(|| cs.clone())
    })
    .unwrap();
    BlobStore::builder(url.clone(), access).build().unwrap()
}

fn holder(cmd: &str) -> LockHolder {
    LockHolder::current(RunId::generate(), cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_lease_was_broken_gets_412_and_the_other_state_stays_intact() {
    let u = url("fencing");
    let first = store(shared(), &u);
    let cancel = Cancellation::new();
    first.cancel_on_lease_loss(cancel.clone());
    let lock = first.lock(&holder("deploy")).await.unwrap();
    let mut mine = first.load().await.unwrap().unwrap_or_default();
    mine.cluster_id = Some("first".into());
    first.save(&mut mine).await.unwrap();

    let second = store(shared(), &u);
    let broken = second.force_unlock().await.unwrap().unwrap();
    assert_eq!(broken.command, "deploy");
    let theirs_lock = second.lock(&holder("deploy")).await.unwrap();
    let mut theirs = second.load().await.unwrap().unwrap();
    theirs.cluster_id = Some("second".into());
    second.save(&mut theirs).await.unwrap();

    // The first writer's very next save is refused by the service and stops it.
    mine.cluster_id = Some("first-again".into());
    let e = first.save(&mut mine).await.unwrap_err();
    assert!(matches!(e, StoreError::LockLost { .. }), "{e}");
    assert!(e.to_string().contains("nothing was written"), "{e}");
    assert!(cancel.is_cancelled(), "the run is cancelled with the loss");
    assert!(lock.check().is_err());
    assert!(first.lease_lost().is_some());
    let now = store(shared(), &u).load().await.unwrap().unwrap();
    assert_eq!(now.cluster_id.as_deref(), Some("second"));
    assert_eq!(now.generation, 2);
    drop(theirs_lock);
    second.close().await;
    drop(lock);
    first.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_past_its_length_and_released_on_drop() {
    let u = url("renewal");
    let s = store(shared(), &u);
    let lock = s.lock(&holder("deploy")).await.unwrap();
    s.load().await.unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    lock.check().unwrap();
    let mut st = DeploymentState::default();
    s.save(&mut st).await.unwrap();
    let other = store(shared(), &u);
    assert!(matches!(
        other.lock(&holder("reset")).await.err().unwrap(),
        StoreError::Locked { .. }
    ));
    drop(lock);
    s.close().await;
    // Released, not lapsed: the next holder gets it at once.
    let t = Instant::now();
    let l = other.lock(&holder("reset")).await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(l);
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_stops_before_its_lease_could_lapse() {
    let mut own = Azurite::start();
    let u = url("unreachable");
    let s = store(&own, &u);
    let cancel = Cancellation::new();
    s.cancel_on_lease_loss(cancel.clone());
    let lock = s.lock(&holder("deploy")).await.unwrap();
    let taken = Instant::now();
    own.stop();
    tokio::time::timeout(Duration::from_secs(15), cancel.cancelled())
        .await
        .expect("cancelled before the lease could lapse");
    let after = taken.elapsed();
    // Trusted for the lease less 5 s after the last renewal: cancelled before the lease
    // (15 s from that renewal) could lapse.
    assert!(after < Duration::from_secs(11), "{after:?}");
    assert!(after > Duration::from_secs(4), "{after:?}");
    let e = lock.check().unwrap_err();
    assert!(e.to_string().contains("could not be renewed"), "{e}");
    let mut st = DeploymentState::default();
    assert!(matches!(
        s.save(&mut st).await.unwrap_err(),
        StoreError::LockLost { .. }
    ));
    drop(lock);
    s.close().await;
}

fn openssl(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn jwt(aud: &str) -> String {
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = chrono::Utc::now().timestamp();
    format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})),
        b64(serde_json::json!({
            "aud": aud,
            "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
            "nbf": now - 60, "iat": now - 60, "exp": now + 3600,
            "oid": "00000000-0000-0000-0000-000000000001",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        }))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_for_the_storage_scope_works_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl(dir.path());
    let a = Azurite::start_with(&Options {
        tls: Some((cert.clone(), key)),
        ..Options::default()
    });
    let pem = std::fs::read(&cert).unwrap();
    let open = |aud: &str| {
        let token = StaticToken::new(Secret::new(jwt(aud)), Duration::from_secs(3600));
        let access = BlobAccess {
            auth: BlobAuth::Bearer(Arc::new(CachedCredential::new(Arc::new(token)))),
            endpoint: a.endpoint(),
        };
        BlobStore::builder(url("bearer"), access)
            .root_certificate_pem(&pem)
            .build()
            .unwrap()
    };
    let s = open("https://storage.azure.com");
    let lock = s.lock(&holder("deploy")).await.unwrap();
    let mut st = s.load().await.unwrap().unwrap_or_default();
    s.save(&mut st).await.unwrap();
    assert_eq!(s.load().await.unwrap().unwrap().generation, 1);
    drop(lock);
    s.close().await;
    // A token for another audience is refused, and the error carries no token.
    let bad = jwt("https://management.azure.com");
    let e = open("https://management.azure.com")
        .load()
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(text.contains("403") || text.contains("401"), "{text}");
    assert!(!text.contains(&bad));
}

/// One raw Blob request signed with the account key, as another tool would send it.
async fn raw(a: &Azurite, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let url = url::Url::parse(&format!("{}/{path}", a.endpoint())).unwrap();
    let mut headers: Vec<(String, String)> = vec![
        (
            "x-ms-date".into(),
            chrono::Utc::now()
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        ),
        (
            "x-ms-version".into(),
            k0rdent_azure::blob::X_MS_VERSION.into(),
        ),
    ];
    if method == "PUT" {
        headers.push(("x-ms-blob-type".into(), "BlockBlob".into()));
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(azurite::ACCOUNT_KEY)
        .unwrap();
    let sig =
        k0rdent_azure::blob::shared_key_signature(&key, azurite::ACCOUNT, method, &url, &headers);
    let mut rb = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .header(
            "authorization",
            format!("SharedKey {}:{sig}", azurite::ACCOUNT),
        );
    for (k, v) in &headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    let resp = rb.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_state_blob_is_refused_on_load_and_left_untouched() {
    let u = url("torn");
    let s = store(shared(), &u);
    let lock = s.lock(&holder("deploy")).await.unwrap();
    let mut st = s.load().await.unwrap().unwrap_or_default();
    st.cluster_id = Some("torn-1".into());
    s.save(&mut st).await.unwrap();
    drop(lock);
    s.close().await;

    let blob = format!("{}/s/deployment-state.yaml", u.container);
    let (status, whole) = raw(shared(), "GET", &blob, Vec::new()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&whole).contains("# end of k0rdent state"));
    // An upload cut short by another tool: everything but the last 20 bytes.
    let torn = whole[..whole.len() - 20].to_vec();
    let (status, _) = raw(shared(), "PUT", &blob, torn.clone()).await;
    assert_eq!(status, 201);

    let e = store(shared(), &u).load().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{text}");
    assert!(text.contains("end marker"), "{text}");
    let remedy = k0rdent_core::Remedy::remedy(&e).unwrap();
    assert!(remedy.contains("backups/"), "{remedy}");
    // Refusing is all it does: the blob is as it was.
    let (_, now) = raw(shared(), "GET", &blob, Vec::new()).await;
    assert_eq!(now, torn);
    // And a run cannot save over it without loading it first.
    let other = store(shared(), &u);
    let _lock = other.lock(&holder("deploy")).await.unwrap();
    assert!(other.load().await.is_err());
    let mut fresh = DeploymentState::default();
    assert!(other.save(&mut fresh).await.is_err());
    let (_, now) = raw(shared(), "GET", &blob, Vec::new()).await;
    assert_eq!(now, torn);
}
