//! The compute service's failures, mapped to Nova's status codes once.

use onestack_api::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// The server changed between its read and a write that depended on it: worth
    /// trying again from a fresh read (a 409 when the tries run out).
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Policy doesn't allow {0} to be performed.")]
    Policy(String),
    #[error(
        "Quota exceeded for {resource}: Requested {requested}, but already used {used} of {limit} {resource}"
    )]
    OverQuota {
        resource: &'static str,
        requested: i64,
        used: i64,
        limit: i64,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Doc(#[from] onestack_db::DocError),
    #[error("network service: {0}")]
    Network(#[from] onestack_network::error::Error),
    #[error("image service: {0}")]
    Image(#[from] onestack_image::service::Error),
    #[error("{0}")]
    Volume(#[from] onestack_volume::error::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn server_not_found(id: &str) -> Self {
        Error::NotFound(format!("Instance {id} could not be found."))
    }
    pub fn flavor_not_found(id: &str) -> Self {
        Error::NotFound(format!("Flavor {id} could not be found."))
    }
    pub fn keypair_not_found(name: &str, user_id: &str) -> Self {
        Error::NotFound(format!("Keypair {name} not found for user {user_id}"))
    }
    /// Nova's `InstanceInvalidState`: an action in the wrong state.
    pub fn wrong_state(action: &str, id: &str, attr: &str, state: &str) -> Self {
        Error::Conflict(format!(
            "Cannot '{action}' instance {id} while it is in {attr} {state}"
        ))
    }
}

impl From<onestack_api::Denied> for Error {
    fn from(denied: onestack_api::Denied) -> Self {
        Error::Policy(format!("os_compute_api:{}", denied.0))
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::NotFound(_) => ApiError::not_found(message),
            Error::BadRequest(_) => ApiError::bad_request(message),
            Error::Conflict(_) | Error::Stale(_) => ApiError::conflict(message),
            Error::Forbidden(_) | Error::Policy(_) | Error::OverQuota { .. } => {
                ApiError::forbidden(message)
            }
            Error::Api(api) => api,
            Error::Network(network) => {
                // Neutron's answer, in Nova's envelope (Nova proxies these the same way).
                let api = ApiError::from(network);
                ApiError::new(api.status, api.message)
            }
            Error::Image(image) => {
                let api = ApiError::from(image);
                ApiError::new(api.status, api.message)
            }
            Error::Volume(volume) => {
                let api = ApiError::from(volume);
                ApiError::new(api.status, api.message)
            }
            Error::Db(db) if onestack_db::is_foreign_key_violation(&db) => ApiError::conflict(
                "A resource this request refers to was deleted meanwhile; retry.",
            ),
            Error::Db(db) => ApiError::internal(db),
            Error::Internal(m) => ApiError::internal(m),
            Error::Doc(e) => ApiError::internal(e.to_string()),
        }
    }
}
