//! Reading a port request's body into the typed input of the port operations.

use onestack_api::Fields;
use serde_json::Value;

use super::input;
use crate::error::{Error, Result};
use crate::ops::port_input::{NewPort, PortUpdate};

/// Attributes Neutron accepts and onestack has no use for.
const IGNORED: [&str; 2] = ["dns_name", "extra_dhcp_opts"];

pub(super) fn new_port(mut fields: Fields) -> Result<NewPort> {
    let project_id = input::project(&mut fields)?;
    let network_id = fields.opt_string("network_id")?.ok_or_else(|| {
        Error::BadRequest(
            "Failed to parse request. Required attribute 'network_id' not specified".into(),
        )
    })?;
    let mut new = NewPort::on(&network_id);
    new.project_id = project_id;
    new.name = input::text(&mut fields, "name")?.unwrap_or_default();
    new.description = input::text(&mut fields, "description")?.unwrap_or_default();
    new.admin_state_up = fields.opt_bool("admin_state_up")?.unwrap_or(true);
    new.device_id = input::text(&mut fields, "device_id")?.unwrap_or_default();
    new.device_owner = input::text(&mut fields, "device_owner")?.unwrap_or_default();
    new.mac_address = fields
        .opt_string("mac_address")?
        .map(|m| input::mac(&m))
        .transpose()?;
    new.fixed_ips = non_null(&mut fields, "fixed_ips")
        .map(input::ip_requests)
        .transpose()?;
    new.port_security_enabled = fields.opt_bool("port_security_enabled")?;
    new.security_groups = non_null(&mut fields, "security_groups")
        .map(input::group_ids)
        .transpose()?;
    new.allowed_address_pairs = non_null(&mut fields, "allowed_address_pairs")
        .map(input::pair_requests)
        .transpose()?;
    new.host_id = fields.opt_string("binding:host_id")?;
    new.profile = fields.opt_object("binding:profile")?;
    vnic_type(&mut fields)?;
    new.tags = input::tags(&mut fields)?;
    finish(fields)?;
    Ok(new)
}

pub(super) fn port_update(mut fields: Fields) -> Result<PortUpdate> {
    input::refuse_read_only(&fields, &["network_id", "project_id", "tenant_id"])?;
    let device_id = input::text(&mut fields, "device_id")?;
    let device_owner = fields
        .contains("device_owner")
        .then(|| input::text(&mut fields, "device_owner"))
        .transpose()?
        .flatten();
    let change = PortUpdate {
        device_id,
        device_owner,
        name: input::text(&mut fields, "name")?,
        description: input::text(&mut fields, "description")?,
        admin_state_up: fields.opt_bool("admin_state_up")?,
        mac_address: fields
            .opt_string("mac_address")?
            .map(|m| input::mac(&m))
            .transpose()?,
        // `null` empties a list.
        fixed_ips: fields
            .take("fixed_ips")
            .map(|v| or_empty(v, input::ip_requests))
            .transpose()?,
        port_security_enabled: fields.opt_bool("port_security_enabled")?,
        security_groups: fields
            .take("security_groups")
            .map(|v| or_empty(v, input::group_ids))
            .transpose()?,
        allowed_address_pairs: fields
            .take("allowed_address_pairs")
            .map(|v| or_empty(v, input::pair_requests))
            .transpose()?,
        host_id: fields.opt_string("binding:host_id")?,
        profile: fields.opt_object("binding:profile")?,
    };
    vnic_type(&mut fields)?;
    finish(fields)?;
    Ok(change)
}

fn non_null(fields: &mut Fields, key: &str) -> Option<Value> {
    fields.take(key).filter(|v| !v.is_null())
}

fn or_empty<T>(value: Value, parse: impl Fn(Value) -> Result<Vec<T>>) -> Result<Vec<T>> {
    if value.is_null() {
        Ok(Vec::new())
    } else {
        parse(value)
    }
}

/// Only the plain `normal` binding exists here.
fn vnic_type(fields: &mut Fields) -> Result<()> {
    match fields.opt_string("binding:vnic_type")? {
        Some(v) if v != "normal" => Err(Error::invalid_input(format!(
            "binding:vnic_type '{v}' is not supported; only 'normal' is"
        ))),
        _ => Ok(()),
    }
}

fn finish(mut fields: Fields) -> Result<()> {
    for key in IGNORED {
        fields.ignore(key);
    }
    input::done(fields)
}
