//! Typed ARM errors: the error body's `code` and `message` are kept, and well-known codes get a
//! remedy. Only `ResourceNotFound`/`ResourceGroupNotFound` mean "absent".

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use k0rdent_core::{Remedy, StepError};

use crate::credential::CredentialError;

/// The error codes this crate reacts to; everything else is kept verbatim in `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArmErrorCode {
    /// The resource does not exist.
    ResourceNotFound,
    /// The resource group does not exist.
    ResourceGroupNotFound,
    /// The size is not offered (here, in this zone, or to this subscription).
    SkuNotAvailable,
    /// A quota would be exceeded.
    QuotaExceeded,
    /// A resource provider is not registered for the subscription.
    MissingSubscriptionRegistration,
    /// An immutable property was changed.
    PropertyChangeNotAllowed,
    /// The caller lacks permission.
    AuthorizationFailed,
    /// The token is malformed or for another audience.
    InvalidAuthenticationToken,
    /// The token expired.
    ExpiredAuthenticationToken,
    /// The token is from another tenant than the subscription's.
    InvalidAuthenticationTokenTenant,
    /// Azure still holds the NIC for a VM that was deleted or failed to create (180 s).
    NicReservedForAnotherVm,
    /// The operation is not allowed in the resource's current state (e.g. a resize that
    /// needs the VM deallocated first).
    OperationNotAllowed,
    /// Another operation on the resource is still running.
    AnotherOperationInProgress,
    /// A generic conflict.
    Conflict,
    /// The request conflicts with existing resources (e.g. an OS disk name already taken).
    ConflictingUserInput,
    /// Throttled.
    TooManyRequests,
    /// No capacity for this size in the region or zone.
    AllocationFailed,
    /// No capacity in the requested zone.
    ZonalAllocationFailed,
    /// The VM did not finish provisioning in time.
    OsProvisioningTimedOut,
    /// A request parameter is invalid.
    InvalidParameter,
    /// The api-version is missing or not supported.
    InvalidApiVersion,
    /// Any other code.
    Other(String),
}

impl ArmErrorCode {
    /// Parses a code (case-insensitive).
    pub fn parse(code: &str) -> Self {
        use ArmErrorCode::*;
        match code.to_ascii_lowercase().as_str() {
            "resourcenotfound" => ResourceNotFound,
            "resourcegroupnotfound" => ResourceGroupNotFound,
            "skunotavailable" => SkuNotAvailable,
            "quotaexceeded" | "operationnotallowed_quota" => QuotaExceeded,
            "missingsubscriptionregistration" => MissingSubscriptionRegistration,
            "propertychangenotallowed" => PropertyChangeNotAllowed,
            "authorizationfailed" => AuthorizationFailed,
            "invalidauthenticationtoken" | "invalidauthenticationtokenaudience" => {
                InvalidAuthenticationToken
            }
            "invalidauthenticationtokentenant" => InvalidAuthenticationTokenTenant,
            "nicreservedforanothervm" => NicReservedForAnotherVm,
            "operationnotallowed" => OperationNotAllowed,
            "expiredauthenticationtoken" => ExpiredAuthenticationToken,
            "anotheroperationinprogress" | "retryableerrorduetoanotheroperation" => {
                AnotherOperationInProgress
            }
            "conflict" => Conflict,
            "conflictinguserinput" => ConflictingUserInput,
            "toomanyrequests" => TooManyRequests,
            "allocationfailed" | "overconstrainedallocationrequest" => AllocationFailed,
            "zonalallocationfailed" => ZonalAllocationFailed,
            "osprovisioningtimedout" => OsProvisioningTimedOut,
            "invalidparameter" => InvalidParameter,
            "invalidapiversionparameter" | "noregisteredproviderfound" => InvalidApiVersion,
            _ => Other(code.to_owned()),
        }
    }

    /// The code as ARM spells it.
    pub fn as_str(&self) -> &str {
        use ArmErrorCode::*;
        match self {
            ResourceNotFound => "ResourceNotFound",
            ResourceGroupNotFound => "ResourceGroupNotFound",
            SkuNotAvailable => "SkuNotAvailable",
            QuotaExceeded => "QuotaExceeded",
            MissingSubscriptionRegistration => "MissingSubscriptionRegistration",
            PropertyChangeNotAllowed => "PropertyChangeNotAllowed",
            AuthorizationFailed => "AuthorizationFailed",
            InvalidAuthenticationToken => "InvalidAuthenticationToken",
            ExpiredAuthenticationToken => "ExpiredAuthenticationToken",
            InvalidAuthenticationTokenTenant => "InvalidAuthenticationTokenTenant",
            NicReservedForAnotherVm => "NicReservedForAnotherVm",
            OperationNotAllowed => "OperationNotAllowed",
            AnotherOperationInProgress => "AnotherOperationInProgress",
            Conflict => "Conflict",
            ConflictingUserInput => "ConflictingUserInput",
            TooManyRequests => "TooManyRequests",
            AllocationFailed => "AllocationFailed",
            ZonalAllocationFailed => "ZonalAllocationFailed",
            OsProvisioningTimedOut => "OSProvisioningTimedOut",
            InvalidParameter => "InvalidParameter",
            InvalidApiVersion => "InvalidApiVersionParameter",
            Other(s) => s,
        }
    }
}

/// What to do about the codes that have a fix the user can make; `None` for the rest.
impl Remedy for ArmErrorCode {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        use ArmErrorCode::*;
        Some(Cow::Borrowed(match self {
            SkuNotAvailable => {
                "choose another VM size or zone (`az vm list-skus -l <location> --resource-type virtualMachines -o table`)"
            }
            QuotaExceeded => {
                "request a quota increase (`az vm list-usage -l <location> -o table` shows usage) or use fewer or smaller VMs"
            }
            MissingSubscriptionRegistration => {
                "register the provider: `az provider register --namespace <namespace>` (Microsoft.Compute, Microsoft.Network)"
            }
            PropertyChangeNotAllowed => {
                "this property cannot change in place; `k0rdent plan` shows the replacement, run `k0rdent deploy -y` to accept it"
            }
            AuthorizationFailed => {
                "grant the identity Contributor on the subscription or resource group, then run again"
            }
            InvalidAuthenticationToken | ExpiredAuthenticationToken => {
                "log in again (`az login`) or check AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET"
            }
            InvalidAuthenticationTokenTenant => {
                "get a token from the subscription's tenant: set AZURE_TENANT_ID to it, or `az login --tenant <tenant>`"
            }
            AllocationFailed | ZonalAllocationFailed => {
                "Azure has no capacity for this size here right now; retry later, or choose another size or zone"
            }
            InvalidApiVersion => "this is a k0rdent bug or an unsupported cloud; please report it",
            _ => return None,
        }))
    }
}

impl fmt::Display for ArmErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ARM request that failed. `method` and `path` are the request's (the path without host
/// or query); `code` and `message` are ARM's error body's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[allow(missing_docs)] // the fields the type's doc does not explain say what they hold
pub enum ArmError {
    /// ARM answered with an error status and body.
    #[error("{method} {path}: HTTP {status} {code}: {message}")]
    Api {
        method: String,
        path: String,
        status: u16,
        code: ArmErrorCode,
        message: String,
        /// `Retry-After`, if ARM sent one.
        retry_after: Option<Duration>,
    },
    /// Retryable failures continued until the retry budget ran out.
    #[error("{method} {path} failed after {attempts} attempts in {:.1} s: {last}", elapsed.as_secs_f64())]
    Exhausted {
        method: String,
        path: String,
        attempts: u32,
        /// From the first attempt to giving up, waits included.
        elapsed: Duration,
        /// The last attempt's failure (whose code and remedy this error reports).
        last: Box<ArmError>,
    },
    /// The connection failed. `maybe_sent` is true when the request may have reached ARM
    /// (the outcome of a write is then unknown: read the resource before writing again).
    #[error("{method} {path}: {detail}")]
    Transport {
        method: String,
        path: String,
        maybe_sent: bool,
        /// The HTTP client's error.
        detail: String,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("{operation} ended {status}: {code}: {message}")]
    OperationFailed {
        /// What was being done (`PUT …/virtualMachines/x`).
        operation: String,
        /// `Failed` or `Canceled`.
        status: String,
        code: ArmErrorCode,
        message: String,
    },
    /// No token.
    #[error("no Azure credentials: {0}")]
    Credential(#[from] CredentialError),
    /// A response that does not parse.
    #[error("{method} {path}: unreadable response: {detail}")]
    Decode {
        method: String,
        path: String,
        /// The JSON parser's message.
        detail: String,
    },
    /// The endpoint could not be reached at all (refused, no such host, TLS): nothing was
    /// sent, and retrying soon will not help.
    #[error(transparent)]
    Unreachable(#[from] crate::transport::Unreachable),
    /// A URL from a response points elsewhere than the ARM endpoint.
    #[error("refusing to send credentials to {url}: not the ARM endpoint")]
    ForeignUrl { url: String },
}

impl ArmError {
    /// The ARM error code, if ARM sent one (looking through exhausted retries).
    pub fn code(&self) -> Option<&ArmErrorCode> {
        match self {
            ArmError::Api { code, .. } | ArmError::OperationFailed { code, .. } => Some(code),
            ArmError::Exhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// The HTTP status, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            ArmError::Api { status, .. } => Some(*status),
            ArmError::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether this is a definite "not found" (`ResourceNotFound`/`ResourceGroupNotFound`
    /// with 404). Nothing else means absent.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ArmError::Api { status: 404, code, .. }
                if matches!(code, ArmErrorCode::ResourceNotFound | ArmErrorCode::ResourceGroupNotFound)
        )
    }

    /// Whether the failure may succeed later without any change on our side.
    pub fn is_transient(&self) -> bool {
        match self {
            ArmError::Exhausted { .. } | ArmError::Transport { .. } => true,
            ArmError::Api { status, code, .. } => {
                matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
                    || matches!(code, ArmErrorCode::AnotherOperationInProgress)
            }
            ArmError::OperationFailed { code, .. } => matches!(
                code,
                ArmErrorCode::OsProvisioningTimedOut
                    | ArmErrorCode::AllocationFailed
                    | ArmErrorCode::ZonalAllocationFailed
                    | ArmErrorCode::Other(_)
            ),
            ArmError::Credential(_)
            | ArmError::Decode { .. }
            | ArmError::ForeignUrl { .. }
            | ArmError::Unreachable(_) => false,
        }
    }

    /// How long ARM asked us to wait before trying again, for throttling (429) and
    /// "unavailable" (503) answers that named a time.
    pub fn throttled_for(&self) -> Option<Duration> {
        match self {
            ArmError::Api {
                status: 429 | 503,
                retry_after: Some(d),
                ..
            } => Some(*d),
            ArmError::Exhausted { last, .. } => last.throttled_for(),
            _ => None,
        }
    }

    /// The `Retry-After` ARM asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ArmError::Api { retry_after, .. } => *retry_after,
            ArmError::Exhausted { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// As a step error: transient ones are retried by the engine, authorization problems
    /// block (nothing was changed), the rest fail the step.
    pub fn into_step_error(self, context: &str) -> StepError {
        let msg = format!("{context}: {self}");
        let remedy = self.remedy();
        let after = self.retry_after();
        let mut e = if matches!(
            self.code(),
            Some(
                ArmErrorCode::AuthorizationFailed
                    | ArmErrorCode::InvalidAuthenticationToken
                    | ArmErrorCode::InvalidAuthenticationTokenTenant
            )
        ) || matches!(self, ArmError::Credential(_) | ArmError::Unreachable(_))
        {
            StepError::blocked(msg)
        } else if self.is_transient() {
            StepError::transient(msg)
        } else {
            StepError::permanent(msg)
        };
        if let Some(r) = remedy {
            e = e.with_remedy(r);
        }
        if let Some(a) = after {
            e = e.with_retry_after(a);
        }
        if let Some(a) = self.throttled_for() {
            // Lets the step wait as ARM asked instead of spending one of its attempts.
            e = e.with_source(ComeBackLater { after: a });
        }
        e
    }
}

/// A credential's own remedy, the permission or tenant an ARM message names, else the code's.
impl Remedy for ArmError {
    fn remedy(&self) -> Option<Cow<'_, str>> {
        match self {
            ArmError::Credential(c) => c.remedy(),
            ArmError::Exhausted { last, .. } => last.remedy(),
            ArmError::Api {
                code: ArmErrorCode::AuthorizationFailed,
                message,
                ..
            } if let Some(action) = quoted_after(message, "perform action") => Some(
                format!(
                    "the identity lacks the permission {action}: grant it a role that has it \
                     (e.g. Contributor) on the subscription or resource group, then run again"
                )
                .into(),
            ),
            ArmError::Api {
                code: ArmErrorCode::InvalidAuthenticationTokenTenant,
                message,
                ..
            } if let Some(tenant) = tenant_of_subscription(message) => Some(
                format!(
                    "the subscription belongs to tenant {tenant}: set AZURE_TENANT_ID={tenant} \
                     (service principal) or run `az login --tenant {tenant}`"
                )
                .into(),
            ),
            ArmError::Unreachable(u) => Some(
                format!(
                    "check that {} is the right ARM endpoint (K0RDENT_ARM_ENDPOINT or \
                 azure.arm_endpoint), that it is up, and the network, DNS and any proxy on the way",
                    u.endpoint
                )
                .into(),
            ),
            _ => self.code().and_then(Remedy::remedy),
        }
    }
}

/// ARM asked to come back after `after` (429/503 with `Retry-After`): attached to a
/// [`StepError`] as its source, so a step can wait as asked within its time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Azure asked to retry after {} s", after.as_secs_f64())]
pub struct ComeBackLater {
    /// ARM's `Retry-After`.
    pub after: Duration,
}

impl ComeBackLater {
    /// The request of `e`, if it has one.
    pub fn of(e: &StepError) -> Option<Self> {
        std::error::Error::source(e)?
            .downcast_ref::<ComeBackLater>()
            .copied()
    }
}

/// The first `'quoted'` text after `marker` in `message`.
fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let rest = &message[message.find(marker)? + marker.len()..];
    let start = rest.find('\'')? + 1;
    let len = rest[start..].find('\'')?;
    Some(rest[start..start + len].to_owned())
}

/// The tenant a subscription belongs to, from an `InvalidAuthenticationTokenTenant` message
/// ("... It must match the tenant 'https://sts.windows.net/<tenant>/' associated with this
/// subscription ...").
fn tenant_of_subscription(message: &str) -> Option<String> {
    let url = quoted_after(message, "must match the tenant")?;
    let id = url.trim_end_matches('/').rsplit('/').next()?.to_owned();
    (!id.is_empty()).then_some(id)
}

/// How long a `NicReservedForAnotherVm` says to wait ("retry after 180 seconds"); Azure's
/// documented 180 s when the message does not say.
pub fn nic_reservation_wait(message: &str) -> Duration {
    let lower = message.to_ascii_lowercase();
    lower
        .find("retry after ")
        .and_then(|i| {
            lower[i + "retry after ".len()..]
                .split(|c: char| !c.is_ascii_digit() && c != '.')
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
        .map_or(Duration::from_secs(180), Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ArmError {
        ArmError::Api {
            method: "GET".into(),
            path: "/x".into(),
            status,
            code: ArmErrorCode::parse(code),
            message: "m".into(),
            retry_after: None,
        }
    }

    #[test]
    fn only_the_two_not_found_codes_mean_absent() {
        assert!(api(404, "ResourceNotFound").is_not_found());
        assert!(api(404, "ResourceGroupNotFound").is_not_found());
        assert!(!api(404, "NotFound").is_not_found());
        assert!(!api(404, "SubscriptionNotFound").is_not_found());
        assert!(!api(403, "AuthorizationFailed").is_not_found());
        assert!(!api(400, "ResourceNotFound").is_not_found());
    }

    #[test]
    fn codes_keep_their_text_and_get_remedies() {
        let c = ArmErrorCode::parse("skunotavailable");
        assert_eq!(c, ArmErrorCode::SkuNotAvailable);
        assert!(c.remedy().unwrap().contains("list-skus"));
        let o = ArmErrorCode::parse("SomethingNew");
        assert_eq!(o.as_str(), "SomethingNew");
        assert!(o.remedy().is_none());
        let e = api(403, "AuthorizationFailed").into_step_error("listing");
        assert_eq!(e.kind(), k0rdent_core::step::ErrorKind::Blocked);
        assert!(e.remedy().unwrap().contains("Contributor"));
        let e = api(409, "PropertyChangeNotAllowed").into_step_error("VM x");
        assert_eq!(e.kind(), k0rdent_core::step::ErrorKind::Permanent);
        let e = api(429, "TooManyRequests").into_step_error("VM x");
        assert_eq!(e.kind(), k0rdent_core::step::ErrorKind::Transient);
    }
}
