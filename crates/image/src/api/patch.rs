//! Setting image attributes, shared by create (`POST /v2/images`) and update
//! (`PATCH /v2/images/{id}` with `application/openstack-images-v2.1-json-patch`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use bytes::Bytes;
use onestack_api::AuthContext;
use onestack_db::now_micros;
use serde_json::Value;

use crate::format::{CONTAINER_FORMATS, DISK_FORMATS};
use crate::model::{Image, Status, VISIBILITIES};
use crate::policy::{self, Action};
use crate::service::{Error, Images, Result};
use crate::{store, views};

const READ_ONLY: [&str; 14] = [
    "status",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
];
const RESERVED: [&str; 3] = ["deleted", "deleted_at", "location"];
const PATCH_TYPES: [&str; 2] = [
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
];

fn string_or_null(key: &str, value: Value, max: usize) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= max => Ok(Some(s)),
        Value::String(_) => Err(Error::BadRequest(format!(
            "'{key}' is longer than {max} characters."
        ))),
        other => Err(Error::BadRequest(format!(
            "Invalid value {other} for '{key}': a string is required."
        ))),
    }
}

fn non_negative(key: &str, value: Value) -> Result<i64> {
    value.as_i64().filter(|v| *v >= 0).ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid value {value} for '{key}': a non-negative integer is required."
        ))
    })
}

fn boolean(key: &str, value: Value) -> Result<bool> {
    value.as_bool().ok_or_else(|| {
        Error::BadRequest(format!(
            "Invalid value {value} for '{key}': true or false is required."
        ))
    })
}

fn one_of(key: &str, value: Value, allowed: &[&str]) -> Result<Option<String>> {
    match string_or_null(key, value, 255)? {
        Some(v) if !allowed.contains(&v.as_str()) => Err(Error::BadRequest(format!(
            "Invalid value '{v}' for '{key}': use one of {}.",
            allowed.join(", ")
        ))),
        v => Ok(v),
    }
}

pub(super) fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.chars().count() > 255 {
        return Err(Error::BadRequest("A tag is 1 to 255 characters.".into()));
    }
    Ok(())
}

fn tags(value: Value) -> Result<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(Error::BadRequest(
            "'tags' must be a list of strings.".into(),
        ));
    };
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let Value::String(tag) = item else {
            return Err(Error::BadRequest(
                "'tags' must be a list of strings.".into(),
            ));
        };
        check_tag(&tag)?;
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// Sets one attribute (core or free-form property) on an image, with Glance's rules.
pub(super) fn set_attribute(
    ctx: &AuthContext,
    image: &mut Image,
    key: &str,
    value: Value,
) -> Result<()> {
    if READ_ONLY.contains(&key) {
        return Err(Error::Forbidden(format!("Attribute '{key}' is read-only.")));
    }
    if RESERVED.contains(&key) {
        return Err(Error::Forbidden(format!("Attribute '{key}' is reserved.")));
    }
    match key {
        "id" => return Err(Error::Forbidden("Attribute 'id' is read-only.".into())),
        "name" => image.name = string_or_null(key, value, 255)?,
        "visibility" => {
            let v = one_of(key, value, &VISIBILITIES)?
                .ok_or_else(|| Error::BadRequest("'visibility' cannot be null.".into()))?;
            match v.as_str() {
                "public" => policy::enforce(ctx, Action::PublicizeImage, &image.owner)?,
                "community" => policy::enforce(ctx, Action::CommunitizeImage, &image.owner)?,
                _ => {}
            }
            image.visibility = v;
        }
        "protected" => image.protected = boolean(key, value)?,
        "os_hidden" => image.os_hidden = boolean(key, value)?,
        "min_disk" => image.min_disk = non_negative(key, value)?,
        "min_ram" => image.min_ram = non_negative(key, value)?,
        "disk_format" | "container_format" => {
            if image.status != Status::Queued {
                return Err(Error::Forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            let allowed: &[&str] = if key == "disk_format" {
                &DISK_FORMATS
            } else {
                &CONTAINER_FORMATS
            };
            let v = one_of(key, value, allowed)?;
            if key == "disk_format" {
                image.disk_format = v
            } else {
                image.container_format = v
            }
        }
        "tags" => image.tags = tags(value)?,
        "owner" => {
            if !ctx.is_admin() {
                return Err(Error::Forbidden(
                    "Only a cloud administrator may change an image's owner.".into(),
                ));
            }
            image.owner = string_or_null(key, value, 255)?
                .ok_or_else(|| Error::BadRequest("'owner' cannot be null.".into()))?;
        }
        _ => {
            if key.is_empty() || key.chars().count() > 255 {
                return Err(Error::BadRequest(
                    "A property name is 1 to 255 characters.".into(),
                ));
            }
            match value {
                Value::String(_) => {
                    image.properties.insert(key.to_owned(), value);
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "Invalid value {other} for property '{key}': a string is required."
                    )));
                }
            }
        }
    }
    Ok(())
}

fn remove_attribute(image: &mut Image, key: &str) -> Result<()> {
    if READ_ONLY.contains(&key) || RESERVED.contains(&key) || key == "id" {
        return Err(Error::Forbidden(format!("Attribute '{key}' is read-only.")));
    }
    const CORE: [&str; 10] = [
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "min_disk",
        "min_ram",
        "disk_format",
        "container_format",
        "tags",
        "owner",
    ];
    if CORE.contains(&key) {
        return Err(Error::Forbidden(format!(
            "Attribute '{key}' cannot be removed."
        )));
    }
    if image.properties.remove(key).is_none() {
        return Err(Error::Conflict(format!("Property {key} does not exist.")));
    }
    Ok(())
}

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
    let mut image = images.find_for(&ctx, &id, Action::ModifyImage).await?;
    let operations: Vec<Value> = serde_json::from_slice(&body).map_err(|e| {
        Error::BadRequest(format!(
            "The body must be a JSON array of patch operations: {e}."
        ))
    })?;
    for operation in operations {
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
                let core = matches!(
                    key.as_str(),
                    "name"
                        | "visibility"
                        | "protected"
                        | "os_hidden"
                        | "min_disk"
                        | "min_ram"
                        | "disk_format"
                        | "container_format"
                        | "tags"
                        | "owner"
                );
                if kind == "replace"
                    && !core
                    && !image.properties.contains_key(&key)
                    && !READ_ONLY.contains(&key.as_str())
                {
                    return Err(Error::Conflict(format!("Property {key} does not exist.")));
                }
                set_attribute(&ctx, &mut image, &key, value)?;
            }
            "remove" => remove_attribute(&mut image, &key)?,
            other => {
                return Err(Error::BadRequest(format!(
                    "Unsupported patch operation '{other}': use add, replace or remove."
                )));
            }
        }
    }
    image.updated_at = now_micros();
    store::update(&images.pool, &image).await?;
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
