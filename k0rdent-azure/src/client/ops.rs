//! Writes (PUT, PATCH, POST, DELETE) and following the operations they start.

use reqwest::{Method, StatusCode};

use super::{
    Accepted, ArmClient, ArmError, ArmErrorCode, PollKind, PollStatus, PollTarget, error_text,
    path_of, retry_after,
};
use crate::model::OperationStatus;

impl ArmClient {
    async fn write(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Accepted, ArmError> {
        let url = self.url(path, api_version, &[]);
        let m = method.as_str().to_owned();
        let resp = self.send(method.clone(), url.clone(), body).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(|e| ArmError::Transport {
            method: m.clone(),
            path: path.to_owned(),
            maybe_sent: true,
            detail: format!("reading the response: {}", e.without_url()),
        })?;
        let body: Option<serde_json::Value> = if bytes.is_empty() {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut accepted = Accepted {
            status,
            body,
            poll: None,
            retry_after: retry_after(&headers),
        };
        accepted.poll = if let Some(u) = header("azure-asyncoperation") {
            Some(PollTarget {
                kind: PollKind::AsyncOperation,
                url: u,
            })
        } else if let Some(u) = header("location").filter(|_| status == 202 || status == 201) {
            Some(PollTarget {
                kind: PollKind::Location,
                url: u,
            })
        } else if (method == Method::PUT || method == Method::PATCH)
            && !crate::model::is_terminal(accepted.provisioning_state())
        {
            Some(PollTarget {
                kind: PollKind::Resource,
                url: self.url(path, api_version, &[]).to_string(),
            })
        } else if status == 202 {
            // Accepted without a way to follow it: watch the resource.
            Some(PollTarget {
                kind: PollKind::Resource,
                url: self.url(path, api_version, &[]).to_string(),
            })
        } else {
            None
        };
        Ok(accepted)
    }

    /// PUT (create or replace).
    ///
    /// # Errors
    /// Any failure; a [`ArmError::Transport`] with `maybe_sent` means the outcome is unknown.
    pub async fn put(
        &self,
        path: &str,
        api_version: &str,
        body: &serde_json::Value,
    ) -> Result<Accepted, ArmError> {
        self.write(Method::PUT, path, api_version, Some(body)).await
    }

    /// PATCH (update some properties).
    ///
    /// # Errors
    /// As [`ArmClient::put`].
    pub async fn patch(
        &self,
        path: &str,
        api_version: &str,
        body: &serde_json::Value,
    ) -> Result<Accepted, ArmError> {
        self.write(Method::PATCH, path, api_version, Some(body))
            .await
    }

    /// POST an action (`…/start`).
    ///
    /// # Errors
    /// As [`ArmClient::put`].
    pub async fn post(&self, path: &str, api_version: &str) -> Result<Accepted, ArmError> {
        self.write(Method::POST, path, api_version, None).await
    }

    /// DELETE. A definite not-found is `Ok(None)` (already gone).
    ///
    /// # Errors
    /// As [`ArmClient::put`].
    pub async fn delete(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<Option<Accepted>, ArmError> {
        match self.write(Method::DELETE, path, api_version, None).await {
            Ok(a) if a.status == 204 => Ok(None),
            Ok(a) => Ok(Some(a)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Looks at an accepted operation once. `what` names it in errors (`PUT …/vm-1`).
    ///
    /// For [`PollKind::Resource`] a missing resource is returned as the not-found error, so
    /// the caller decides what absence means (done for a delete, lost for a create).
    ///
    /// # Errors
    /// [`ArmError::OperationFailed`] when the operation ended `Failed` or `Canceled`; request
    /// failures otherwise (a 404 on an expired operation URL included).
    pub async fn poll(&self, target: &PollTarget, what: &str) -> Result<PollStatus, ArmError> {
        let url = self.own_url(&target.url)?;
        let path = path_of(&url);
        let resp = self.send(Method::GET, url, None).await?;
        let status = resp.status();
        let ra = retry_after(resp.headers());
        match target.kind {
            PollKind::AsyncOperation => {
                let op: OperationStatus = Self::json("GET", &path, resp).await?;
                match op.status.to_ascii_lowercase().as_str() {
                    "succeeded" => Ok(PollStatus::Succeeded { body: None }),
                    "failed" | "canceled" | "cancelled" => {
                        let e = op.error.unwrap_or_default();
                        let code = if e.code.is_empty() {
                            format!("Operation{}", op.status)
                        } else {
                            e.code.clone()
                        };
                        Err(ArmError::OperationFailed {
                            operation: what.to_owned(),
                            status: op.status.clone(),
                            code: ArmErrorCode::parse(&code),
                            message: error_text(&e),
                        })
                    }
                    _ => Ok(PollStatus::InProgress { retry_after: ra }),
                }
            }
            PollKind::Location => {
                if status == StatusCode::ACCEPTED {
                    return Ok(PollStatus::InProgress { retry_after: ra });
                }
                let bytes = resp.bytes().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).ok();
                Ok(PollStatus::Succeeded { body })
            }
            PollKind::Resource => {
                let body: serde_json::Value = Self::json("GET", &path, resp).await?;
                let state = body
                    .pointer("/properties/provisioningState")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                if !crate::model::is_terminal(state.as_deref()) {
                    return Ok(PollStatus::InProgress { retry_after: ra });
                }
                if !crate::model::is_succeeded(state.as_deref()) {
                    // Failed or Canceled: terminal, not success.
                    let status = state.unwrap_or_default();
                    return Err(ArmError::OperationFailed {
                        operation: what.to_owned(),
                        code: ArmErrorCode::Other(format!("Provisioning{status}")),
                        message: format!("the resource's provisioningState is {status}"),
                        status,
                    });
                }
                Ok(PollStatus::Succeeded { body: Some(body) })
            }
        }
    }
}
