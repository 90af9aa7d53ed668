//! Reading flavor, extra spec, keypair, server group and quota bodies into the typed input
//! of their operations, at the request's microversion.

use std::collections::BTreeMap;

use onestack_api::Fields;
use serde_json::Value;

use super::input::{check_name, opt_flag, opt_uint, string_map, uint};
use crate::config::QUOTA_RESOURCES;
use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::ops::aggregates::AggregateAction;
use crate::ops::resource_input::{
    FlavorUpdate, KeyType, NewFlavor, NewKeypair, NewServerGroup, QuotaUpdate,
};

/// Nova's `db.MAX_INT`: the largest size a flavor may have.
const MAX_INT: u64 = 2_147_483_647;

const GROUP_POLICIES: &[&str] = &[
    "affinity",
    "anti-affinity",
    "soft-affinity",
    "soft-anti-affinity",
];

/// `POST /flavors`.
pub(super) fn new_flavor(body: Value) -> Result<NewFlavor> {
    let mut f = Fields::from_body(body, "flavor")?;
    let name = f.string("name", 255)?;
    check_name(&name, "Flavor")?;
    let id = match f.take("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "auto" => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 && s.trim() == s => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute id. Value: {other}."
            )));
        }
    };
    let required = |v: Option<u64>, key: &str| {
        v.ok_or_else(|| {
            Error::BadRequest(format!(
                "Invalid input for field/attribute flavor. '{key}' is a required property"
            ))
        })
    };
    let ram = required(opt_uint(&mut f, "ram")?, "ram")?;
    let vcpus = required(opt_uint(&mut f, "vcpus")?, "vcpus")?;
    let disk = required(opt_uint(&mut f, "disk")?, "disk")?;
    if ram == 0 || vcpus == 0 || vcpus > u64::from(u32::MAX) {
        return Err(Error::BadRequest(
            "Invalid input: ram and vcpus must be at least 1.".into(),
        ));
    }
    // Nova's schema bounds every size by the database's integer (2147483647); sizes
    // beyond it would overflow the arithmetic of placement and image checks.
    for (name, value) in [("ram", ram), ("vcpus", vcpus), ("disk", disk)] {
        if value > MAX_INT {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute {name}. Value: {value}. {value} is greater than the maximum of {MAX_INT}"
            )));
        }
    }
    // Nova's clients send an empty string for no swap.
    let swap = match f.take("swap") {
        Some(Value::String(s)) if s.is_empty() => 0,
        other => uint(other, "swap")?.unwrap_or(0),
    };
    let ephemeral = opt_uint(&mut f, "OS-FLV-EXT-DATA:ephemeral")?.unwrap_or(0);
    let rxtx_factor = match f.take("rxtx_factor") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|x| *x > 0.0)
            .ok_or_else(|| Error::BadRequest("Invalid rxtx_factor".into()))?,
        None | Some(Value::Null) => 1.0,
        Some(_) => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute rxtx_factor.".into(),
            ));
        }
    };
    let is_public = opt_flag(&mut f, "os-flavor-access:is_public")?.unwrap_or(true);
    let description = f.opt_string_max("description", 65535)?;
    f.deny_unknown()?;
    Ok(NewFlavor {
        id,
        name,
        ram,
        // At most u32::MAX, checked above.
        vcpus: u32::try_from(vcpus).unwrap_or(u32::MAX),
        disk,
        swap,
        ephemeral,
        rxtx_factor,
        is_public,
        description,
    })
}

/// `PUT /flavors/{id}`: the description, which must be given (`null` clears it).
pub(super) fn flavor_update(body: Value) -> Result<FlavorUpdate> {
    let mut f = Fields::from_body(body, "flavor")?;
    if !f.contains("description") {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute flavor. 'description' is a required property".into(),
        ));
    }
    let description = f.opt_string_max("description", 65535)?;
    f.deny_unknown()?;
    Ok(FlavorUpdate { description })
}

/// `POST /flavors/{id}/os-extra_specs`: `{"extra_specs": {...}}`.
pub(super) fn extra_specs(body: &Value) -> Result<BTreeMap<String, String>> {
    let specs = body.get("extra_specs").cloned().ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute extra_specs. 'extra_specs' is a required property"
                .into(),
        )
    })?;
    string_map(specs, "extra_specs")
}

/// `PUT /flavors/{id}/os-extra_specs/{key}`: `{"<key>": "<value>"}`, the key of the URL.
pub(super) fn extra_spec(body: Value, key: &str) -> Result<BTreeMap<String, String>> {
    let specs = string_map(body, "extra_specs")?;
    if specs.len() != 1 || !specs.contains_key(key) {
        return Err(Error::BadRequest("Request body and URI mismatch".into()));
    }
    Ok(specs)
}

/// `POST /os-keypairs`.
pub(super) fn new_keypair(body: Value, version: Version) -> Result<NewKeypair> {
    let mut f = Fields::from_body(body, "keypair")?;
    let name = f.string("name", 255)?;
    check_name(&name, "Keypair")?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " _-.@".contains(c))
    {
        return Err(Error::BadRequest(
            "Keypair data is invalid: Keypair name contains unsafe characters".into(),
        ));
    }
    let key_type = if version.at_least(2) {
        f.opt_string("type")?.unwrap_or_else(|| "ssh".into())
    } else {
        "ssh".into()
    };
    let key_type = match key_type.as_str() {
        "ssh" => KeyType::Ssh,
        "x509" => KeyType::X509,
        _ => {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute type. Value: {key_type}."
            )));
        }
    };
    // Accepted at every version, honoured from 2.10.
    let user_id = f.opt_string("user_id")?.filter(|_| version.at_least(10));
    let public_key = f.opt_string("public_key")?.map(|p| p.trim().to_owned());
    f.deny_unknown()?;
    if public_key.is_none() && version.at_least(92) {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute keypair. 'public_key' is a required property".into(),
        ));
    }
    Ok(NewKeypair {
        name,
        key_type,
        user_id,
        public_key,
    })
}

/// `POST /os-server-groups`: `policy` and `rules` from 2.64, one of `policies` before.
pub(super) fn new_group(body: Value, version: Version) -> Result<NewServerGroup> {
    let mut f = Fields::from_body(body, "server_group")?;
    let name = f.string("name", 255)?;
    check_name(&name, "Server group")?;
    let (policy, rules) = if version.at_least(64) {
        let policy = f.opt_string("policy")?.ok_or_else(|| {
            Error::BadRequest(
                "Invalid input for field/attribute server_group. 'policy' is a required property"
                    .into(),
            )
        })?;
        let rules: BTreeMap<String, i64> = match f.take("rules") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| match (k.as_str(), v.as_i64()) {
                    ("max_server_per_host", Some(n)) if n >= 1 && policy == "anti-affinity" => {
                        Ok((k, n))
                    }
                    _ => Err(Error::BadRequest(format!(
                        "Invalid input for field/attribute rules: {k}."
                    ))),
                })
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(Error::BadRequest(
                    "Invalid input for field/attribute rules.".into(),
                ));
            }
        };
        (policy, rules)
    } else {
        let policies = f.opt_string_list("policies", 255)?.unwrap_or_default();
        match policies.as_slice() {
            [one] => (one.clone(), BTreeMap::new()),
            _ => {
                return Err(Error::BadRequest(
                    "Invalid input for field/attribute policies: exactly one policy is required."
                        .into(),
                ));
            }
        }
    };
    if !GROUP_POLICIES.contains(&policy.as_str()) {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute policy. Value: {policy}."
        )));
    }
    f.deny_unknown()?;
    Ok(NewServerGroup {
        name,
        policy,
        rules,
    })
}

/// `PUT /os-quota-sets/{project}`: `{"quota_set": {"<resource>": <limit>, ...}}`, limits
/// -1 or more, as numbers or numeric strings; `force` and `id` are ignored.
pub(super) fn quota_update(body: &Value) -> Result<QuotaUpdate> {
    let Some(Value::Object(set)) = body.get("quota_set") else {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute quota_set.".into(),
        ));
    };
    let mut limits = Vec::new();
    for (k, v) in set {
        if k == "force" || k == "id" {
            continue;
        }
        if !QUOTA_RESOURCES.contains(&k.as_str()) {
            return Err(Error::BadRequest(format!(
                "Invalid input for field/attribute quota_set. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let limit = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .filter(|n| *n >= -1)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "Invalid input for field/attribute {k}. Value: {v}."
                ))
            })?;
        limits.push((k.clone(), limit));
    }
    Ok(QuotaUpdate { limits })
}

/// An aggregate's name or zone: 1 to 255 characters without surrounding whitespace.
fn aggregate_text(value: Value, field: &str) -> Result<String> {
    match value {
        Value::String(s) if !s.is_empty() && s.chars().count() <= 255 && s.trim() == s => Ok(s),
        other => Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {other}. It must be 1 to 255 \
             characters without leading or trailing whitespace."
        ))),
    }
}

/// `POST /os-aggregates`: (name, availability zone).
pub(super) fn new_aggregate(body: Value) -> Result<(String, Option<String>)> {
    let mut f = Fields::from_body(body, "aggregate")?;
    let name = match f.take("name") {
        Some(name) => aggregate_text(name, "name")?,
        None => {
            return Err(Error::BadRequest(
                "Invalid input for field/attribute aggregate. 'name' is a required property".into(),
            ));
        }
    };
    let zone = match f.take("availability_zone") {
        None | Some(Value::Null) => None,
        Some(zone) => Some(aggregate_text(zone, "availability_zone")?),
    };
    f.deny_unknown()?;
    Ok((name, zone))
}

/// `PUT /os-aggregates/{id}`: a new name and/or zone, at least one.
pub(super) fn aggregate_update(body: Value) -> Result<(Option<String>, Option<String>)> {
    let mut f = Fields::from_body(body, "aggregate")?;
    let name = f
        .take("name")
        .map(|n| aggregate_text(n, "name"))
        .transpose()?;
    let zone = match f.take("availability_zone") {
        None | Some(Value::Null) => None,
        Some(zone) => Some(aggregate_text(zone, "availability_zone")?),
    };
    f.deny_unknown()?;
    if name.is_none() && zone.is_none() {
        return Err(Error::BadRequest(
            "Invalid input for field/attribute aggregate. Value: {}. {} does not have enough \
             properties"
                .into(),
        ));
    }
    Ok((name, zone))
}

/// `POST /os-aggregates/{id}/action`: exactly one of `add_host`, `remove_host` and
/// `set_metadata`.
pub(super) fn aggregate_action(body: Value) -> Result<AggregateAction> {
    let Value::Object(map) = body else {
        return Err(Error::BadRequest(
            "The request body must be an object.".into(),
        ));
    };
    let mut entries = map.into_iter();
    let (Some((action, inner)), None) = (entries.next(), entries.next()) else {
        return Err(Error::BadRequest(
            "An aggregate action names exactly one of add_host, remove_host and set_metadata."
                .into(),
        ));
    };
    let Value::Object(mut args) = inner else {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute {action}. It must be an object."
        )));
    };
    let host = |args: &mut serde_json::Map<String, Value>| -> Result<String> {
        let host = match args.remove("host") {
            Some(Value::String(h)) if !h.is_empty() && h.len() <= 255 => h,
            _ => {
                return Err(Error::BadRequest(format!(
                    "Invalid input for field/attribute {action}. 'host' must be a host name."
                )));
            }
        };
        if let Some(extra) = args.keys().next() {
            return Err(Error::BadRequest(format!(
                "Additional properties are not allowed ('{extra}' was unexpected)"
            )));
        }
        Ok(host)
    };
    match action.as_str() {
        "add_host" => Ok(AggregateAction::AddHost(host(&mut args)?)),
        "remove_host" => Ok(AggregateAction::RemoveHost(host(&mut args)?)),
        "set_metadata" => {
            let Some(Value::Object(metadata)) = args.remove("metadata") else {
                return Err(Error::BadRequest(
                    "Invalid input for field/attribute set_metadata. 'metadata' must be an object."
                        .into(),
                ));
            };
            if let Some(extra) = args.keys().next() {
                return Err(Error::BadRequest(format!(
                    "Additional properties are not allowed ('{extra}' was unexpected)"
                )));
            }
            let change = metadata
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Value::Null => None,
                        Value::String(v) if v.chars().count() <= 255 => Some(v),
                        other => {
                            return Err(Error::BadRequest(format!(
                                "Invalid input for field/attribute metadata. Value of '{key}' \
                                 is {other}: a string of at most 255 characters or null."
                            )));
                        }
                    };
                    if key.is_empty() || key.chars().count() > 255 {
                        return Err(Error::BadRequest(
                            "Invalid input for field/attribute metadata: keys are 1 to 255 \
                             characters."
                                .into(),
                        ));
                    }
                    if key == crate::model::ZONE_KEY && value.as_deref() == Some("") {
                        return Err(Error::BadRequest(
                            "An availability zone cannot be empty.".into(),
                        ));
                    }
                    Ok((key, value))
                })
                .collect::<Result<_>>()?;
            Ok(AggregateAction::SetMetadata(change))
        }
        other => Err(Error::BadRequest(format!(
            "Additional properties are not allowed ('{other}' was unexpected)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn flavors_take_numbers_in_nova_forms() {
        let new = new_flavor(json!({"flavor": {"name": "f", "ram": "64", "vcpus": 1,
            "disk": 0, "swap": "", "id": "auto", "os-flavor-access:is_public": "false"}}))
        .unwrap();
        assert_eq!((new.ram, new.vcpus, new.swap), (64, 1, 0));
        assert!(new.id.is_none());
        assert!(!new.is_public);
        for bad in [
            json!({"flavor": {"name": "f", "ram": 0, "vcpus": 1, "disk": 0}}),
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1}}),
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 2_147_483_648u64}}),
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "swap": "x"}}),
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "rxtx_factor": 0}}),
            json!({"flavor": {"name": "f", "ram": 1, "vcpus": 1, "disk": 0, "id": ""}}),
        ] {
            assert!(new_flavor(bad.clone()).is_err(), "{bad}");
        }
        assert!(flavor_update(json!({"flavor": {}})).is_err());
        assert!(
            flavor_update(json!({"flavor": {"description": null}}))
                .unwrap()
                .description
                .is_none()
        );
    }

    #[test]
    fn keypairs_by_microversion() {
        let body = json!({"keypair": {"name": "k", "type": "x509", "user_id": "u"}});
        assert!(
            new_keypair(body.clone(), Version(1)).is_err(),
            "type from 2.2"
        );
        let new = new_keypair(body, Version(10)).unwrap();
        assert_eq!(new.key_type, KeyType::X509);
        assert_eq!(new.user_id.as_deref(), Some("u"));
        let old = new_keypair(
            json!({"keypair": {"name": "k", "user_id": "u"}}),
            Version(9),
        );
        assert!(
            old.unwrap().user_id.is_none(),
            "user_id is honoured from 2.10"
        );
        assert!(new_keypair(json!({"keypair": {"name": "k"}}), Version(92)).is_err());
        assert!(new_keypair(json!({"keypair": {"name": "k/1"}}), Version(1)).is_err());
    }

    #[test]
    fn server_groups_by_microversion() {
        let new = new_group(
            json!({"server_group": {"name": "g", "policy": "anti-affinity",
                "rules": {"max_server_per_host": 2}}}),
            Version(64),
        )
        .unwrap();
        assert_eq!(new.rules["max_server_per_host"], 2);
        let old = json!({"server_group": {"name": "g", "policies": ["affinity"]}});
        assert_eq!(
            new_group(old.clone(), Version(63)).unwrap().policy,
            "affinity"
        );
        assert!(new_group(old, Version(64)).is_err());
        assert!(
            new_group(
                json!({"server_group": {"name": "g", "policy": "affinity",
                    "rules": {"max_server_per_host": 2}}}),
                Version(64)
            )
            .is_err()
        );
    }

    #[test]
    fn specs_and_quotas() {
        assert!(extra_spec(json!({"k": "v"}), "k").is_ok());
        assert!(extra_spec(json!({"k": "v"}), "other").is_err());
        assert!(extra_specs(&json!({"specs": {}})).is_err());
        let quota = quota_update(&json!({"quota_set": {"cores": "4", "force": true}})).unwrap();
        assert_eq!(quota.limits, vec![("cores".to_owned(), 4)]);
        assert!(quota_update(&json!({"quota_set": {"bogus": 1}})).is_err());
        assert!(quota_update(&json!({"quota_set": {"cores": -2}})).is_err());
    }
}
