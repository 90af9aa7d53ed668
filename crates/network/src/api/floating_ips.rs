//! Reading floating IP bodies into the typed input of their operations.

use onestack_api::Fields;
use serde_json::Value;

use super::input;
use crate::error::{Error, Result};
use crate::ops::input::ip;
use crate::ops::l3_input::{FloatingIpUpdate, NewFloatingIp};

/// Accepted and not used: onestack has no DNS integration and no QoS.
const IGNORED: [&str; 3] = ["dns_name", "dns_domain", "qos_policy_id"];

fn address(fields: &mut Fields, key: &str) -> Result<Option<std::net::IpAddr>> {
    fields.opt_string(key)?.map(|a| ip(&a, key)).transpose()
}

pub(super) fn new_floating_ip(mut fields: Fields) -> Result<NewFloatingIp> {
    let project_id = input::project(&mut fields)?;
    let floating_network_id = fields.opt_string("floating_network_id")?.ok_or_else(|| {
        Error::BadRequest(
            "Failed to parse request. Required attribute 'floating_network_id' not specified"
                .into(),
        )
    })?;
    let new = NewFloatingIp {
        project_id,
        floating_network_id,
        floating_ip_address: address(&mut fields, "floating_ip_address")?,
        subnet_id: fields.opt_string("subnet_id")?,
        port_id: fields.opt_string("port_id")?,
        fixed_ip_address: address(&mut fields, "fixed_ip_address")?,
        description: input::text(&mut fields, "description")?.unwrap_or_default(),
        tags: input::tags(&mut fields)?,
    };
    IGNORED.iter().for_each(|key| fields.ignore(key));
    input::done(fields)?;
    Ok(new)
}

pub(super) fn floating_ip_update(mut fields: Fields) -> Result<FloatingIpUpdate> {
    input::refuse_read_only(
        &fields,
        &[
            "floating_network_id",
            "floating_ip_address",
            "project_id",
            "tenant_id",
            "router_id",
            "status",
        ],
    )?;
    let description = input::text(&mut fields, "description")?;
    let port_id = match fields.take("port_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(port)) => Some(Some(port)),
        Some(_) => return Err(Error::invalid_input("port_id must be a string or null")),
    };
    let change = FloatingIpUpdate {
        description,
        port_id,
        fixed_ip_address: address(&mut fields, "fixed_ip_address")?,
    };
    fields.ignore("qos_policy_id");
    input::done(fields)?;
    Ok(change)
}
