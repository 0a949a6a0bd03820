//! Azure credentials, checked before anything is written: one token is fetched up front, so a
//! wrong secret or a missing `az login` is an error naming what to fix — before the state
//! directory, the lock or a key exists. The client then starts with that token.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k0rdent_azure::credential::{
    AccessToken, CredentialError, CredentialSettings, TokenCredential,
};

use crate::error::CliError;

/// What to do when no credential works at all.
pub(super) const NO_CREDENTIALS_REMEDY: &str = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and \
     AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE), or install the Azure CLI and run `az login`";

/// Whether the settings select a service principal (else the Azure CLI).
fn uses_service_principal(s: &CredentialSettings) -> bool {
    s.client_secret.is_some() || s.federated_token_file.is_some()
}

/// The error for a credential that gave no token, naming the variable or the `az login` to fix.
fn credential_error(settings: &CredentialSettings, e: CredentialError) -> CliError {
    if uses_service_principal(settings) {
        let remedy = e
            .remedy
            .clone()
            .unwrap_or_else(|| NO_CREDENTIALS_REMEDY.to_owned());
        CliError::usage(format!("Azure credentials: {e}"), remedy)
    } else {
        CliError::usage(
            format!(
                "no Azure credentials: AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE are not \
                 set, and the Azure CLI gave no token ({})",
                e.message
            ),
            NO_CREDENTIALS_REMEDY,
        )
    }
}

/// The credential the settings select, with a token for `scope` already fetched.
///
/// # Errors
/// A half-configured service principal, or no token: one line naming the credential and why,
/// with a remedy naming the variable (or `az login`) to fix.
pub(super) async fn checked(
    settings: &CredentialSettings,
    scope: &str,
) -> Result<Arc<dyn TokenCredential>, CliError> {
    let inner = settings
        .build()
        .map_err(|e| credential_error(settings, e))?;
    let token = inner
        .get_token(scope)
        .await
        .map_err(|e| credential_error(settings, e))?;
    Ok(Arc::new(Primed {
        inner,
        first: Mutex::new(Some((scope.to_owned(), token))),
    }))
}

/// A credential whose first token was fetched by the check; the client gets that one instead
/// of asking again, and every later token from the credential itself.
#[derive(Debug)]
struct Primed {
    inner: Arc<dyn TokenCredential>,
    first: Mutex<Option<(String, AccessToken)>>,
}

/// A checked token is handed out only while it has at least this long to live.
const STILL_FRESH: Duration = Duration::from_secs(300);

#[async_trait]
impl TokenCredential for Primed {
    async fn get_token(&self, scope: &str) -> Result<AccessToken, CredentialError> {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        if let Some((s, token)) = first
            && s == scope
            && token.expires_at > SystemTime::now() + STILL_FRESH
        {
            return Ok(token);
        }
        self.inner.get_token(scope).await
    }

    fn tenant_id(&self) -> Option<String> {
        self.inner.tenant_id()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k0rdent_core::Remedy;
    use k0rdent_core::secret::Secret;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, Default)]
    struct Counting(AtomicU32);

    #[async_trait]
    impl TokenCredential for Counting {
        async fn get_token(&self, _: &str) -> Result<AccessToken, CredentialError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Ok(AccessToken {
                token: Secret::new(format!("tok-{n}")),
                expires_at: SystemTime::now() + Duration::from_secs(3600),
            })
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    #[tokio::test]
    async fn the_checked_token_is_used_once_then_the_credential_is_asked() {
        let inner = Arc::new(Counting::default());
        let first = inner.get_token("s").await.unwrap();
        let p = Primed {
            inner: inner.clone(),
            first: Mutex::new(Some(("s".into(), first))),
        };
        let a = p.get_token("s").await.unwrap();
        assert_eq!(a.token.expose(), "tok-0");
        let b = p.get_token("s").await.unwrap();
        assert_eq!(b.token.expose(), "tok-1");
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn no_credentials_at_all_names_the_variables_and_az_login() {
        let e = credential_error(
            &CredentialSettings::default(),
            CredentialError {
                source_name: "az CLI".into(),
                message: "cannot run az: No such file or directory".into(),
                remedy: None,
            },
        );
        let text = format!("{e} {}", e.remedy().unwrap_or_default());
        for needle in [
            "AZURE_CLIENT_SECRET",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "az login",
            "No such file",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
    }
}
