//! `PATCH /v2/images/{id}` with `application/openstack-images-v2.1-json-patch`: the body
//! parsed into changes; Glance's rules for them are in `ops/attributes.rs`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use onestack_api::AuthContext;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::attributes::{Change, Patch};
use crate::service::Images;
use crate::views;

const PATCH_TYPES: [&str; 2] = [
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
];

/// `/name` → `name`; JSON Pointer escapes undone; nested paths refused.
fn attribute_of(path: &str) -> Result<String> {
    let inner = path
        .strip_prefix('/')
        .ok_or_else(|| Error::BadRequest(format!("Invalid JSON pointer '{path}'.")))?;
    if inner.is_empty() || inner.contains('/') {
        return Err(Error::BadRequest(format!(
            "Invalid path '{path}': only top-level attributes can be changed."
        )));
    }
    Ok(inner.replace("~1", "/").replace("~0", "~"))
}

fn change(operation: Value) -> Result<Change> {
    let Value::Object(mut op) = operation else {
        return Err(Error::BadRequest(
            "Each patch operation must be an object.".into(),
        ));
    };
    let kind = op
        .remove("op")
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let path = op
        .remove("path")
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| Error::BadRequest("Each patch operation needs a 'path'.".into()))?;
    let key = attribute_of(&path)?;
    match kind.as_str() {
        "add" | "replace" => {
            let value = op
                .remove("value")
                .ok_or_else(|| Error::BadRequest(format!("'{kind}' needs a 'value'.")))?;
            Ok(Change::Set {
                key,
                value,
                replace: kind == "replace",
            })
        }
        "remove" => Ok(Change::Remove { key }),
        other => Err(Error::BadRequest(format!(
            "Unsupported patch operation '{other}': use add, replace or remove."
        ))),
    }
}

/// The body's operations, up to the first malformed one.
fn patch(body: &[u8]) -> Patch {
    // The shared JSON parser: its 400s, and no string holding NUL.
    let operations: Vec<Value> = match onestack_api::body::parse(body) {
        Ok(operations) => operations,
        Err(e) => {
            return Patch {
                changes: Vec::new(),
                malformed: Some(Error::BadRequest(format!(
                    "The body must be a JSON array of patch operations: {}",
                    e.message
                ))),
            };
        }
    };
    let mut parsed = Patch::default();
    for operation in operations {
        match change(operation) {
            Ok(change) => parsed.changes.push(change),
            Err(e) => {
                parsed.malformed = Some(e);
                break;
            }
        }
    }
    parsed
}

/// `PATCH /v2/images/{id}`.
pub async fn update(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>> {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !PATCH_TYPES.iter().any(|t| content_type.starts_with(t)) {
        return Err(Error::UnsupportedMediaType(format!(
            "Content-Type must be {} (got '{content_type}').",
            PATCH_TYPES[0]
        )));
    }
    let image = images.update(&ctx, &id, patch(&body)).await?;
    Ok(Json(views::image(&image)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_name_top_level_attributes_only() {
        assert_eq!(attribute_of("/name").unwrap(), "name");
        assert_eq!(attribute_of("/a~1b").unwrap(), "a/b");
        assert!(attribute_of("name").is_err());
        assert!(attribute_of("/a/b").is_err());
        assert!(attribute_of("/").is_err());
    }
}
