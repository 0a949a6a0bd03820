//! Whether the resource group is this deployment's, judged from its `cluster-id` and
//! `created-by` tags: `reset` deletes it only then (the deletion is the steps' teardown, in
//! `steps/teardown.rs`).

use std::collections::BTreeMap;

use crate::api;
use crate::client::{ArmClient, ArmError};
use crate::model::ResourceGroup;
use crate::names::{self, CREATED_BY_ACCEPTED, Names, TAG_CLUSTER_ID, TAG_CREATED_BY};
use crate::spec::AzureSpec;

/// Whether the resource group exists and is ours.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOwnership {
    /// There is no such group.
    Absent,
    /// It exists and carries our cluster id and a known `created-by`.
    Ours { tags: BTreeMap<String, String> },
    /// It exists but is not ours: reset must not delete it.
    NotOurs {
        /// Why (which tag differs).
        reason: String,
    },
}

/// Reads the group and judges its tags.
///
/// # Errors
/// A request failed (anything but a definite not-found).
pub async fn group_ownership(
    client: &ArmClient,
    names: &Names,
    spec: &AzureSpec,
) -> Result<GroupOwnership, ArmError> {
    let g: Option<ResourceGroup> = client
        .get_opt(&names.group_id(), api::RESOURCES, &[])
        .await?;
    let Some(g) = g else {
        return Ok(GroupOwnership::Absent);
    };
    let cid = names::tag(&g.tags, TAG_CLUSTER_ID);
    let by = names::tag(&g.tags, TAG_CREATED_BY);
    if cid != Some(spec.cluster_id.as_str()) {
        return Ok(GroupOwnership::NotOurs {
            reason: format!(
                "resource group {} has {TAG_CLUSTER_ID}={}, not {}",
                names.group,
                cid.unwrap_or("(none)"),
                spec.cluster_id
            ),
        });
    }
    if !by.is_some_and(|b| CREATED_BY_ACCEPTED.contains(&b)) {
        return Ok(GroupOwnership::NotOurs {
            reason: format!(
                "resource group {} has {TAG_CREATED_BY}={}, not {}",
                names.group,
                by.unwrap_or("(none)"),
                CREATED_BY_ACCEPTED.join(" or ")
            ),
        });
    }
    Ok(GroupOwnership::Ours { tags: g.tags })
}
