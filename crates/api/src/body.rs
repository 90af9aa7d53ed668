//! JSON request bodies: size-limited (the router's `DefaultBodyLimit`), parsed with a
//! 400 that says what is wrong, and 413 when too large. A body declared as something other
//! than JSON gets 400 (Keystone's answer; Nova and Neutron say 415, which no client tells
//! apart), and a string holding NUL gets 400: no name, id or value may hold one
//! (C strings, logs and PostgreSQL's text all end or fail at it).

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ApiError;

/// A JSON body deserialized into `T`.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(declared) = request.headers().get(http::header::CONTENT_TYPE)
            && !is_json(declared)
        {
            return Err(ApiError::bad_request(format!(
                "The request body is declared as {}; send it as application/json.",
                String::from_utf8_lossy(declared.as_bytes())
            )));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::too_large("Request is too large.")
                } else {
                    ApiError::bad_request(format!("Could not read the request body: {rejection}"))
                }
            })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parses a JSON document, mapping every failure to a 400 with serde's explanation.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "The request body is empty; a JSON document is required.",
        ));
    }
    let invalid = |e: serde_json::Error| {
        ApiError::bad_request(format!("Invalid input in the request body: {e}"))
    };
    let document: Value = serde_json::from_slice(bytes).map_err(invalid)?;
    if holds_nul(&document) {
        return Err(ApiError::bad_request(
            "Invalid input in the request body: a string holds a NUL character (\\u0000).",
        ));
    }
    serde_json::from_value(document).map_err(invalid)
}

/// JSON by its media type: `application/json`, a `+json` suffix, or a JSON Patch type
/// (Glance's `application/openstack-images-v2.1-json-patch`); parameters such as
/// `charset` are ignored.
fn is_json(declared: &http::HeaderValue) -> bool {
    let Ok(text) = declared.to_str() else {
        return false;
    };
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || essence.ends_with("json-patch")
}

/// Whether any key or string value in `value` holds U+0000.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}
