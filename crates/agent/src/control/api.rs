//! The controller's side of the agent protocol: joining, and each joined host's reports.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::routing::{post, put};
use axum::{Json, Router};
use http::StatusCode;
use http::request::Parts;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_compute::Computes;
use onestack_compute::error::Error as ComputeError;
use onestack_compute::ops::membership::{HostKind, HostReport};

use super::{JoinReply, JoinRequest};

/// The largest body of a join or a report (a few hundred bytes).
const BODY_LIMIT: usize = 64 * 1024;

/// The routes under [`super::PREFIX`].
pub fn router(computes: Arc<Computes>) -> Router {
    Router::new()
        .route("/v1/join", post(join))
        .route("/v1/hosts/{host}/report", put(report))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(super::work::routes())
        .merge(super::network::routes())
        .with_state(computes)
}

async fn join(
    State(computes): State<Arc<Computes>>,
    JsonBody(request): JsonBody<JoinRequest>,
) -> Result<Json<JoinReply>, ApiError> {
    let credential = computes
        .membership()
        .join(
            &request.token,
            &request.host,
            computes.config.liveness(onestack_db::now_micros()),
        )
        .await
        .map_err(wire_error)?;
    tracing::info!(host = %request.host, "a host joined the cloud");
    Ok(Json(JoinReply {
        host: request.host,
        credential,
    }))
}

/// A joined host reports itself alive with what it measured.
async fn report(
    State(computes): State<Arc<Computes>>,
    caller: HostCredential,
    Path(host): Path<String>,
    JsonBody(report): JsonBody<HostReport>,
) -> Result<StatusCode, ApiError> {
    caller.speaks_for(&host)?;
    let record = report
        .into_host(&host, HostKind::Joined)
        .map_err(wire_error)?;
    computes.register_host(record).await.map_err(wire_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The joined host a request speaks for: the one whose credential it carries
/// (`Authorization: Bearer …`).
pub(super) struct HostCredential(String);

impl HostCredential {
    /// A host speaks only for itself.
    pub(super) fn speaks_for(&self, host: &str) -> Result<(), ApiError> {
        if self.0 == host {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this credential is host {}'s, not {host}'s",
                self.0
            )))
        }
    }
}

impl FromRequestParts<Arc<Computes>> for HostCredential {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        computes: &Arc<Computes>,
    ) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::unauthorized(
                "this host's credential is unknown: the host was removed from the cloud \
                 (compute service delete) or joined again; join it with a new token from \
                 `onestack join-token`",
            )
        };
        let credential = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        match computes.membership().host_of(credential).await {
            Ok(Some(host)) => Ok(HostCredential(host)),
            Ok(None) => Err(refused()),
            Err(error) => Err(wire_error(error)),
        }
    }
}

/// The one mapping of compute's errors onto this protocol's answers.
pub(super) fn wire_error(error: ComputeError) -> ApiError {
    match error {
        ComputeError::Forbidden(message) => ApiError::unauthorized(message),
        ComputeError::BadRequest(message) => ApiError::bad_request(message),
        ComputeError::Conflict(message) => ApiError::conflict(message),
        ComputeError::NotFound(message) => ApiError::not_found(message),
        other => ApiError::internal(other),
    }
}
