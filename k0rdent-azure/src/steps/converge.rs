//! Journaled ARM writes: the intent is journaled before a write is sent, the operation URL as
//! soon as ARM accepts it, and the outcome once it settles. A step that is interrupted (or whose
//! connection drops after ARM accepted the write) resumes by polling the journaled operation,
//! or — when the acceptance itself was lost — by reading the resource, never by blindly
//! writing again.

use std::time::Duration;

use k0rdent_core::step::JournalError;
use k0rdent_core::{Remedy, StepContext, StepError, StepOutcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{
    Accepted, ArmClient, ArmError, ArmErrorCode, ComeBackLater, PollKind, PollStatus, PollTarget,
    nic_reservation_wait,
};

/// How often to look at a running operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollConfig {
    /// Never sooner than this (even if ARM says 0).
    pub min: Duration,
    /// The upper bound of `default`; a longer Retry-After from ARM is still honoured.
    pub max: Duration,
    /// When ARM gives no Retry-After.
    pub default: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            min: Duration::from_secs(2),
            max: Duration::from_secs(60),
            default: Duration::from_secs(10),
        }
    }
}

impl PollConfig {
    /// The wait for ARM's hint: the hint itself (never below `min`; a long one is honoured,
    /// the step's time limit bounds it), else `default` within `min..=max`.
    pub fn after(&self, hint: Option<Duration>) -> Duration {
        match hint {
            Some(h) => h.max(self.min),
            None => self.default.clamp(self.min, self.max),
        }
    }
}

/// One journaled write, under the journal key `arm/<key>`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum OpRecord {
    /// About to send (the outcome of a lost response is read from the resource).
    Sent { method: String, resource: String },
    /// ARM accepted it; follow `poll`.
    Accepted {
        method: String,
        resource: String,
        poll: PollTarget,
    },
    /// Finished (succeeded, or the operation record expired: the resource tells).
    Settled { resource: String },
    /// The operation ended Failed or Canceled.
    Failed {
        resource: String,
        /// The operation's error as [`ArmError`] displays it.
        error: String,
    },
}

/// The journal key of a write.
pub fn journal_key(key: &str) -> String {
    format!("arm/{key}")
}

/// Validates journaled writes (for `Step::check_journal`).
///
/// # Errors
/// An `arm/*` entry that does not parse.
pub fn check_journal(j: &k0rdent_core::state::Journal) -> Result<(), JournalError> {
    for e in j.entries().iter().filter(|e| e.key.starts_with("arm/")) {
        serde_json::from_value::<OpRecord>(e.value.clone()).map_err(|err| {
            JournalError::new(format!("journal entry {}", e.key)).with_source(err)
        })?;
    }
    Ok(())
}

/// Either the result, or "look again after".
#[derive(Debug)]
pub enum Progress<T> {
    /// Done with this resource.
    Ready(T),
    /// Look again after the duration; the text says what Azure is still doing.
    Wait(Duration, String),
}

impl<T> Progress<T> {
    /// The same progress with the result mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Progress<U> {
        match self {
            Progress::Ready(t) => Progress::Ready(f(t)),
            Progress::Wait(d, why) => Progress::Wait(d, why),
        }
    }
}

#[allow(missing_docs)]
/// Writes and settles journaled ARM operations for one step.
pub struct Converger<'a> {
    pub ctx: &'a StepContext,
    pub client: &'a ArmClient,
    /// How long to wait between polls of an accepted operation.
    pub poll: PollConfig,
}

/// Why a write's operation failed, as a step error (transient: the engine retries the step,
/// and the next attempt starts by reading the resource).
fn op_failed(what: &str, e: &ArmError) -> StepError {
    let mut se = StepError::transient(format!("{what}: {e}"));
    if let Some(r) = e.remedy() {
        se = se.with_remedy(r);
    }
    se
}

/// Waits `after` as Azure asked (`why`), if that ends within the step's time limit;
/// otherwise fails the attempt at once, saying so (the engine retries it no sooner).
pub(crate) fn wait_for<T>(
    ctx: &StepContext,
    after: Duration,
    why: String,
) -> Result<Progress<T>, StepError> {
    if let Some(d) = ctx.deadline()
        && tokio::time::Instant::now() + after > d
    {
        return Err(StepError::transient(format!(
            "{why}: that is beyond this attempt's time limit"
        ))
        .with_retry_after(after));
    }
    Ok(Progress::Wait(after, why))
}

/// A step's result, with "Azure asked to come back later" turned into waiting (within the
/// step's time limit) instead of a failed attempt.
pub(crate) fn come_back_later(
    ctx: &StepContext,
    poll: &PollConfig,
    r: Result<StepOutcome, StepError>,
) -> Result<StepOutcome, StepError> {
    match r {
        Err(e) if let Some(later) = ComeBackLater::of(&e) => {
            match wait_for::<()>(ctx, poll.after(Some(later.after)), e.message().to_owned())? {
                Progress::Wait(after, detail) => Ok(StepOutcome::pending(after, detail)),
                Progress::Ready(()) => Err(e),
            }
        }
        r => r,
    }
}

/// The resource an operation acts on: a POST action's parent (`…/vm/start` → `…/vm`).
fn resource_of(method: &str, resource: &str) -> String {
    if method.eq_ignore_ascii_case("POST") {
        resource
            .rsplit_once('/')
            .map_or(resource, |(parent, _)| parent)
            .to_owned()
    } else {
        resource.to_owned()
    }
}

impl Converger<'_> {
    fn latest(&self, key: &str) -> Option<OpRecord> {
        self.ctx.journal().latest_as::<OpRecord>(&journal_key(key))
    }

    async fn record(&self, key: &str, rec: &OpRecord) -> Result<(), StepError> {
        self.ctx.write_journal(&journal_key(key), rec).await
    }

    /// Journals "watch the resource the operation acts on" in place of the operation.
    async fn watch_instead(
        &self,
        key: &str,
        method: &str,
        resource: &str,
    ) -> Result<(), StepError> {
        let target = resource_of(method, resource);
        let poll = PollTarget {
            kind: PollKind::Resource,
            url: self
                .client
                .url(&target, crate::api::for_path(&target), &[])
                .to_string(),
        };
        self.record(
            key,
            &OpRecord::Accepted {
                method: "GET".into(),
                resource: target,
                poll,
            },
        )
        .await
    }

    /// Settles a journaled operation, if one is running. `Some(wait)` while it runs.
    ///
    /// - an operation URL Azure no longer knows (404/410) is settled by reading the
    ///   resource back: the resource is watched until its provisioning is terminal;
    /// - an operation that failed with `AnotherOperationInProgress` (Azure ran one of its
    ///   own) is not a failed attempt: the resource is watched, then written again;
    /// - `Canceled` is terminal but not success (like `Failed`).
    ///
    /// # Errors
    /// The operation failed (transient; journaled as failed first), or polling failed.
    pub async fn settle(&self, key: &str, what: &str) -> Result<Option<Progress<()>>, StepError> {
        let Some(OpRecord::Accepted {
            method,
            resource,
            poll,
        }) = self.latest(key)
        else {
            return Ok(None);
        };
        match self.client.poll(&poll, what).await {
            Ok(PollStatus::InProgress { retry_after }) => Ok(Some(wait_for(
                self.ctx,
                self.poll.after(retry_after),
                format!("{what}: in progress"),
            )?)),
            Ok(PollStatus::Succeeded { .. }) => {
                self.record(key, &OpRecord::Settled { resource }).await?;
                Ok(None)
            }
            Err(ArmError::OperationFailed {
                code: ArmErrorCode::AnotherOperationInProgress,
                ..
            }) => {
                self.watch_instead(key, &method, &resource).await?;
                self.ctx.progress(format!(
                    "{what}: Azure is running another operation on it; waiting to try again"
                ));
                Ok(Some(Progress::Wait(
                    self.poll.after(None),
                    format!("{what}: another operation in progress"),
                )))
            }
            Err(e @ ArmError::OperationFailed { .. }) => {
                self.record(
                    key,
                    &OpRecord::Failed {
                        resource,
                        error: e.to_string(),
                    },
                )
                .await?;
                Err(op_failed(what, &e))
            }
            Err(e) if e.is_not_found() && poll.kind == PollKind::Resource => {
                // The watched resource is gone; reading it decides what to do next.
                self.record(key, &OpRecord::Settled { resource }).await?;
                Ok(None)
            }
            Err(e) if poll.kind != PollKind::Resource && matches!(e.status(), Some(404 | 410)) => {
                // Azure forgot the operation (its record expired): the resource tells how
                // it ended.
                tracing::debug!(operation = %what, error = %e, "operation URL expired; reading the resource");
                self.watch_instead(key, &method, &resource).await?;
                Ok(Some(Progress::Wait(
                    self.poll.min,
                    format!("{what}: the operation record expired; reading the resource"),
                )))
            }
            Err(e) => match e.throttled_for() {
                Some(after) => Ok(Some(wait_for(
                    self.ctx,
                    self.poll.after(Some(after)),
                    format!("{what}: throttled by Azure"),
                )?)),
                None => Err(e.into_step_error(what)),
            },
        }
    }

    /// Starts watching a resource whose provisioning is still running (no write of ours).
    ///
    /// # Errors
    /// The journal could not be saved.
    pub async fn watch(
        &self,
        key: &str,
        resource: &str,
        api_version: &str,
        what: &str,
    ) -> Result<Progress<Option<Value>>, StepError> {
        let poll = PollTarget {
            kind: PollKind::Resource,
            url: self.client.url(resource, api_version, &[]).to_string(),
        };
        self.record(
            key,
            &OpRecord::Accepted {
                method: "GET".into(),
                resource: resource.to_owned(),
                poll,
            },
        )
        .await?;
        Ok(Progress::Wait(
            self.poll.default.clamp(self.poll.min, self.poll.max),
            format!("{what}: provisioning"),
        ))
    }

    /// Sends a journaled write. `Ready(body)` when ARM finished it synchronously.
    ///
    /// A write Azure cannot take yet is waited out (within the step's time limit) without
    /// failing the attempt: another operation in progress (the resource is watched),
    /// throttling with a long `Retry-After`, and a NIC Azure still reserves for a deleted or
    /// failed VM (`NicReservedForAnotherVm`, 180 s).
    ///
    /// # Errors
    /// The write failed; a lost response leaves the `sent` entry, so the next attempt reads
    /// the resource before writing again.
    pub async fn write(
        &self,
        key: &str,
        method: &str,
        resource: &str,
        api_version: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Progress<Option<Value>>, StepError> {
        self.record(
            key,
            &OpRecord::Sent {
                method: method.to_owned(),
                resource: resource.to_owned(),
            },
        )
        .await?;
        let empty = Value::Null;
        let b = body.unwrap_or(&empty);
        let result: Result<Option<Accepted>, ArmError> = match method {
            "PUT" => self.client.put(resource, api_version, b).await.map(Some),
            "PATCH" => self.client.patch(resource, api_version, b).await.map(Some),
            "POST" => self.client.post(resource, api_version).await.map(Some),
            _ => self.client.delete(resource, api_version).await,
        };
        match result {
            Ok(Some(Accepted {
                poll: Some(poll),
                retry_after,
                ..
            })) => {
                // Journaled before anything else, so a resumed run polls this operation
                // instead of writing a second time.
                self.record(
                    key,
                    &OpRecord::Accepted {
                        method: method.to_owned(),
                        resource: resource.to_owned(),
                        poll,
                    },
                )
                .await?;
                wait_for(
                    self.ctx,
                    self.poll.after(retry_after),
                    format!("{what}: accepted"),
                )
            }
            Ok(accepted) => {
                self.record(
                    key,
                    &OpRecord::Settled {
                        resource: resource.to_owned(),
                    },
                )
                .await?;
                Ok(Progress::Ready(accepted.and_then(|a| a.body)))
            }
            Err(e) if e.code() == Some(&ArmErrorCode::AnotherOperationInProgress) => {
                self.watch(key, &resource_of(method, resource), api_version, what)
                    .await
            }
            Err(ArmError::Api {
                code: ArmErrorCode::NicReservedForAnotherVm,
                message,
                ..
            }) => {
                // Nothing was written: the next call writes again.
                self.record(
                    key,
                    &OpRecord::Settled {
                        resource: resource.to_owned(),
                    },
                )
                .await?;
                let after = nic_reservation_wait(&message);
                self.ctx.progress(format!(
                    "{what}: Azure still reserves its NIC for the previous VM; waiting {} s",
                    after.as_secs()
                ));
                wait_for(
                    self.ctx,
                    after,
                    format!("{what}: NIC reserved for the previous VM (NicReservedForAnotherVm)"),
                )
            }
            Err(e) => match e.throttled_for() {
                Some(after) => {
                    // Throttled: ARM did not act on it.
                    self.record(
                        key,
                        &OpRecord::Settled {
                            resource: resource.to_owned(),
                        },
                    )
                    .await?;
                    wait_for(
                        self.ctx,
                        self.poll.after(Some(after)),
                        format!("{what}: throttled by Azure"),
                    )
                }
                None => Err(e.into_step_error(what)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k0rdent_core::state::{Journal, JournalEntry};

    fn entry(key: &str, value: serde_json::Value) -> JournalEntry {
        JournalEntry {
            at: chrono::Utc::now(),
            key: key.into(),
            value,
        }
    }

    #[test]
    fn journal_entries_round_trip_and_corrupt_ones_are_refused() {
        let rec = OpRecord::Accepted {
            method: "PUT".into(),
            resource:
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v"
                    .into(),
            poll: PollTarget {
                kind: PollKind::AsyncOperation,
                url: "https://management.azure.com/op/1".into(),
            },
        };
        let v = serde_json::to_value(&rec).unwrap();
        assert_eq!(v["phase"], "accepted");
        let good = Journal(vec![
            entry("arm/vm", v),
            entry("replace", serde_json::json!("x")),
        ]);
        assert!(check_journal(&good).is_ok());
        assert_eq!(good.latest_as::<OpRecord>("arm/vm"), Some(rec));
        let bad = Journal(vec![entry(
            "arm/vm",
            serde_json::json!({ "phase": "sent" }),
        )]);
        let e = check_journal(&bad).unwrap_err().to_string();
        assert!(e.contains("arm/vm"), "{e}");
    }

    #[test]
    fn poll_delays_follow_retry_after_within_bounds() {
        let p = PollConfig::default();
        assert_eq!(p.after(None), Duration::from_secs(10));
        assert_eq!(p.after(Some(Duration::ZERO)), Duration::from_secs(2));
        // A long Retry-After is honoured (the step's time limit bounds it), not cut to `max`.
        assert_eq!(
            p.after(Some(Duration::from_secs(600))),
            Duration::from_secs(600)
        );
        assert_eq!(
            p.after(Some(Duration::from_secs(15))),
            Duration::from_secs(15)
        );
    }
}
