//! One error type for all services. Handlers return [`ApiError`]; a per-service layer
//! ([`render_errors`]) turns it into that service's JSON envelope, so the envelope is
//! decided in exactly one place per service and extractors need not know the service.

use axum::Json;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

/// A failure as the API reports it: an HTTP status and a message for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The service's name for the failure where its envelope carries one (Neutron's `type`,
    /// e.g. `NetworkNotFound`); derived from the status when absent.
    pub kind: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: None,
        }
    }
    /// Names the failure for envelopes that carry a type (Neutron's `NeutronError.type`).
    pub fn with_kind(mut self, kind: &'static str) -> Self {
        self.kind = Some(kind);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    /// An unexpected failure. The detail goes to the log, never to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An unexpected error prevented the server from fulfilling your request.",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    /// Renders a placeholder carrying the error; [`render_errors`] gives it the body of the
    /// service that produced it. Without that layer the generic style is used.
    fn into_response(self) -> Response {
        let mut response = ErrorStyle::Generic.render(&self);
        response.extensions_mut().insert(self);
        response
    }
}

/// The error envelopes of the OpenStack services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error": {"code", "title", "message"}}` (Keystone).
    Keystone,
    /// `{"error": {"code", "title", "message"}}` without a Keystone auth challenge.
    Generic,
    /// `{"message", "code": "404 Not Found", "title"}`: webob's JSON errors, as Glance sends them.
    Glance,
    /// `{"NeutronError": {"type", "message", "detail"}}` (Neutron).
    Neutron,
    /// `{"itemNotFound": {"code", "message"}}` (Nova): the key names the failure.
    Nova,
}

impl ErrorStyle {
    pub fn render(self, error: &ApiError) -> Response {
        let title = error.status.canonical_reason().unwrap_or("Error");
        let body = match self {
            ErrorStyle::Glance => serde_json::json!({
                "message": error.message, "code": format!("{} {title}", error.status.as_u16()), "title": title,
            }),
            ErrorStyle::Neutron => serde_json::json!({
                "NeutronError": {
                    "type": error.kind.unwrap_or(match error.status {
                        StatusCode::BAD_REQUEST => "HTTPBadRequest",
                        StatusCode::UNAUTHORIZED => "HTTPUnauthorized",
                        StatusCode::FORBIDDEN => "HTTPForbidden",
                        StatusCode::NOT_FOUND => "HTTPNotFound",
                        StatusCode::CONFLICT => "HTTPConflict",
                        StatusCode::PAYLOAD_TOO_LARGE => "HTTPRequestEntityTooLarge",
                        StatusCode::METHOD_NOT_ALLOWED => "HTTPMethodNotAllowed",
                        _ => "HTTPInternalServerError",
                    }),
                    "message": error.message,
                    "detail": "",
                }
            }),
            ErrorStyle::Nova => {
                let key = error.kind.unwrap_or(match error.status {
                    StatusCode::BAD_REQUEST => "badRequest",
                    StatusCode::UNAUTHORIZED => "unauthorized",
                    StatusCode::FORBIDDEN => "forbidden",
                    StatusCode::NOT_FOUND => "itemNotFound",
                    StatusCode::METHOD_NOT_ALLOWED => "badMethod",
                    StatusCode::NOT_ACCEPTABLE => "notAcceptable",
                    StatusCode::CONFLICT => "conflictingRequest",
                    StatusCode::PAYLOAD_TOO_LARGE => "overLimit",
                    StatusCode::NOT_IMPLEMENTED => "notImplemented",
                    StatusCode::SERVICE_UNAVAILABLE => "serviceUnavailable",
                    _ => "computeFault",
                });
                serde_json::json!({ key: { "code": error.status.as_u16(), "message": error.message } })
            }
            ErrorStyle::Keystone | ErrorStyle::Generic => serde_json::json!({
                "error": { "code": error.status.as_u16(), "title": title, "message": error.message }
            }),
        };
        let mut response = (error.status, Json(body)).into_response();
        if self == ErrorStyle::Keystone && error.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Keystone uri=\"/identity\""),
            );
        }
        response
    }
}

/// Middleware that re-renders any [`ApiError`] response in `style`.
pub async fn render_errors(style: ErrorStyle, request: Request, next: Next) -> Response {
    if let Some(refused) = refuse_nul(request.uri()) {
        return style.render(&refused);
    }
    let response = next.run(request).await;
    match response.extensions().get::<ApiError>() {
        Some(error) => {
            let mut rendered = style.render(error);
            for (name, value) in response.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    rendered.headers_mut().insert(name.clone(), value.clone());
                }
            }
            rendered
        }
        None => response,
    }
}

/// A NUL byte (`%00`) in the path or the query names nothing that can exist: ids and names
/// never hold one, and PostgreSQL's text refuses it. Refused before any handler sees it: the
/// path's as not found, the query's as a bad request.
fn refuse_nul(uri: &http::Uri) -> Option<ApiError> {
    let has_nul = |text: &str| text.to_ascii_lowercase().contains("%00");
    if has_nul(uri.path()) {
        return Some(ApiError::not_found("The resource could not be found."));
    }
    uri.query()
        .filter(|q| has_nul(q))
        .map(|_| ApiError::bad_request("A query parameter holds a NUL byte (%00); remove it."))
}

/// Fallback for paths no route matches.
pub async fn not_found() -> ApiError {
    ApiError::not_found("The resource could not be found.")
}
