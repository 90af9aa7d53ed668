//! The image service's failures, mapped to the API's errors in one place.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use onestack_api::ApiError;

use crate::files::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No image found with ID {0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Forbidden(_) => ApiError::forbidden(message),
            Error::Conflict(_) => ApiError::conflict(message),
            Error::BadRequest(_) => ApiError::bad_request(message),
            Error::TooLarge(_) => ApiError::too_large(message),
            Error::UnsupportedMediaType(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
            }
            Error::Api(api) => api,
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

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooLarge(_) | StoreError::Quota(_) => Error::TooLarge(e.to_string()),
            StoreError::Truncated { .. } | StoreError::Client(_) => {
                Error::BadRequest(e.to_string())
            }
            StoreError::Io(io) => Error::Internal(io.to_string()),
        }
    }
}
