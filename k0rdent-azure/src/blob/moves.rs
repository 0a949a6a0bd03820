//! The two writes of `k0rdent state migrate` on the state blob: a copied state written in
//! (the destination side) and the pointer left behind (the source side). Both go under the
//! lease, fenced by `If-Match`/`If-None-Match` like every save.

use std::path::PathBuf;
use std::sync::Arc;

use k0rdent_core::state::{DeploymentState, ParseError, StatePointer, parse_state, render_state};
use k0rdent_core::store::StoreError;

use super::lease::holder_headers;
use super::{BlobStore, Known, STATE_BLOB, lease_gone, remote};

/// What the state blob holds now, read for one of the writes below.
enum Current {
    Absent,
    /// The empty placeholder or a pointer, at this ETag: a copy may replace it.
    Replaceable(String, Option<StatePointer>),
    /// A state, at this ETag, with its bytes.
    State(String, Box<DeploymentState>, Vec<u8>),
}

impl BlobStore {
    async fn current(&self) -> Result<Current, StoreError> {
        let Some(reply) = self
            .get(&self.inner.state_blob, "read the state blob")
            .await?
        else {
            return Ok(Current::Absent);
        };
        let etag = reply.header("etag").unwrap_or_default().to_owned();
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Current::Replaceable(etag, None));
        }
        match parse_state(&reply.body) {
            Ok(m) => Ok(Current::State(etag, Box::new(m.state), reply.body)),
            Err(ParseError::Moved(p)) => Ok(Current::Replaceable(etag, Some(*p))),
            Err(e) => Err(StoreError::Corrupt {
                path: PathBuf::from(self.location()).join(STATE_BLOB),
                detail: e.to_string(),
                remedy: "the blob was left untouched; move it away or delete it".into(),
            }),
        }
    }

    /// The lease id and holder metadata every write sends, and the condition.
    fn fenced(&self, condition: (&str, String)) -> Result<Vec<(String, String)>, StoreError> {
        let mut headers = vec![(condition.0.to_owned(), condition.1)];
        if let Some((id, holder)) = self.inner.lease.current(&self.location())? {
            headers.push(("x-ms-lease-id".into(), id));
            headers.extend(holder_headers(&holder));
        }
        Ok(headers)
    }

    async fn put_fenced(
        &self,
        bytes: Vec<u8>,
        headers: Vec<(String, String)>,
        op: &str,
    ) -> Result<String, StoreError> {
        let location = self.location();
        match self
            .put_block(&self.inner.state_blob, bytes, headers, op)
            .await
        {
            Ok(reply) => Ok(reply.header("etag").unwrap_or_default().to_owned()),
            Err(e) if lease_gone(&e) || matches!(e.status(), Some(409 | 412)) => {
                self.set_known(Known::Unknown);
                Err(StoreError::Conflict {
                    location,
                    detail: format!(
                        "the state blob changed or its lease was lost ({}); nothing was written",
                        e.code()
                    ),
                })
            }
            Err(e) => Err(remote(&location, &e)),
        }
    }

    pub(super) async fn copy_in(&self, state: &DeploymentState) -> Result<(), StoreError> {
        self.ensure_container().await?;
        let condition = match self.current().await? {
            Current::Absent => ("if-none-match", "*".to_owned()),
            Current::Replaceable(etag, _) => ("if-match", etag),
            Current::State(etag, s, _) if *s == *state => ("if-match", etag),
            Current::State(_, s, _) => {
                return Err(StoreError::Conflict {
                    location: self.location(),
                    detail: format!(
                        "it holds a deployment of its own (cluster {}, generation {})",
                        s.cluster_id.as_deref().unwrap_or("unnamed"),
                        s.generation
                    ),
                });
            }
        };
        let headers = self.fenced(condition)?;
        let bytes = render_state(state)
            .map_err(|e| StoreError::Remote {
                location: self.location(),
                detail: format!("cannot render the state: {e}"),
                remedy: None,
            })?
            .into_bytes();
        let etag = self
            .put_fenced(bytes.clone(), headers, "copy the state in")
            .await?;
        self.set_known(Known::Present(etag, state.generation, Arc::new(bytes)));
        Ok(())
    }

    pub(super) async fn leave_pointer(
        &self,
        pointer: &StatePointer,
        generation: u64,
    ) -> Result<(), StoreError> {
        let conflict = |detail: String| StoreError::Conflict {
            location: self.location(),
            detail,
        };
        let (etag, bytes) = match self.current().await? {
            Current::State(etag, s, bytes) if s.generation == generation => (etag, bytes),
            Current::State(_, s, _) => {
                return Err(conflict(format!(
                    "leaving a pointer over generation {}, expected {generation}",
                    s.generation
                )));
            }
            Current::Replaceable(_, Some(p)) if p.moved_to == pointer.moved_to => return Ok(()),
            Current::Replaceable(_, Some(p)) => {
                return Err(conflict(format!("it already points to {}", p.moved_to)));
            }
            Current::Absent | Current::Replaceable(_, None) => {
                return Err(conflict("the state blob holds no state".into()));
            }
        };
        self.put_backup(generation, &bytes).await;
        let headers = self.fenced(("if-match", etag))?;
        let text = pointer.render().map_err(|e| StoreError::Remote {
            location: self.location(),
            detail: format!("cannot render the pointer: {e}"),
            remedy: None,
        })?;
        self.put_fenced(text.into_bytes(), headers, "leave a pointer")
            .await?;
        self.set_known(Known::Unknown);
        Ok(())
    }
}
