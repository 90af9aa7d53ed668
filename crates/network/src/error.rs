//! The network service's failures, each with Neutron's type name, mapped to the API once.

use onestack_api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {id} could not be found.")]
    NotFound {
        kind: &'static str,
        what: &'static str,
        id: String,
    },
    /// A 404 whose message is not "<what> <id> could not be found."
    #[error("{message}")]
    Absent { kind: &'static str, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Invalid { kind: &'static str, message: String },
    #[error("{message}")]
    Conflict { kind: &'static str, message: String },
    #[error("({0}) is disallowed by policy")]
    Policy(String),
    #[error("Quota exceeded for resources: ['{0}'].")]
    OverQuota(&'static str),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Doc(#[from] onestack_db::DocError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(kind: &'static str, what: &'static str, id: &str) -> Self {
        Error::NotFound {
            kind,
            what,
            id: id.to_owned(),
        }
    }
    pub fn network_not_found(id: &str) -> Self {
        Self::not_found("NetworkNotFound", "Network", id)
    }
    pub fn subnet_not_found(id: &str) -> Self {
        Self::not_found("SubnetNotFound", "Subnet", id)
    }
    pub fn port_not_found(id: &str) -> Self {
        Self::not_found("PortNotFound", "Port", id)
    }
    pub fn group_not_found(id: &str) -> Self {
        Self::not_found("SecurityGroupNotFound", "Security group", id)
    }
    pub fn rule_not_found(id: &str) -> Self {
        Self::not_found("SecurityGroupRuleNotFound", "Security group rule", id)
    }
    /// Neutron's `InvalidInput`: "Invalid input for operation: ...".
    pub fn invalid_input(message: impl std::fmt::Display) -> Self {
        Error::Invalid {
            kind: "InvalidInput",
            message: format!("Invalid input for operation: {message}."),
        }
    }
    pub fn not_found_message(kind: &'static str, message: impl Into<String>) -> Self {
        Error::Absent {
            kind,
            message: message.into(),
        }
    }
    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Error::Conflict {
            kind,
            message: message.into(),
        }
    }
}

impl From<onestack_api::caller::Denied> for Error {
    fn from(denied: onestack_api::caller::Denied) -> Self {
        Error::Policy(format!("rule:{}", denied.0))
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::NotFound { kind, .. } => ApiError::not_found(message).with_kind(kind),
            Error::Absent { kind, .. } => ApiError::not_found(message).with_kind(kind),
            Error::BadRequest(_) => ApiError::bad_request(message),
            Error::Invalid { kind, .. } => ApiError::bad_request(message).with_kind(kind),
            Error::Conflict { kind, .. } => ApiError::conflict(message).with_kind(kind),
            Error::Policy(_) => ApiError::forbidden(message).with_kind("PolicyNotAuthorized"),
            Error::OverQuota(_) => ApiError::conflict(message).with_kind("OverQuota"),
            Error::Api(api) => api,
            // A parent deleted between a request's checks and its write.
            Error::Db(db) if onestack_db::is_foreign_key_violation(&db) => ApiError::conflict(
                "A resource this request refers to was deleted meanwhile; retry.",
            ),
            Error::Db(db) => ApiError::internal(db),
            Error::Internal(m) => ApiError::internal(m),
            Error::Doc(e) => ApiError::internal(e.to_string()),
        }
    }
}
