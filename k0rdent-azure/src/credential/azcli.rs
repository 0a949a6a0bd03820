//! Tokens from the Azure CLI (`az account get-access-token`), the fallback when no service
//! principal is configured.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{Local, NaiveDateTime, TimeZone};
use k0rdent_core::secret::Secret;
use serde::Deserialize;

use super::{AccessToken, CredentialError, TokenCredential, epoch};

const WHO: &str = "az CLI";
const TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `az account get-access-token`.
#[derive(Debug, Clone)]
pub struct AzureCliCredential {
    az: PathBuf,
    subscription: Option<String>,
    tenant: Option<String>,
}

impl AzureCliCredential {
    /// Uses the `az` program at `az` (a bare name is looked up on PATH).
    pub fn new(az: PathBuf) -> Self {
        AzureCliCredential {
            az,
            subscription: None,
            tenant: None,
        }
    }

    /// Asks for a token for this subscription's tenant (`--subscription`), whatever `az`'s
    /// current subscription is.
    #[must_use]
    pub fn subscription(mut self, id: Option<String>) -> Self {
        self.subscription = id.filter(|s| !s.trim().is_empty());
        self
    }

    /// Asks for a token for this tenant (`--tenant`) when the subscription is not known.
    #[must_use]
    pub fn tenant(mut self, id: Option<String>) -> Self {
        self.tenant = id.filter(|s| !s.trim().is_empty());
        self
    }

    /// The arguments of `az account get-access-token` for `resource`: `--subscription` when
    /// the subscription is known, else `--tenant` when the tenant is (az refuses both).
    fn token_args(&self, resource: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "account",
            "get-access-token",
            "--output",
            "json",
            "--resource",
            resource,
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        if let Some(s) = &self.subscription {
            args.extend(["--subscription".to_owned(), s.clone()]);
        } else if let Some(t) = &self.tenant {
            args.extend(["--tenant".to_owned(), t.clone()]);
        }
        args
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CliToken {
    access_token: String,
    /// Epoch seconds (az 2.54+); preferred because `expiresOn` is local time without a zone.
    #[serde(default, rename = "expires_on")]
    expires_on_epoch: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
}

/// `az account show`: the CLI's current subscription (`id`, `name`) and its tenant.
#[allow(missing_docs)]
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CliAccount {
    pub id: String,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

async fn run_az(az: &Path, args: &[&str]) -> Result<Vec<u8>, CredentialError> {
    let run = k0rdent_process::Command::new(az)
        .args(args)
        .timeout(TIMEOUT)
        .run()
        .await;
    match run {
        Ok(out) => Ok(out.stdout.into_bytes()),
        Err(e) if e.not_installed() => Err(CredentialError::new(
            WHO,
            format!("cannot run {}: {}", az.display(), e.status),
        )
        .with_remedy(
            "install the Azure CLI and run `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID \
             and AZURE_CLIENT_SECRET",
        )),
        Err(e) if e.timed_out() => Err(CredentialError::new(
            WHO,
            format!("`az {}` did not finish in 60 s", args[0]),
        )),
        Err(e) => {
            // az's stderr never contains the token; keep its first meaningful line.
            let line = e
                .stderr
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no error output");
            Err(CredentialError::new(
                WHO,
                format!("`az {}` failed ({}): {line}", args.join(" "), e.status),
            )
            .with_remedy("run `az login` (and `az account set -s <subscription>`)"))
        }
    }
}

fn parse_local(s: &str) -> Option<std::time::SystemTime> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let local = Local.from_local_datetime(&naive).earliest()?;
    Some(epoch(local.timestamp()))
}

pub(crate) fn parse_cli_token(
    bytes: &[u8],
) -> Result<(AccessToken, Option<String>), CredentialError> {
    let t: CliToken = serde_json::from_slice(bytes)
        .map_err(|e| CredentialError::new(WHO, format!("unreadable `az` output: {e}")))?;
    let by_epoch = match &t.expires_on_epoch {
        Some(serde_json::Value::Number(n)) => n.as_i64().map(epoch),
        Some(serde_json::Value::String(s)) => s.parse::<i64>().ok().map(epoch),
        _ => None,
    };
    let expires_at = by_epoch
        .or_else(|| t.expires_on.as_deref().and_then(parse_local))
        .ok_or_else(|| CredentialError::new(WHO, "`az` output has no expiry time"))?;
    Ok((
        AccessToken {
            token: Secret::new(t.access_token),
            expires_at,
        },
        t.tenant,
    ))
}

#[async_trait]
impl TokenCredential for AzureCliCredential {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let args = self.token_args(resource);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_az(&self.az, &args).await?;
        Ok(parse_cli_token(&out)?.0)
    }

    fn tenant_id(&self) -> Option<String> {
        self.tenant.clone()
    }

    fn describe(&self) -> String {
        format!("az CLI ({})", self.az.display())
    }
}

/// The Azure CLI's current subscription (`az account show`).
///
/// # Errors
/// `az` missing, not logged in, or unreadable output.
pub async fn az_account_show(az: &Path) -> Result<CliAccount, CredentialError> {
    let out = run_az(az, &["account", "show", "--output", "json"]).await?;
    serde_json::from_slice(&out)
        .map_err(|e| CredentialError::new(WHO, format!("unreadable `az account show` output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_field_wins_over_local_time() {
        let json = br#"{"accessToken":"eyJ0","expiresOn":"2000-01-01 00:00:00.000000",
            "expires_on":4102444800,"subscription":"s","tenant":"t","tokenType":"Bearer"}"#;
        let (t, tenant) = parse_cli_token(json).unwrap();
        assert_eq!(t.expires_at, epoch(4_102_444_800));
        assert_eq!(tenant.as_deref(), Some("t"));
        let old = br#"{"accessToken":"eyJ0","expiresOn":"2099-01-01 10:00:00.123456"}"#;
        let (t, _) = parse_cli_token(old).unwrap();
        assert!(t.expires_at > std::time::SystemTime::now());
        assert!(parse_cli_token(br#"{"accessToken":"x"}"#).is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_fake_az_is_run_and_its_failure_explained() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("az-ok");
        std::fs::write(
            &ok,
            "#!/bin/sh\necho '{\"accessToken\":\"tok-from-az\",\"expires_on\":4102444800}'\n",
        )
        .unwrap();
        let bad = dir.path().join("az-bad");
        std::fs::write(
            &bad,
            "#!/bin/sh\necho \"ERROR: Please run 'az login'\" >&2\nexit 1\n",
        )
        .unwrap();
        for p in [&ok, &bad] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let t = AzureCliCredential::new(ok)
            .get_token("https://management.azure.com/.default")
            .await
            .unwrap();
        assert_eq!(t.token.expose(), "tok-from-az");
        let e = AzureCliCredential::new(bad)
            .get_token("x/.default")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("az login"), "{e}");
        assert!(e.remedy.is_some());
    }

    /// A fake `az` that writes its arguments to `args` and refuses `--subscription` together
    /// with `--tenant`, as az does.
    #[cfg(unix)]
    fn recording_az(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let args = dir.join("args");
        let az = dir.join("az");
        std::fs::write(
            &az,
            format!(
                "#!/bin/sh\necho \"$@\" > {}\n\
                 case \"$*\" in *--subscription*--tenant*|*--tenant*--subscription*) \
                 echo 'ERROR: usage error: --subscription and --tenant cannot be used together' >&2; exit 2;; esac\n\
                 echo '{{\"accessToken\":\"t\",\"expires_on\":4102444800}}'\n",
                args.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
        (az, args)
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn az_gets_the_subscription_when_known_else_the_tenant_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let (az, args) = recording_az(dir.path());
        let scope = "https://management.azure.com/.default";
        let both = AzureCliCredential::new(az.clone())
            .subscription(Some("sub-1".into()))
            .tenant(Some("tenant-1".into()));
        both.get_token(scope).await.unwrap();
        let used = std::fs::read_to_string(&args).unwrap();
        assert!(used.contains("--subscription sub-1"), "{used}");
        assert!(!used.contains("--tenant"), "{used}");
        assert!(
            used.contains("--resource https://management.azure.com"),
            "{used}"
        );
        let tenant_only = AzureCliCredential::new(az.clone()).tenant(Some("tenant-1".into()));
        tenant_only.get_token(scope).await.unwrap();
        let used = std::fs::read_to_string(&args).unwrap();
        assert!(used.contains("--tenant tenant-1"), "{used}");
        assert!(!used.contains("--subscription"), "{used}");
        AzureCliCredential::new(az).get_token(scope).await.unwrap();
        let used = std::fs::read_to_string(&args).unwrap();
        assert!(
            !used.contains("--subscription") && !used.contains("--tenant"),
            "{used}"
        );
    }
}
