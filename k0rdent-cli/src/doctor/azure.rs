//! The Azure checks: credentials (a token is fetched, in the order every command uses), the
//! subscription (ARM `GET /subscriptions/{id}`), and the local clock against the `Date` of
//! that response — a clock more than five minutes off makes ARM reject tokens.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use k0rdent_azure::client::ArmClient;
use k0rdent_azure::spec::DEFAULT_WRITE_CONCURRENCY;
use k0rdent_core::Remedy;
use serde::Deserialize;

use super::Check;
use crate::config::Loaded;
use crate::deployment::AzureAccess;

const CREDENTIALS: &str = "azure-credentials";
const SUBSCRIPTION: &str = "azure-subscription";
const CLOCK: &str = "clock";

/// The Subscriptions API version (Azure's `Subscriptions - Get` reference).
const SUBSCRIPTIONS_API: &str = "2022-12-01";

/// Tokens are rejected beyond this skew (Entra ID's tolerance).
const SKEW_FAIL_SECS: i64 = 300;
/// A skew worth mentioning: a minute more and it fails.
const SKEW_WARN_SECS: i64 = 60;

/// What `GET /subscriptions/{id}` answers (only what is shown).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// Which credential the environment selects, by kind and id (never the secret).
fn credential_kind(access: &AzureAccess) -> String {
    let c = &access.credentials;
    let id = c.client_id.as_deref().unwrap_or("(no AZURE_CLIENT_ID)");
    if c.client_secret.is_some() {
        format!("service principal {id} (AZURE_CLIENT_SECRET)")
    } else if c.federated_token_file.is_some() {
        format!("workload identity {id} (AZURE_FEDERATED_TOKEN_FILE)")
    } else {
        "the Azure CLI (`az account get-access-token`)".to_owned()
    }
}

/// Where the subscription id came from, in the order `connect` takes it.
fn subscription_source(access: &AzureAccess, loaded: Option<&Loaded>) -> &'static str {
    if access.subscription.is_some() {
        "AZURE_SUBSCRIPTION_ID"
    } else if loaded.is_some_and(|l| l.config.azure.subscription_id.is_some()) {
        "azure.subscription_id"
    } else {
        "`az account show`"
    }
}

/// The three Azure checks.
pub(super) async fn checks(loaded: Option<&Loaded>) -> Vec<Check> {
    let access = AzureAccess::from_env();
    let azure = loaded.map(|l| &l.config.azure);
    let connected = crate::deployment::connect_with(
        azure.and_then(|a| a.arm_endpoint.as_deref()),
        azure.and_then(|a| a.subscription_id.as_deref()),
        azure.map_or(DEFAULT_WRITE_CONCURRENCY, |a| a.write_concurrency),
        &access,
    )
    .await;
    let client = match connected {
        Ok(c) => c,
        Err(e) => {
            return vec![
                Check::fail(CREDENTIALS, e.to_string(), e.remedy().map(Cow::into_owned)),
                Check::skip(SUBSCRIPTION, "no Azure credentials"),
                Check::skip(CLOCK, "no answer from ARM without credentials"),
            ];
        }
    };
    let mut out = vec![Check::ok(
        CREDENTIALS,
        format!(
            "token from {} for {}",
            credential_kind(&access),
            client.endpoint()
        ),
    )];
    let id = client.subscription_id().to_owned();
    let source = subscription_source(&access, loaded);
    match read_subscription(&client, &id).await {
        Ok((sub, date)) => {
            out.push(subscription_check(&id, source, &sub));
            out.push(clock_check(date, Utc::now()));
        }
        Err(e) => {
            out.push(Check::fail(
                SUBSCRIPTION,
                format!("subscription {id} (from {source}): {e}"),
                e.remedy().map(Cow::into_owned),
            ));
            out.push(Check::skip(
                CLOCK,
                "ARM did not answer the subscription read",
            ));
        }
    }
    out
}

async fn read_subscription(
    client: &ArmClient,
    id: &str,
) -> Result<(Subscription, Option<DateTime<Utc>>), k0rdent_azure::client::ArmError> {
    client
        .get_dated(&format!("/subscriptions/{id}"), SUBSCRIPTIONS_API)
        .await
}

fn subscription_check(id: &str, source: &str, sub: &Subscription) -> Check {
    let name = sub.display_name.as_deref().unwrap_or("no display name");
    let state = sub.state.as_deref().unwrap_or("unknown");
    let detail = format!("{id} \"{name}\" (from {source}), state {state}");
    match state {
        "Enabled" => Check::ok(SUBSCRIPTION, detail),
        "Warned" | "PastDue" => Check::warn(
            SUBSCRIPTION,
            detail,
            "the subscription may be disabled soon; check its billing in the Azure portal",
        ),
        _ => Check::fail(
            SUBSCRIPTION,
            detail,
            Some(
                "use an Enabled subscription (AZURE_SUBSCRIPTION_ID or azure.subscription_id); \
                 `az account list -o table` lists yours"
                    .to_owned(),
            ),
        ),
    }
}

/// The local clock `now` against ARM's `Date`.
fn clock_check(arm: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Check {
    const REMEDY: &str = "synchronize this machine's clock (Linux: `sudo timedatectl \
                          set-ntp true`; macOS: Date & Time, set automatically)";
    let Some(arm) = arm else {
        return Check::warn(
            CLOCK,
            "ARM's answer had no Date header; the clock was not compared",
            "nothing to do unless ARM rejects tokens as expired or not yet valid",
        );
    };
    let skew = (now - arm).num_seconds();
    let direction = if skew >= 0 { "ahead of" } else { "behind" };
    let detail = format!("{} s {direction} ARM's clock", skew.abs());
    match skew.abs() {
        s if s > SKEW_FAIL_SECS => Check::fail(
            CLOCK,
            format!("{detail}: more than {SKEW_FAIL_SECS} s, so tokens are rejected"),
            Some(REMEDY.to_owned()),
        ),
        s if s > SKEW_WARN_SECS => Check::warn(CLOCK, detail, REMEDY),
        _ => Check::ok(CLOCK, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn the_clock_fails_beyond_five_minutes_either_way() {
        let arm = DateTime::parse_from_rfc2822("Tue, 15 Nov 2033 08:12:31 GMT")
            .unwrap()
            .with_timezone(&Utc);
        let at = |secs: i64| clock_check(Some(arm), arm + chrono::TimeDelta::seconds(secs));
        assert_eq!(at(2).status, Status::Ok);
        assert_eq!(at(2).detail, "2 s ahead of ARM's clock");
        assert_eq!(at(-90).status, Status::Warn);
        assert_eq!(at(301).status, Status::Fail);
        assert_eq!(at(-600).status, Status::Fail);
        assert!(
            at(-600).detail.starts_with("600 s behind"),
            "{}",
            at(-600).detail
        );
        assert_eq!(clock_check(None, arm).status, Status::Warn);
    }

    #[test]
    fn a_disabled_subscription_fails_and_an_enabled_one_passes() {
        let sub = |state: &str| Subscription {
            display_name: Some("dev".into()),
            state: Some(state.into()),
        };
        assert_eq!(
            subscription_check("s", "x", &sub("Enabled")).status,
            Status::Ok
        );
        assert_eq!(
            subscription_check("s", "x", &sub("PastDue")).status,
            Status::Warn
        );
        assert_eq!(
            subscription_check("s", "x", &sub("Disabled")).status,
            Status::Fail
        );
    }
}
