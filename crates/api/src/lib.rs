//! Shared HTTP plumbing for every onestack service: the service-neutral error type and
//! the middleware that renders it in each service's own envelope, request ids, JSON
//! bodies with size limits, the authenticated request context and the public base URL.

pub mod auth;
pub mod body;
pub mod caller;
pub mod error;
pub mod fields;
pub mod microversion;
pub mod paging;
pub mod request_id;
pub mod routes;
pub mod url;
pub mod wire_enum;

pub use auth::{AuthContext, Scope, TokenValidator};
pub use body::JsonBody;
pub use caller::{Caller, Denied};
pub use error::{ApiError, ErrorStyle};
pub use fields::Fields;
pub use url::BaseUrl;
