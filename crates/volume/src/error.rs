//! The block storage service's failures, mapped once to Cinder's status codes and fault
//! names (the same envelope as Nova's: `{"itemNotFound": {"code": 404, "message": ...}}`).

use http::StatusCode;
use onestack_api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    /// Bad input, and (as in Cinder) a resource in the wrong state for the request.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Policy doesn't allow {0} to be performed.")]
    Policy(String),
    /// A quota refused the request: Cinder prefixes the exception's class name.
    #[error("{class}: {message}")]
    OverQuota {
        class: &'static str,
        message: String,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Doc(#[from] onestack_db::DocError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn volume_not_found(id: &str) -> Self {
        Error::NotFound(format!("Volume {id} could not be found."))
    }
    pub fn type_not_found(id: &str) -> Self {
        Error::NotFound(format!("Volume type {id} could not be found."))
    }
    /// Cinder's `InvalidVolume`: the volume is in the wrong state for the request.
    pub fn invalid_volume(reason: impl std::fmt::Display) -> Self {
        Error::Invalid(format!("Invalid volume: {reason}"))
    }
    pub fn invalid_input(reason: impl std::fmt::Display) -> Self {
        Error::Invalid(format!("Invalid input received: {reason}"))
    }
}

impl From<onestack_api::Denied> for Error {
    fn from(denied: onestack_api::Denied) -> Self {
        Error::Policy(denied.0)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Invalid(_) => ApiError::bad_request(message),
            Error::Conflict(_) => ApiError::conflict(message),
            Error::Policy(_) => ApiError::forbidden(message),
            Error::OverQuota { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message),
            Error::Api(api) => api,
            Error::Db(_) | Error::Doc(_) => ApiError::internal(message),
        }
    }
}
