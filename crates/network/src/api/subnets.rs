//! Reading subnet bodies into the typed input of the subnet operations.

use std::net::IpAddr;

use ipnet::IpNet;
use onestack_api::Fields;
use serde_json::Value;

use super::input;
use crate::error::{Error, Result};
use crate::model::{AllocationPool, HostRoute};
use crate::ops::input::{cidr, ip};
use crate::ops::subnet_input::{NewSubnet, SubnetUpdate};

const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;

/// Accepted and not used on create: onestack has no service subnets, subnet pools or
/// segments.
const IGNORED: [&str; 4] = [
    "service_types",
    "use_default_subnetpool",
    "prefixlen",
    "segment_id",
];

fn required(key: &str) -> Error {
    Error::BadRequest(format!(
        "Failed to parse request. Required attribute '{key}' not specified"
    ))
}

fn pools(value: Value) -> Result<Vec<AllocationPool>> {
    let Value::Array(items) = value else {
        return Err(Error::invalid_input("allocation_pools must be a list"));
    };
    items
        .into_iter()
        .map(|item| {
            let start = item["start"]
                .as_str()
                .ok_or_else(|| Error::invalid_input("allocation pool needs 'start'"))?;
            let end = item["end"]
                .as_str()
                .ok_or_else(|| Error::invalid_input("allocation pool needs 'end'"))?;
            Ok(AllocationPool {
                start: ip(start, "allocation_pools")?,
                end: ip(end, "allocation_pools")?,
            })
        })
        .collect()
}

fn dns(fields: &mut Fields) -> Result<Option<Vec<IpAddr>>> {
    let Some(list) = fields.opt_string_list("dns_nameservers", 64)? else {
        return Ok(None);
    };
    if list.len() > MAX_DNS {
        return Err(Error::invalid_input(format!(
            "Exceeded maximum amount of DNS nameservers ({MAX_DNS})"
        )));
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for s in list {
        let address = ip(&s, "dns_nameservers")?;
        if out.contains(&address) {
            return Err(Error::invalid_input(format!(
                "Duplicate nameserver '{address}'"
            )));
        }
        out.push(address);
    }
    Ok(Some(out))
}

fn routes(fields: &mut Fields) -> Result<Option<Vec<HostRoute>>> {
    let Some(items) = fields.opt_array("host_routes")? else {
        return Ok(None);
    };
    if items.len() > MAX_ROUTES {
        return Err(Error::invalid_input(format!(
            "Exceeded maximum amount of host routes ({MAX_ROUTES})"
        )));
    }
    let mut out: Vec<HostRoute> = Vec::new();
    for item in items {
        let destination = item["destination"]
            .as_str()
            .ok_or_else(|| Error::invalid_input("host route needs 'destination'"))?;
        let nexthop = item["nexthop"]
            .as_str()
            .ok_or_else(|| Error::invalid_input("host route needs 'nexthop'"))?;
        let route = HostRoute {
            destination: cidr(destination, "host_routes")?.trunc(),
            nexthop: ip(nexthop, "host_routes")?,
        };
        if out.contains(&route) {
            return Err(Error::invalid_input(format!(
                "Duplicate hostroute '{destination}'"
            )));
        }
        out.push(route);
    }
    Ok(Some(out))
}

/// `gateway_ip`: absent, `null` (no gateway) or an address.
fn gateway(fields: &mut Fields) -> Result<Option<Option<IpAddr>>> {
    match fields.take("gateway_ip") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(ip(&s, "gateway_ip")?))),
        Some(other) => Err(Error::invalid_input(format!(
            "'{other}' is not a valid IP address for gateway_ip"
        ))),
    }
}

fn version(fields: &mut Fields) -> Result<u8> {
    match input::opt_u32(fields, "ip_version")? {
        Some(4) => Ok(4),
        Some(6) => Ok(6),
        Some(v) => Err(Error::invalid_input(format!("'{v}' is not in [4, 6]"))),
        None => Err(required("ip_version")),
    }
}

fn subnet_cidr(fields: &mut Fields) -> Result<IpNet> {
    let text = fields.opt_string("cidr")?.ok_or_else(|| required("cidr"))?;
    let cidr: IpNet = text
        .trim()
        .parse()
        .map_err(|_| Error::invalid_input(format!("'{text}' is not a valid IP subnet")))?;
    if cidr.trunc() != cidr {
        return Err(Error::invalid_input(format!(
            "'{text}' isn't a recommended CIDR, it should be specified as '{}'",
            cidr.trunc()
        )));
    }
    Ok(cidr)
}

pub(super) fn new_subnet(mut fields: Fields) -> Result<NewSubnet> {
    let project_id = input::project(&mut fields)?;
    let network_id = fields
        .opt_string("network_id")?
        .ok_or_else(|| required("network_id"))?;
    if fields.contains("subnetpool_id")
        && !matches!(fields.take("subnetpool_id"), Some(Value::Null))
    {
        return Err(Error::invalid_input(
            "subnet pools are not supported; give a cidr",
        ));
    }
    let new = NewSubnet {
        project_id,
        network_id,
        ip_version: version(&mut fields)?,
        cidr: subnet_cidr(&mut fields)?,
        name: input::text(&mut fields, "name")?.unwrap_or_default(),
        description: input::text(&mut fields, "description")?.unwrap_or_default(),
        gateway_ip: gateway(&mut fields)?,
        allocation_pools: match fields.take("allocation_pools") {
            None | Some(Value::Null) => None,
            Some(v) => Some(pools(v)?),
        },
        dns_nameservers: dns(&mut fields)?,
        host_routes: routes(&mut fields)?,
        enable_dhcp: fields.opt_bool("enable_dhcp")?.unwrap_or(true),
        ipv6_ra_mode: fields.opt_string("ipv6_ra_mode")?,
        ipv6_address_mode: fields.opt_string("ipv6_address_mode")?,
        tags: input::tags(&mut fields)?,
    };
    IGNORED.iter().for_each(|key| fields.ignore(key));
    input::done(fields)?;
    Ok(new)
}

pub(super) fn subnet_update(mut fields: Fields) -> Result<SubnetUpdate> {
    input::refuse_read_only(
        &fields,
        &[
            "cidr",
            "ip_version",
            "network_id",
            "subnetpool_id",
            "project_id",
            "tenant_id",
            "ipv6_ra_mode",
            "ipv6_address_mode",
        ],
    )?;
    let change = SubnetUpdate {
        name: input::text(&mut fields, "name")?,
        description: input::text(&mut fields, "description")?,
        gateway_ip: gateway(&mut fields)?,
        allocation_pools: fields.take("allocation_pools").map(pools).transpose()?,
        dns_nameservers: dns(&mut fields)?,
        host_routes: routes(&mut fields)?,
        enable_dhcp: fields.opt_bool("enable_dhcp")?,
    };
    fields.ignore("service_types");
    input::done(fields)?;
    Ok(change)
}
