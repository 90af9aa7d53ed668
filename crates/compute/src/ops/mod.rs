//! The compute operations, one module per resource; handlers in `api/` call these.

pub mod actions;
pub mod create;
pub mod flavors;
pub mod groups;
pub mod hosts;
pub mod keypairs;
pub mod lifecycle;
pub mod ports;
pub mod servers;

use onestack_api::Fields;
use serde_json::Value;

use crate::error::{Error, Result};

/// A non-negative integer field given as a number or a numeric string (Nova accepts both).
pub(crate) fn opt_uint(fields: &mut Fields, key: &str) -> Result<Option<u64>> {
    match fields.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(other) => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value: {other}. It must be a non-negative integer."
        ))),
    }
}

/// A boolean given as JSON or as Nova's accepted strings.
pub(crate) fn opt_flag(fields: &mut Fields, key: &str) -> Result<Option<bool>> {
    match fields.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "f" | "n" | "" => Ok(Some(false)),
            _ => Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {key}. Value: {s}. It is not a boolean."
            ))),
        },
        Some(other) => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value: {other}. It is not a boolean."
        ))),
    }
}

/// A string→string map (metadata, extra specs) with Nova's 255-character limits.
pub(crate) fn string_map(
    value: Value,
    what: &str,
) -> Result<std::collections::BTreeMap<String, String>> {
    let Value::Object(map) = value else {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {what}. It must be an object."
        )));
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => {
                    return Err(Error::BadRequest(format!(
                        "Invalid input for field/attribute {what}. Value of '{k}' is {other}, not a string."
                    )));
                }
            };
            if k.is_empty() || k.chars().count() > 255 || v.chars().count() > 255 {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {what}: keys must be 1 to 255 characters, values at most 255."
                )));
            }
            Ok((k, v))
        })
        .collect()
}

/// The name rule Nova applies to servers, flavors and keypairs: 1–255 characters, no
/// leading or trailing whitespace.
pub(crate) fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 || name.trim() != name {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute name. Value: {name}. {what} names must be 1 to 255 characters without leading or trailing whitespace."
        )));
    }
    Ok(())
}
