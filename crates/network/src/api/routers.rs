//! Reading router and router interface bodies into the typed input of their operations.

use onestack_api::Fields;
use serde_json::Value;

use super::input;
use crate::error::{Error, Result};
use crate::model::HostRoute;
use crate::ops::input::{cidr, ip};
use crate::ops::l3_input::{
    GatewayRequest, InterfaceRequest, NewRouter, RouterModes, RouterUpdate,
};

/// Accepted and not used: one availability zone, one router flavor.
const IGNORED: [&str; 2] = ["availability_zone_hints", "flavor_id"];

fn modes(fields: &mut Fields) -> Result<RouterModes> {
    Ok(RouterModes {
        distributed: fields.opt_bool("distributed")?,
        ha: fields.opt_bool("ha")?,
    })
}

/// `external_gateway_info`: an object naming a network, or `null`/`{}` for none.
fn gateway(info: Value) -> Result<Option<GatewayRequest>> {
    let mut map = match info {
        Value::Null => return Ok(None),
        Value::Object(map) if map.is_empty() => return Ok(None),
        Value::Object(map) => map,
        _ => {
            return Err(Error::invalid_input(
                "external_gateway_info must be an object",
            ));
        }
    };
    let network_id = match map.remove("network_id") {
        Some(Value::String(id)) => id,
        _ => {
            return Err(Error::invalid_input(
                "external_gateway_info needs a 'network_id'",
            ));
        }
    };
    let enable_snat = match map.remove("enable_snat") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(Error::invalid_input("enable_snat must be a boolean")),
    };
    let fixed_ips = map
        .remove("external_fixed_ips")
        .filter(|v| !v.is_null())
        .map(input::ip_requests)
        .transpose()?;
    if let Some(key) = map.keys().next() {
        return Err(Error::invalid_input(format!(
            "unknown key '{key}' in external_gateway_info"
        )));
    }
    Ok(Some(GatewayRequest {
        network_id,
        enable_snat,
        fixed_ips,
    }))
}

/// `routes` (`extraroute`): a list of destination/nexthop pairs; `null` is none.
fn routes(value: Value) -> Result<Vec<HostRoute>> {
    let items = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        _ => return Err(Error::invalid_input("routes must be a list")),
    };
    let mut out: Vec<HostRoute> = Vec::new();
    for item in items {
        let (Some(destination), Some(nexthop)) = (
            item.get("destination").and_then(Value::as_str),
            item.get("nexthop").and_then(Value::as_str),
        ) else {
            return Err(Error::invalid_input(
                "each route needs a 'destination' and a 'nexthop'",
            ));
        };
        let route = HostRoute {
            destination: cidr(destination, "destination")?.trunc(),
            nexthop: ip(nexthop, "nexthop")?,
        };
        if !out.contains(&route) {
            out.push(route);
        }
    }
    Ok(out)
}

pub(super) fn new_router(mut fields: Fields) -> Result<NewRouter> {
    let new = NewRouter {
        project_id: input::project(&mut fields)?,
        name: input::text(&mut fields, "name")?.unwrap_or_default(),
        description: input::text(&mut fields, "description")?.unwrap_or_default(),
        admin_state_up: fields.opt_bool("admin_state_up")?.unwrap_or(true),
        gateway: fields
            .take("external_gateway_info")
            .map(gateway)
            .transpose()?
            .flatten(),
        tags: input::tags(&mut fields)?,
        modes: modes(&mut fields)?,
    };
    IGNORED.iter().for_each(|key| fields.ignore(key));
    input::done(fields)?;
    Ok(new)
}

pub(super) fn router_update(mut fields: Fields) -> Result<RouterUpdate> {
    input::refuse_read_only(&fields, &["project_id", "tenant_id", "id", "status"])?;
    let change = RouterUpdate {
        name: input::text(&mut fields, "name")?,
        description: input::text(&mut fields, "description")?,
        admin_state_up: fields.opt_bool("admin_state_up")?,
        gateway: fields
            .take("external_gateway_info")
            .map(gateway)
            .transpose()?,
        routes: fields.take("routes").map(routes).transpose()?,
        modes: modes(&mut fields)?,
    };
    input::done(fields)?;
    Ok(change)
}

/// The body of an interface action is the bare object: `{"subnet_id": ...}`.
pub(super) fn interface(body: Value) -> Result<InterfaceRequest> {
    let mut fields = Fields::from_object(body, "interface")?;
    let request = InterfaceRequest {
        subnet_id: fields.opt_string("subnet_id")?,
        port_id: fields.opt_string("port_id")?,
    };
    input::done(fields)?;
    Ok(request)
}
