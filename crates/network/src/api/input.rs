//! Reading Neutron's request attributes: names and descriptions, numbers that may come as
//! strings, addresses, MACs, address requests and tags, with Neutron's 400 messages.

use onestack_api::Fields;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::input::{MAX_NAME, check_tags, cidr, ip};
use crate::ops::port_input::{IpRequest, PairRequest};

pub fn text(fields: &mut Fields, key: &str) -> Result<Option<String>> {
    Ok(fields.opt_string_max(key, MAX_NAME)?)
}

/// A non-negative integer given as a number or a numeric string.
pub fn opt_u32(fields: &mut Fields, key: &str) -> Result<Option<u32>> {
    match fields.take(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::invalid_input(format!("'{n}' is not a valid value for {key}"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid_input(format!("'{s}' is not an integer for {key}"))),
        Some(other) => Err(Error::invalid_input(format!(
            "'{other}' is not an integer for {key}"
        ))),
    }
}

/// The project a request names, by either of its names; both must agree.
pub fn project(fields: &mut Fields) -> Result<Option<String>> {
    let project = fields.opt_string("project_id")?;
    let tenant = fields.opt_string("tenant_id")?;
    match (project, tenant) {
        (Some(p), Some(t)) if p != t => Err(Error::invalid_input(
            "'project_id' and 'tenant_id' do not match",
        )),
        (p, t) => Ok(p.or(t)),
    }
}

/// Refuses an update of attributes that are fixed once the resource exists.
pub fn refuse_read_only(fields: &Fields, keys: &[&str]) -> Result<()> {
    match keys.iter().find(|k| fields.contains(k)) {
        Some(key) => Err(Error::BadRequest(format!(
            "Cannot update read-only attribute {key}"
        ))),
        None => Ok(()),
    }
}

/// Refuses attributes nobody consumed, as Neutron does.
pub fn done(fields: Fields) -> Result<()> {
    let rest = fields.into_rest();
    match rest.keys().next() {
        None => Ok(()),
        Some(key) => Err(Error::BadRequest(format!(
            "Unrecognized attribute(s) '{key}'"
        ))),
    }
}

/// A MAC address in Neutron's form (lower case, colon separated), unicast.
pub fn mac(value: &str) -> Result<String> {
    let parts: Vec<&str> = value.split([':', '-']).collect();
    let bytes: Option<Vec<u8>> = (parts.len() == 6)
        .then(|| {
            parts
                .iter()
                .map(|p| u8::from_str_radix(p, 16).ok().filter(|_| p.len() == 2))
                .collect()
        })
        .flatten();
    match bytes {
        Some(b) if b[0] & 1 == 0 && b.iter().any(|x| *x != 0) => Ok(b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")),
        _ => Err(Error::invalid_input(format!(
            "'{value}' is not a valid MAC address"
        ))),
    }
}

pub fn tags(fields: &mut Fields) -> Result<Option<Vec<String>>> {
    let tags = fields.opt_string_list("tags", 255)?;
    if let Some(t) = &tags {
        check_tags(t)?;
    }
    Ok(tags)
}

/// `fixed_ips`: subnets to take an address from, or addresses asked for.
pub fn ip_requests(value: Value) -> Result<Vec<IpRequest>> {
    let Value::Array(items) = value else {
        return Err(Error::invalid_input("fixed_ips must be a list"));
    };
    items
        .into_iter()
        .map(|item| {
            let subnet_id = match &item["subnet_id"] {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => {
                    return Err(Error::invalid_input(format!(
                        "'{other}' is not a valid subnet_id"
                    )));
                }
            };
            match (&item["ip_address"], subnet_id) {
                (Value::String(address), subnet_id) => Ok(IpRequest::Address {
                    subnet_id,
                    ip: ip(address, "fixed_ips")?,
                }),
                (Value::Null, Some(subnet_id)) => Ok(IpRequest::Subnet(subnet_id)),
                (Value::Null, None) => Err(Error::invalid_input(
                    "fixed_ips entries need a subnet_id or an ip_address",
                )),
                (other, _) => Err(Error::invalid_input(format!(
                    "'{other}' is not a valid IP address for fixed_ips"
                ))),
            }
        })
        .collect()
}

/// `allowed_address_pairs`: each an address or CIDR, with a MAC or not.
pub fn pair_requests(value: Value) -> Result<Vec<PairRequest>> {
    let Value::Array(items) = value else {
        return Err(Error::invalid_input("allowed_address_pairs must be a list"));
    };
    items
        .into_iter()
        .map(|item| {
            let address = item["ip_address"].as_str().ok_or_else(|| {
                Error::invalid_input("allowed_address_pairs entries need an ip_address")
            })?;
            cidr(address, "allowed_address_pairs")?;
            let mac_address = match &item["mac_address"] {
                Value::Null => None,
                Value::String(m) => Some(mac(m)?),
                other => {
                    return Err(Error::invalid_input(format!(
                        "'{other}' is not a valid MAC address"
                    )));
                }
            };
            Ok(PairRequest {
                ip_address: address.trim().to_owned(),
                mac_address,
            })
        })
        .collect()
}

/// `security_groups` of a port: a list of group ids.
pub fn group_ids(value: Value) -> Result<Vec<String>> {
    let Value::Array(items) = value else {
        return Err(Error::invalid_input("security_groups must be a list"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(id) => Ok(id),
            other => Err(Error::invalid_input(format!(
                "'{other}' is not a security group id"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn macs_are_normalized_and_checked() {
        assert_eq!(mac("FA-16-3E-00-11-22").unwrap(), "fa:16:3e:00:11:22");
        assert!(mac("01:00:5e:00:00:01").is_err(), "multicast");
        assert!(mac("00:00:00:00:00:00").is_err());
        assert!(mac("fa:16:3e:00:11").is_err());
        assert!(mac("fa:16:3e:00:11:2").is_err());
        assert!(mac(&crate::ops::input::random_mac()).is_ok());
    }
}
