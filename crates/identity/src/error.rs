//! The identity service's errors, and their one mapping to Keystone's API errors.

use axum::response::{IntoResponse, Response};
use onestack_api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    #[error("Conflict occurred attempting to store {kind} - {detail}.")]
    Conflict { kind: &'static str, detail: String },
    #[error("{0}")]
    Validation(String),
    /// Authentication failed; the message never says whether the user exists.
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("{0}")]
    UnauthorizedBecause(String),
    #[error("You are not authorized to perform the requested action: {0}.")]
    Forbidden(&'static str),
    #[error("{0}")]
    ForbiddenBecause(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Error::Conflict {
            kind,
            detail: detail.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Error::Validation(message.into())
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        match &error {
            Error::NotFound { .. } => ApiError::not_found(error.to_string()),
            Error::Conflict { .. } => ApiError::conflict(error.to_string()),
            Error::Validation(m) => ApiError::bad_request(m.clone()),
            Error::Unauthorized | Error::UnauthorizedBecause(_) => {
                ApiError::unauthorized(error.to_string())
            }
            Error::Forbidden(_) | Error::ForbiddenBecause(_) => {
                ApiError::forbidden(error.to_string())
            }
            Error::Api(api) => api.clone(),
            Error::Db(db) if onestack_db::is_unique_violation(db) => ApiError::conflict(
                "Conflict occurred attempting to store the resource: it already exists.",
            ),
            Error::Db(db) if onestack_db::is_foreign_key_violation(db) => {
                ApiError::bad_request("The request refers to a resource that does not exist.")
            }
            Error::Db(db) => ApiError::internal(db),
            Error::Internal(m) => ApiError::internal(m),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
