//! Reading Cinder's request values: names, sizes and flags as its JSON schemas accept them
//! (numbers or digit strings, booleans or their words), metadata maps, with its 400 texts.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};

const MAX_TEXT: usize = 255;

fn invalid(field: &str, value: &Value, why: &str) -> Error {
    Error::Invalid(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {why}"
    ))
}

/// A name or description: a string of at most 255 characters (trimmed) or `null`.
pub fn text(field: &str, value: Value) -> Result<Option<String>> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= MAX_TEXT => Ok(Some(s.trim().to_owned())),
        Value::String(_) => Err(invalid(field, &value, "is too long")),
        other => Err(invalid(field, &other, "is not of type 'string', 'null'")),
    }
}

/// A positive whole number of GiB, given as a number or a digit string.
pub fn size(field: &str, value: &Value) -> Result<u64> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match parsed {
        Some(0) => Err(invalid(field, value, "0 is less than the minimum of 1")),
        Some(n) if n <= i32::MAX as u64 => Ok(n),
        Some(_) => Err(invalid(
            field,
            value,
            "is greater than the maximum of 2147483647",
        )),
        None => Err(invalid(field, value, "is not of type 'integer', 'string'")),
    }
}

/// A boolean as Cinder's schemas take it: JSON, or one of its words.
pub fn flag(field: &str, value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "y" | "t" => Ok(true),
            "false" | "0" | "no" | "off" | "n" | "f" => Ok(false),
            _ => Err(invalid(field, value, "is not a valid boolean value")),
        },
        _ => Err(invalid(field, value, "is not of type 'boolean', 'string'")),
    }
}

/// A metadata or extra specs map: string keys of 1–255 characters, string values of at
/// most 255.
pub fn string_map(field: &str, value: Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(map) = value else {
        return Err(invalid(field, &value, "is not of type 'object'"));
    };
    map.into_iter()
        .map(|(key, v)| {
            if key.is_empty() || key.chars().count() > MAX_TEXT {
                return Err(Error::Invalid(format!(
                    "Invalid input for field/attribute {field}. Value: {key}. The key must be 1 to 255 characters long"
                )));
            }
            match v {
                Value::String(s) if s.chars().count() <= MAX_TEXT => Ok((key, s)),
                other => Err(invalid(field, &other, "values must be strings of at most 255 characters")),
            }
        })
        .collect()
}

/// The one object under `key` of a body (`{"volume": {...}}`).
pub fn object(body: Value, key: &str) -> Result<serde_json::Map<String, Value>> {
    let Value::Object(mut outer) = body else {
        return Err(Error::Invalid(
            "The request body must be a JSON object.".into(),
        ));
    };
    match outer.remove(key) {
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(invalid(key, &other, "is not of type 'object'")),
        None => Err(Error::Invalid(format!("'{key}' is a required property"))),
    }
}

/// The value under `key` of a body, whatever it is (`{"extra_specs": {...}}`).
pub fn object_value(body: Value, key: &str) -> Result<Value> {
    let Value::Object(mut outer) = body else {
        return Err(Error::Invalid(
            "The request body must be a JSON object.".into(),
        ));
    };
    outer
        .remove(key)
        .ok_or_else(|| Error::Invalid(format!("'{key}' is a required property")))
}

/// A name or description under `key` or its old spelling `old` (`display_name`): `None`
/// when neither is given, `Some(None)` when given as `null`.
pub fn text_field(
    map: &mut serde_json::Map<String, Value>,
    key: &str,
    old: &str,
) -> Result<Option<Option<String>>> {
    let new = map.remove(key);
    let old = map.remove(old);
    new.or(old).map(|v| text(key, v)).transpose()
}
