//! Glance's rules for an image's attributes, shared by create (each field of the body) and
//! update (each operation of a JSON patch): which are read-only, what values each takes, and
//! who may make an image public or community or give it away.

use onestack_api::AuthContext;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::format::{CONTAINER_FORMATS, DISK_FORMATS};
use crate::model::{Image, Status, VISIBILITIES};
use crate::policy::{self, Action};

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
/// Attributes every image has: they can be set but never removed.
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

/// One operation of a JSON patch (`PATCH /v2/images/{id}`).
#[derive(Debug, Clone)]
pub enum Change {
    /// `add`, or `replace` (which needs the attribute to exist already).
    Set {
        key: String,
        value: Value,
        replace: bool,
    },
    Remove {
        key: String,
    },
}

/// A JSON patch as parsed: its operations up to the first malformed one, and that one's
/// error, which is reported once the image is found and the operations before it applied.
#[derive(Debug, Default)]
pub struct Patch {
    pub changes: Vec<Change>,
    pub malformed: Option<Error>,
}

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

pub(crate) fn check_tag(tag: &str) -> Result<()> {
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
pub(crate) fn set_attribute(
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

/// Applies one patch operation to an image.
pub(crate) fn apply(ctx: &AuthContext, image: &mut Image, change: Change) -> Result<()> {
    match change {
        Change::Set {
            key,
            value,
            replace,
        } => {
            let key = key.as_str();
            if replace
                && !CORE.contains(&key)
                && !image.properties.contains_key(key)
                && !READ_ONLY.contains(&key)
            {
                return Err(Error::Conflict(format!("Property {key} does not exist.")));
            }
            set_attribute(ctx, image, key, value)
        }
        Change::Remove { key } => remove_attribute(image, &key),
    }
}
