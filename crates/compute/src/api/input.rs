//! Reading Nova's request attributes: numbers and booleans in the forms Nova accepts,
//! string maps, names, hostnames and addresses, with Nova's 400 messages.

use std::collections::BTreeMap;
use std::net::IpAddr;

use onestack_api::Fields;
use serde_json::Value;

use crate::error::{Error, Result};

/// A non-negative integer field given as a number or a numeric string (Nova accepts both).
pub fn opt_uint(fields: &mut Fields, key: &str) -> Result<Option<u64>> {
    uint(fields.take(key), key)
}

/// [`opt_uint`] of a value already taken out of its object.
pub fn uint(value: Option<Value>, key: &str) -> Result<Option<u64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(other) => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value: {other}. It must be a non-negative integer."
        ))),
    }
}

/// A boolean given as JSON or as Nova's accepted strings.
pub fn opt_flag(fields: &mut Fields, key: &str) -> Result<Option<bool>> {
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
pub fn string_map(value: Value, what: &str) -> Result<BTreeMap<String, String>> {
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

/// The name rule Nova applies to servers, flavors, keypairs, server groups and snapshots:
/// 1–255 characters, no leading or trailing whitespace.
pub fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > 255 || name.trim() != name {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute name. Value: {name}. {what} names must be 1 to 255 characters without leading or trailing whitespace."
        )));
    }
    Ok(())
}

/// A hostname (2.90+): letters, digits, `-` and `.`, at most 63, no `-` at either end.
pub fn check_hostname(hostname: &str) -> Result<()> {
    if crate::ops::membership::is_hostname(hostname) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute hostname. Value: {hostname}. It must be a valid hostname (letters, digits and '-', at most 63 characters)."
        )))
    }
}

/// A requested fixed address, as Nova words its refusal.
pub fn fixed_ip(ip: &str) -> Result<IpAddr> {
    ip.parse()
        .map_err(|_| Error::BadRequest(format!("Invalid fixed IP address ({ip})")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn hostnames_are_checked() {
        assert!(check_hostname("vm-1").is_ok());
        assert!(check_hostname("-vm").is_err());
        assert!(check_hostname("a b").is_err());
    }

    #[test]
    fn numbers_and_flags_in_nova_forms() {
        assert_eq!(uint(Some(json!(" 7 ")), "n").unwrap(), Some(7));
        assert_eq!(uint(Some(Value::Null), "n").unwrap(), None);
        assert!(uint(Some(json!(-1)), "n").is_err());
        let mut f = Fields::from_object(json!({"a": "Yes", "b": "", "c": "maybe"}), "x").unwrap();
        assert_eq!(opt_flag(&mut f, "a").unwrap(), Some(true));
        assert_eq!(opt_flag(&mut f, "b").unwrap(), Some(false));
        assert!(opt_flag(&mut f, "c").is_err());
        assert_eq!(opt_flag(&mut f, "d").unwrap(), None);
    }
}
