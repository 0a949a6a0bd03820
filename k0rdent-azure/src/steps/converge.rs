//! Journaled ARM writes: the intent is journaled before a write is sent, the operation URL as
//! soon as ARM accepts it, and the outcome once it settles. A step that is interrupted (or whose
//! connection drops after ARM accepted the write) resumes by polling the journaled operation,
//! or — when the acceptance itself was lost — by reading the resource, never by blindly
//! writing again.

use std::time::Duration;

use k0rdent_core::{StepContext, StepError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{
    Accepted, ArmClient, ArmError, ArmErrorCode, PollKind, PollStatus, PollTarget,
};

/// How often to look at a running operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollConfig {
    /// Never sooner than this (even if ARM says 0).
    pub min: Duration,
    /// Never later than this (even if ARM says more).
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
    /// The wait for ARM's hint.
    pub fn after(&self, hint: Option<Duration>) -> Duration {
        hint.unwrap_or(self.default).clamp(self.min, self.max)
    }
}

/// One journaled write, under the journal key `arm/<key>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum OpRecord {
    /// About to send (the outcome of a lost response is read from the resource).
    Sent {
        /// Method.
        method: String,
        /// Resource path.
        resource: String,
    },
    /// ARM accepted it; follow `poll`.
    Accepted {
        /// Method.
        method: String,
        /// Resource path.
        resource: String,
        /// Where to poll.
        poll: PollTarget,
    },
    /// Finished (succeeded, or the operation record expired: the resource tells).
    Settled {
        /// Resource path.
        resource: String,
    },
    /// The operation ended Failed or Canceled.
    Failed {
        /// Resource path.
        resource: String,
        /// The error.
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
pub fn check_journal(j: &k0rdent_core::state::Journal) -> Result<(), String> {
    for e in j.entries().iter().filter(|e| e.key.starts_with("arm/")) {
        serde_json::from_value::<OpRecord>(e.value.clone())
            .map_err(|err| format!("journal entry {}: {err}", e.key))?;
    }
    Ok(())
}

/// Either the result, or "look again after".
#[derive(Debug)]
pub enum Progress<T> {
    /// Done with this resource.
    Ready(T),
    /// Waiting for Azure.
    Wait(Duration, String),
}

/// Writes and settles journaled ARM operations for one step.
pub struct Converger<'a> {
    /// The step's context.
    pub ctx: &'a StepContext,
    /// The client.
    pub client: &'a ArmClient,
    /// Poll timing.
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

impl Converger<'_> {
    fn latest(&self, key: &str) -> Option<OpRecord> {
        self.ctx.journal().latest_as::<OpRecord>(&journal_key(key))
    }

    async fn record(&self, key: &str, rec: &OpRecord) -> Result<(), StepError> {
        self.ctx.write_journal(&journal_key(key), rec).await
    }

    /// Settles a journaled operation, if one is running. `Some(wait)` while it runs.
    ///
    /// # Errors
    /// The operation failed (transient; journaled as failed first), or polling failed.
    pub async fn settle(&self, key: &str, what: &str) -> Result<Option<Progress<()>>, StepError> {
        let Some(OpRecord::Accepted { resource, poll, .. }) = self.latest(key) else {
            return Ok(None);
        };
        match self.client.poll(&poll, what).await {
            Ok(PollStatus::InProgress { retry_after }) => Ok(Some(Progress::Wait(
                self.poll.after(retry_after),
                format!("{what}: in progress"),
            ))),
            Ok(PollStatus::Succeeded { .. }) => {
                self.record(key, &OpRecord::Settled { resource }).await?;
                Ok(None)
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
            Err(e) if e.is_not_found() => {
                // The operation record expired, or (for a resource poll) the resource is gone;
                // reading the resource decides what to do next.
                self.record(key, &OpRecord::Settled { resource }).await?;
                Ok(None)
            }
            Err(e) => Err(e.into_step_error(what)),
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
                Ok(Progress::Wait(
                    self.poll.after(retry_after),
                    format!("{what}: accepted"),
                ))
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
                self.watch(key, resource, api_version, what).await
            }
            Err(e) => Err(e.into_step_error(what)),
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
        let e = check_journal(&bad).unwrap_err();
        assert!(e.contains("arm/vm"), "{e}");
    }

    #[test]
    fn poll_delays_follow_retry_after_within_bounds() {
        let p = PollConfig::default();
        assert_eq!(p.after(None), Duration::from_secs(10));
        assert_eq!(p.after(Some(Duration::ZERO)), Duration::from_secs(2));
        assert_eq!(
            p.after(Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        assert_eq!(
            p.after(Some(Duration::from_secs(15))),
            Duration::from_secs(15)
        );
    }
}
