//! Reading security group and rule bodies into the typed input of their operations.

use onestack_api::Fields;
use serde_json::Value;

use super::input;
use crate::error::{Error, Result};
use crate::ops::group_input::{GroupUpdate, NewGroup, NewRule};

fn refuse_stateless(fields: &mut Fields) -> Result<()> {
    if fields.opt_bool("stateful")? == Some(false) {
        return Err(Error::invalid_input(
            "stateless security groups are not supported",
        ));
    }
    Ok(())
}

pub(super) fn new_group(mut fields: Fields) -> Result<NewGroup> {
    let project_id = input::project(&mut fields)?;
    let name = input::text(&mut fields, "name")?.unwrap_or_default();
    let description = input::text(&mut fields, "description")?.unwrap_or_default();
    refuse_stateless(&mut fields)?;
    let tags = input::tags(&mut fields)?;
    input::done(fields)?;
    Ok(NewGroup {
        project_id,
        name,
        description,
        tags,
    })
}

pub(super) fn group_update(mut fields: Fields) -> Result<GroupUpdate> {
    let change = GroupUpdate {
        name: input::text(&mut fields, "name")?,
        description: input::text(&mut fields, "description")?,
    };
    refuse_stateless(&mut fields)?;
    input::done(fields)?;
    Ok(change)
}

pub(super) fn new_rule(mut fields: Fields) -> Result<NewRule> {
    let project_id = input::project(&mut fields)?;
    let security_group_id = fields.opt_string("security_group_id")?.ok_or_else(|| {
        Error::BadRequest(
            "Failed to parse request. Required attribute 'security_group_id' not specified".into(),
        )
    })?;
    let direction = fields.opt_string("direction")?;
    let ethertype = fields.opt_string("ethertype")?;
    let protocol = match fields.take("protocol") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() || s == "any" => None,
        Some(Value::String(s)) => Some(s.to_ascii_lowercase()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(Error::invalid_input(format!(
                "'{other}' is not a valid protocol"
            )));
        }
    };
    let port_range_min = input::opt_u32(&mut fields, "port_range_min")?;
    let port_range_max = input::opt_u32(&mut fields, "port_range_max")?;
    let remote_ip_prefix = fields.opt_string("remote_ip_prefix")?;
    let remote_group_id = fields.opt_string("remote_group_id")?;
    fields.ignore("remote_address_group_id");
    let description = input::text(&mut fields, "description")?.unwrap_or_default();
    input::done(fields)?;
    Ok(NewRule {
        project_id,
        security_group_id,
        direction,
        ethertype,
        protocol,
        port_range_min,
        port_range_max,
        remote_ip_prefix,
        remote_group_id,
        description,
    })
}

/// Only a rule's description changes.
pub(super) fn rule_description(mut fields: Fields) -> Result<Option<String>> {
    let description = input::text(&mut fields, "description")?;
    input::done(fields)?;
    Ok(description)
}
