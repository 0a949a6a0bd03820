//! How blob requests are authorized: Shared Key (the account key, as the az CLI's
//! `AZURE_STORAGE_KEY` or `AZURE_STORAGE_CONNECTION_STRING` give it) or a bearer token from
//! the same credential chain as ARM, for the storage scope.

use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use k0rdent_core::secret::Secret;
use sha2::Sha256;

use crate::credential::{CachedCredential, CredentialSettings};

/// The token scope of Azure Storage's data plane.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The credential blob requests are signed with.
#[derive(Clone)]
pub enum BlobAuth {
    /// The account key (Shared Key authorization).
    SharedKey {
        /// The account the key belongs to.
        account: String,
        /// The decoded key.
        key: Secret<Vec<u8>>,
    },
    /// Bearer tokens for [`STORAGE_SCOPE`]; the identity needs a data-plane role
    /// (`Storage Blob Data Contributor`).
    Bearer(Arc<CachedCredential>),
}

impl std::fmt::Debug for BlobAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobAuth::SharedKey { account, .. } => write!(f, "SharedKey({account}, key redacted)"),
            BlobAuth::Bearer(c) => write!(f, "Bearer({})", c.inner().describe()),
        }
    }
}

impl BlobAuth {
    /// A short description for messages (never secret).
    pub fn describe(&self) -> String {
        match self {
            BlobAuth::SharedKey { account, .. } => format!("the account key of {account}"),
            BlobAuth::Bearer(c) => c.inner().describe(),
        }
    }
}

/// Why the blob credential or endpoint could not be set up. Never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// What the environment says about reaching a storage account.
#[derive(Debug)]
pub struct BlobAccess {
    /// How requests are authorized.
    pub auth: BlobAuth,
    /// The blob endpoint (`https://ACCOUNT.blob.core.windows.net`, or a connection string's
    /// `BlobEndpoint`, e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`).
    pub endpoint: String,
}

impl BlobAccess {
    /// From `AZURE_STORAGE_CONNECTION_STRING` (its `AccountKey`, and its `BlobEndpoint`,
    /// which overrides the endpoint), else `AZURE_STORAGE_KEY`, else bearer tokens from the
    /// ARM credential chain ([`CredentialSettings::from_lookup`]), all read through `lookup`.
    ///
    /// # Errors
    /// A connection string for another account, or a key that is not base64.
    pub fn from_lookup(
        account: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut endpoint = format!("https://{account}.blob.core.windows.net");
        let mut key = None;
        if let Some(cs) = get("AZURE_STORAGE_CONNECTION_STRING") {
            let field = |name: &str| {
                cs.split(';').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            };
            if let Some(name) = field("AccountName")
                && name != account
            {
                return Err(AuthError(format!(
                    "AZURE_STORAGE_CONNECTION_STRING is for account {name}, not {account}"
                )));
            }
            if let Some(e) = field("BlobEndpoint") {
                endpoint = e.trim_end_matches('/').to_owned();
            } else if let Some(suffix) = field("EndpointSuffix") {
                let proto = field("DefaultEndpointsProtocol").unwrap_or_else(|| "https".into());
                endpoint = format!("{proto}://{account}.blob.{suffix}");
            }
            key = field("AccountKey");
        }
        if key.is_none() {
            key = get("AZURE_STORAGE_KEY");
        }
        let auth = match key {
            Some(k) => BlobAuth::SharedKey {
                account: account.to_owned(),
                key: Secret::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(k.trim())
                        .map_err(|_| AuthError("the storage account key is not base64".into()))?,
                ),
            },
            None => {
                let credential = CredentialSettings::from_lookup(&lookup)
                    .build()
                    .map_err(|e| AuthError(e.to_string()))?;
                BlobAuth::Bearer(Arc::new(CachedCredential::new(credential)))
            }
        };
        Ok(BlobAccess { auth, endpoint })
    }
}

/// The Shared Key signature of a request: the string to sign is built from the method, the
/// standard headers (`Content-Length` empty when 0), the `x-ms-*` headers in order and the
/// canonicalized resource (`/ACCOUNT/PATH` and the sorted query parameters). Public so that
/// tools and tests can sign a request of their own the same way.
pub fn shared_key_signature(
    key: &[u8],
    account: &str,
    method: &str,
    url: &url::Url,
    headers: &[(String, String)],
) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    };
    let length = match header("content-length") {
        "0" => "",
        l => l,
    };
    let mut s = String::new();
    for part in [
        method,
        header("content-encoding"),
        header("content-language"),
        length,
        header("content-md5"),
        header("content-type"),
        "", // Date: x-ms-date is sent instead
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    ] {
        s.push_str(part);
        s.push('\n');
    }
    let mut ms: Vec<(String, &str)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
        .collect();
    ms.sort();
    for (k, v) in ms {
        s.push_str(&k);
        s.push(':');
        s.push_str(v);
        s.push('\n');
    }
    s.push('/');
    s.push_str(account);
    s.push_str(url.path());
    let mut query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
        .collect();
    query.sort();
    let mut i = 0;
    while i < query.len() {
        let name = query[i].0.clone();
        let mut values = Vec::new();
        while i < query.len() && query[i].0 == name {
            values.push(query[i].1.clone());
            i += 1;
        }
        s.push('\n');
        s.push_str(&name);
        s.push(':');
        s.push_str(&values.join(","));
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this cannot happen.
        return String::new();
    };
    mac.update(s.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_connection_string_gives_the_key_and_overrides_the_endpoint() {
        let a = BlobAccess::from_lookup(
            "devstoreaccount1",
            env(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;",
            )]),
        )
        .unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert!(matches!(&a.auth, BlobAuth::SharedKey { key, .. } if key.expose() == b"key"));
        assert!(!format!("{a:?}").contains("a2V5"));
        let a = BlobAccess::from_lookup("acct", env(&[("AZURE_STORAGE_KEY", "a2V5")])).unwrap();
        assert_eq!(a.endpoint, "https://acct.blob.core.windows.net");
        let e = BlobAccess::from_lookup(
            "acct",
            env(&[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=other;AccountKey=a2V5",
            )]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("other"), "{e}");
        let a = BlobAccess::from_lookup("acct", env(&[])).unwrap();
        assert!(matches!(a.auth, BlobAuth::Bearer(_)));
    }

    #[test]
    fn the_signature_covers_method_headers_and_resource() {
        let url = url::Url::parse("http://127.0.0.1:1/devstoreaccount1/c/b?comp=lease").unwrap();
        let h = |v: &str| {
            vec![
                (
                    "x-ms-date".to_owned(),
                    "Mon, 01 Jan 2024 00:00:00 GMT".to_owned(),
                ),
                ("x-ms-lease-action".to_owned(), v.to_owned()),
            ]
        };
        let a = shared_key_signature(b"k", "devstoreaccount1", "PUT", &url, &h("acquire"));
        assert_eq!(
            a,
            shared_key_signature(b"k", "devstoreaccount1", "PUT", &url, &h("acquire"))
        );
        assert_ne!(
            a,
            shared_key_signature(b"k", "devstoreaccount1", "PUT", &url, &h("renew"))
        );
        assert_ne!(
            a,
            shared_key_signature(b"j", "devstoreaccount1", "PUT", &url, &h("acquire"))
        );
    }
}
