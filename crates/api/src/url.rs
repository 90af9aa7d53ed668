//! The public base URL that links in responses are built on: the configured public URL,
//! else the scheme-less `Host` the client used.

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::ApiError;

/// Configured public URL, installed as a request extension by the server.
#[derive(Debug, Clone)]
pub struct PublicUrl(pub Option<String>);

/// `http://host:port` (no trailing slash) as the client should see it.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(PublicUrl(Some(url))) = parts.extensions.get::<PublicUrl>() {
            return Ok(BaseUrl(url.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or("localhost");
        Ok(BaseUrl(format!("http://{host}")))
    }
}
