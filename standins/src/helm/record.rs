//! Helm 3's release record and its "secret" storage driver encoding: a `Secret` named
//! `sh.helm.release.v1.<name>.v<revision>`, type `helm.sh/release.v1`, labels `name`,
//! `owner=helm`, `status`, `version` (and `createdAt`/`modifiedAt`), whose `release` entry
//! holds base64(gzip(release JSON)) — base64 once more on the wire, as every secret value.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Why a stored release could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The secret has no `data.release`.
    #[error("secret {0} holds no release data")]
    Missing(String),
    /// A layer of base64 is broken.
    #[error("release data of {secret} is not base64")]
    Base64 {
        /// The secret's name.
        secret: String,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// Compressing or decompressing failed.
    #[error("release data is not gzip")]
    Gzip(#[from] std::io::Error),
    /// The JSON does not describe a release.
    #[error("release JSON is invalid")]
    Json(#[from] serde_json::Error),
}

/// Chart metadata as Helm stores it inside the release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartMetadata {
    /// Chart name (`kcm`).
    pub name: String,
    /// Chart version (`1.4.0`).
    pub version: String,
    /// The application's version.
    #[serde(
        rename = "appVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub app_version: String,
    /// Chart API version (`v2`).
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
}

/// The chart part of a release (templates and values are kept empty by the stand-in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// Chart.yaml.
    pub metadata: ChartMetadata,
    /// Rendered templates (none here).
    #[serde(default)]
    pub templates: Vec<Value>,
    /// Default values.
    #[serde(default)]
    pub values: Value,
}

/// `release.Info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// When revision 1 was deployed.
    #[serde(default)]
    pub first_deployed: String,
    /// When this revision was deployed.
    #[serde(default)]
    pub last_deployed: String,
    /// When it was uninstalled (Helm writes an empty time otherwise).
    #[serde(default)]
    pub deleted: String,
    /// `Install complete`, `Upgrade complete`, `Rollback to 1`, failure reasons.
    #[serde(default)]
    pub description: String,
    /// `deployed`, `failed`, `superseded`, `pending-install`, …
    pub status: String,
    /// Chart notes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// One revision of a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Status and times.
    pub info: Info,
    /// The chart.
    pub chart: Chart,
    /// User-supplied values.
    #[serde(default)]
    pub config: Value,
    /// Rendered manifest.
    #[serde(default)]
    pub manifest: String,
    /// Revision number, from 1.
    pub version: u32,
    /// Namespace the release lives in.
    pub namespace: String,
}

/// Whether a status means an operation is in flight.
pub fn is_pending(status: &str) -> bool {
    matches!(
        status,
        "pending-install" | "pending-upgrade" | "pending-rollback"
    )
}

/// The time format Go's `time.Time` marshals to JSON.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `sh.helm.release.v1.<name>.v<revision>`.
pub fn secret_name(name: &str, revision: u32) -> String {
    format!("sh.helm.release.v1.{name}.v{revision}")
}

/// base64(gzip(JSON)), Helm's `encodeRelease`.
pub fn encode(release: &Release) -> Result<String, RecordError> {
    let json = serde_json::to_vec(release)?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&json)?;
    Ok(STANDARD.encode(gz.finish()?))
}

/// Helm's `decodeRelease` (plain JSON accepted when the gzip magic is absent, as Helm does).
pub fn decode(secret: &str, encoded: &[u8]) -> Result<Release, RecordError> {
    let raw = STANDARD
        .decode(encoded)
        .map_err(|source| RecordError::Base64 {
            secret: secret.into(),
            source,
        })?;
    let json = if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
        out
    } else {
        raw
    };
    Ok(serde_json::from_slice(&json)?)
}

/// The `Secret` holding `release`; `created` picks the `createdAt` label (Create) over
/// `modifiedAt` (Update), as the driver does.
pub fn to_secret(release: &Release, created: bool) -> Result<Value, RecordError> {
    let stamp = if created { "createdAt" } else { "modifiedAt" };
    let encoded = encode(release)?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(&release.name, release.version),
            "namespace": release.namespace,
            "labels": {
                "name": release.name,
                "owner": "helm",
                "status": release.info.status,
                "version": release.version.to_string(),
                stamp: chrono::Utc::now().timestamp().to_string(),
            },
        },
        "type": "helm.sh/release.v1",
        "data": {"release": STANDARD.encode(encoded.as_bytes())},
    }))
}

/// The release a `Secret` object (as the API returns it) holds.
pub fn from_secret(secret: &Value) -> Result<Release, RecordError> {
    let name = secret
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let outer = secret
        .pointer("/data/release")
        .and_then(Value::as_str)
        .ok_or_else(|| RecordError::Missing(name.clone()))?;
    let inner = STANDARD
        .decode(outer)
        .map_err(|source| RecordError::Base64 {
            secret: name.clone(),
            source,
        })?;
    decode(&name, &inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_survives_the_secret_round_trip() {
        let release = Release {
            name: "kcm".into(),
            info: Info {
                first_deployed: now(),
                last_deployed: now(),
                deleted: String::new(),
                description: "Install complete".into(),
                status: "deployed".into(),
                notes: String::new(),
            },
            chart: Chart {
                metadata: ChartMetadata {
                    name: "kcm".into(),
                    version: "1.4.0".into(),
                    app_version: "1.4.0".into(),
                    api_version: "v2".into(),
                },
                templates: vec![],
                values: json!({}),
            },
            config: json!({}),
            manifest: String::new(),
            version: 3,
            namespace: "kcm-system".into(),
        };
        let secret = to_secret(&release, true).expect("encodes");
        assert_eq!(secret["metadata"]["name"], "sh.helm.release.v1.kcm.v3");
        assert_eq!(secret["metadata"]["labels"]["version"], "3");
        let inner = STANDARD
            .decode(secret["data"]["release"].as_str().expect("string"))
            .expect("outer base64");
        let gz = STANDARD.decode(&inner).expect("inner base64");
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 0x08]);
        assert_eq!(from_secret(&secret).expect("decodes"), release);
    }
}
