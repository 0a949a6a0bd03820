//! The Azure half of `reset`: delete the resource group, but only if its tags say it is this
//! deployment's ([`GroupOwnership`]).

use std::sync::Arc;
use std::time::Duration;

use k0rdent_core::{StepContext, StepError};

use super::Shared;
use crate::api;
use crate::client::{ArmError, PollStatus, PollTarget};
use crate::model::ResourceGroup;
use crate::reset::{GroupOwnership, group_ownership};

/// Why a reset may not delete the resource group.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResetRefusal {
    /// The group is not this deployment's (why, naming the tag that differs).
    #[error("{0}")]
    NotOurs(String),
    /// Whose group it is could not be read.
    #[error("cannot check resource group {group}: {source}")]
    Unchecked {
        group: String,
        #[source]
        source: ArmError,
    },
}

/// Checks once per reset that the group may be deleted (shared by every teardown, so a
/// refused reset changes no record).
pub(crate) async fn check_group_for_reset(s: &Shared) -> Result<(), StepError> {
    let verdict = s
        .reset_verdict
        .get_or_init(|| async {
            let refusal = match group_ownership(&s.client, &s.names, &s.spec).await {
                Ok(GroupOwnership::NotOurs { reason }) => ResetRefusal::NotOurs(reason),
                Ok(_) => return Ok(()),
                Err(source) => ResetRefusal::Unchecked {
                    group: s.names.group.clone(),
                    source,
                },
            };
            Err(Arc::new(refusal))
        })
        .await;
    verdict.clone().map_err(|r| {
        StepError::blocked(format!("refusing to delete: {r}"))
            .with_remedy("check azure.resource_group and the cluster id; delete the group by hand if it really is to go")
            .with_source(SharedRefusal(r))
    })
}

/// A refusal shared by every teardown of one reset, as an error source.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct SharedRefusal(Arc<ResetRefusal>);

const KEY: &str = "arm/group-delete";

/// `setup_network`'s teardown: delete the group and wait for it to be gone, journaling the
/// operation URL so an interrupted reset polls it instead of deleting again.
pub(crate) async fn teardown_group(s: &Shared, ctx: &StepContext) -> Result<(), StepError> {
    check_group_for_reset(s).await?;
    let what = format!("deleting resource group {}", s.names.group);
    let mut target: Option<PollTarget> = ctx.journal().latest_as(KEY);
    if target.is_none() {
        match s.client.delete(&s.names.group_id(), api::RESOURCES).await {
            Ok(None) => return Ok(()),
            Ok(Some(acc)) => {
                if let Some(p) = acc.poll {
                    ctx.write_journal(KEY, &p).await?;
                    target = Some(p);
                }
            }
            Err(e) => return Err(e.into_step_error(&what)),
        }
    }
    let Some(target) = target else {
        return Ok(());
    };
    ctx.progress(what.clone());
    loop {
        ctx.checkpoint()?;
        match s.client.poll(&target, &what).await {
            Ok(PollStatus::Succeeded { .. }) => break,
            Ok(PollStatus::InProgress { retry_after }) => {
                let d = retry_after
                    .unwrap_or(s.tuning.reset_poll)
                    .clamp(s.tuning.poll.min, s.tuning.poll.max);
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = ctx.cancelled() => {
                        return Err(StepError::interrupted(
                            "stopped while the resource group is being deleted; it goes on in Azure, and `k0rdent reset` continues",
                        ));
                    }
                }
            }
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.into_step_error(&what)),
        }
    }
    // Confirm it is gone (a Location poll can succeed before the group read says 404).
    for _ in 0..30 {
        match s
            .client
            .get_opt::<ResourceGroup>(&s.names.group_id(), api::RESOURCES, &[])
            .await
        {
            Ok(None) => return Ok(()),
            Ok(Some(_)) => {
                tokio::time::sleep(s.tuning.poll.min.max(Duration::from_millis(10))).await
            }
            Err(e) => return Err(e.into_step_error(&what)),
        }
    }
    Err(StepError::transient(format!(
        "{what}: the operation finished but the group still exists"
    )))
}
