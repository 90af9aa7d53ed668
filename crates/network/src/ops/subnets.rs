//! Subnets: CIDR, gateway and allocation pools checked against each other and against the
//! network's other subnets; a DHCP port is kept for the network while any IPv4 subnet on it
//! has DHCP on.

use std::net::IpAddr;

use ipnet::IpNet;
use onestack_api::Fields;
use onestack_db::Tx;
use serde_json::Value;

use super::{input, quota};
use crate::error::{Error, Result};
use crate::ipam::{self, PoolError};
use crate::model::{AllocationPool, DHCP_OWNER, HostRoute, Network, Port, Subnet};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

const MAX_DNS: usize = 5;
const MAX_ROUTES: usize = 20;

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
                start: input::ip(start, "allocation_pools")?,
                end: input::ip(end, "allocation_pools")?,
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
        let ip = input::ip(&s, "dns_nameservers")?;
        if out.contains(&ip) {
            return Err(Error::invalid_input(format!("Duplicate nameserver '{ip}'")));
        }
        out.push(ip);
    }
    Ok(Some(out))
}

fn routes(fields: &mut Fields, version: u8) -> Result<Option<Vec<HostRoute>>> {
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
            destination: input::cidr(destination, "host_routes")?.trunc(),
            nexthop: input::ip(nexthop, "host_routes")?,
        };
        if route.destination.network().is_ipv4() != (version == 4)
            || route.nexthop.is_ipv4() != (version == 4)
        {
            return Err(Error::invalid_input(format!(
                "host route {destination} via {nexthop} is not IPv{version}"
            )));
        }
        if out.contains(&route) {
            return Err(Error::invalid_input(format!(
                "Duplicate hostroute '{destination}'"
            )));
        }
        out.push(route);
    }
    Ok(Some(out))
}

fn pool_error(e: PoolError, cidr: &IpNet) -> Error {
    match e {
        PoolError::Invalid(p) => Error::Invalid {
            kind: "InvalidAllocationPool",
            message: format!("The allocation pool {p} is not valid."),
        },
        PoolError::OutOfBounds(p) => Error::Invalid {
            kind: "OutOfBoundsAllocationPool",
            message: format!("The allocation pool {p} spans beyond the subnet cidr {cidr}."),
        },
        PoolError::Overlapping(p) => Error::Invalid {
            kind: "OverlappingAllocationPools",
            message: format!("Found overlapping allocation pools: {p} for subnet {cidr}."),
        },
        PoolError::GatewayInside(p) => Error::conflict(
            "GatewayConflictWithAllocationPools",
            format!("Gateway ip conflicts with allocation pool {p}"),
        ),
    }
}

fn check_gateway(cidr: &IpNet, gateway: Option<IpAddr>) -> Result<()> {
    let Some(gw) = gateway else { return Ok(()) };
    let (first, last) = ipam::usable_range(cidr);
    let value = ipam::to_u128(gw);
    if !cidr.contains(&gw) || value < first || value > last {
        return Err(Error::invalid_input(format!(
            "Gateway is not valid on subnet: {gw} is not a host address of {cidr}"
        )));
    }
    Ok(())
}

impl Networks {
    pub async fn get_subnet(&self, caller: &Caller, id: &str) -> Result<Subnet> {
        let subnet = store::get::<Subnet, _>(&self.pool, Table::Subnets, id)
            .await?
            .ok_or_else(|| Error::subnet_not_found(id))?;
        if caller.owns(&subnet.project_id) {
            return Ok(subnet);
        }
        match self.get_network(caller, &subnet.network_id).await {
            Ok(_) => Ok(subnet),
            Err(_) => Err(Error::subnet_not_found(id)),
        }
    }

    pub async fn list_subnets(&self, caller: &Caller) -> Result<Vec<Subnet>> {
        let visible: std::collections::HashSet<String> = self
            .list_networks(caller)
            .await?
            .into_iter()
            .map(|n| n.id)
            .collect();
        let all: Vec<Subnet> = store::list(&self.pool, Table::Subnets, None).await?;
        Ok(all
            .into_iter()
            .filter(|s| caller.owns(&s.project_id) || visible.contains(&s.network_id))
            .collect())
    }

    pub async fn create_subnet(&self, caller: &Caller, mut fields: Fields) -> Result<Subnet> {
        caller.require_writer("create_subnet")?;
        let requested_project = input::project(&mut fields)?;
        let network_id = fields.opt_string("network_id")?.ok_or_else(|| {
            Error::BadRequest(
                "Failed to parse request. Required attribute 'network_id' not specified".into(),
            )
        })?;
        let network = self.get_network(caller, &network_id).await?;
        if !caller.owns(&network.project_id) {
            return Err(Error::Policy("rule:create_subnet".into()));
        }
        let project_id = caller.target_project(
            requested_project
                .or(Some(network.project_id.clone()))
                .filter(|_| caller.admin),
            "create_subnet",
        )?;
        if fields.contains("subnetpool_id")
            && !matches!(fields.take("subnetpool_id"), Some(Value::Null))
        {
            return Err(Error::invalid_input(
                "subnet pools are not supported; give a cidr",
            ));
        }
        let version = input::opt_u32(&mut fields, "ip_version")?.ok_or_else(|| {
            Error::BadRequest(
                "Failed to parse request. Required attribute 'ip_version' not specified".into(),
            )
        })?;
        let version = match version {
            4 => 4u8,
            6 => 6u8,
            v => return Err(Error::invalid_input(format!("'{v}' is not in [4, 6]"))),
        };
        let cidr_text = fields.opt_string("cidr")?.ok_or_else(|| {
            Error::BadRequest(
                "Failed to parse request. Required attribute 'cidr' not specified".into(),
            )
        })?;
        let cidr: IpNet = cidr_text
            .trim()
            .parse()
            .map_err(|_| Error::invalid_input(format!("'{cidr_text}' is not a valid IP subnet")))?;
        if cidr.trunc() != cidr {
            return Err(Error::invalid_input(format!(
                "'{cidr_text}' isn't a recommended CIDR, it should be specified as '{}'",
                cidr.trunc()
            )));
        }
        if cidr.network().is_ipv4() != (version == 4) {
            return Err(Error::invalid_input(format!(
                "Cidr {cidr} does not match IP version {version}"
            )));
        }
        if (version == 4 && cidr.prefix_len() > 30) || (version == 6 && cidr.prefix_len() > 126) {
            return Err(Error::invalid_input(format!(
                "Cidr {cidr} is too small for a subnet"
            )));
        }
        let name = input::text(&mut fields, "name")?.unwrap_or_default();
        let description = input::text(&mut fields, "description")?.unwrap_or_default();
        let gateway_ip = match fields.take("gateway_ip") {
            None => ipam::from_first(&cidr),
            Some(Value::Null) => None,
            Some(Value::String(s)) => Some(input::ip(&s, "gateway_ip")?),
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "'{other}' is not a valid IP address for gateway_ip"
                )));
            }
        };
        check_gateway(&cidr, gateway_ip)?;
        let allocation_pools = match fields.take("allocation_pools") {
            None | Some(Value::Null) => ipam::default_pools(&cidr, gateway_ip),
            Some(v) => pools(v)?,
        };
        ipam::validate_pools(&cidr, gateway_ip, &allocation_pools)
            .map_err(|e| pool_error(e, &cidr))?;
        let dns_nameservers = dns(&mut fields)?.unwrap_or_default();
        if dns_nameservers
            .iter()
            .any(|d| d.is_ipv4() != (version == 4))
        {
            return Err(Error::invalid_input(
                "dns_nameservers must match the subnet's IP version",
            ));
        }
        let host_routes = routes(&mut fields, version)?.unwrap_or_default();
        let enable_dhcp = fields.opt_bool("enable_dhcp")?.unwrap_or(true);
        let ra = fields.opt_string("ipv6_ra_mode")?;
        let address_mode = fields.opt_string("ipv6_address_mode")?;
        for mode in ra.iter().chain(address_mode.iter()) {
            if version == 4 {
                return Err(Error::invalid_input(
                    "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4",
                ));
            }
            if !["slaac", "dhcpv6-stateful", "dhcpv6-stateless"].contains(&mode.as_str()) {
                return Err(Error::invalid_input(format!(
                    "'{mode}' is not in ['dhcpv6-stateful', 'dhcpv6-stateless', 'slaac']"
                )));
            }
        }
        let tags = input::tags(&mut fields)?;
        fields.ignore("service_types");
        fields.ignore("use_default_subnetpool");
        fields.ignore("prefixlen");
        fields.ignore("segment_id");
        input::done(fields)?;

        let mut tx = store::begin_write(&self.pool).await?;
        quota::check(self, &mut tx, &project_id, "subnet", Table::Subnets).await?;
        let siblings: Vec<Subnet> =
            store::list(&mut *tx, Table::Subnets, Some(("network_id", &network_id))).await?;
        if let Some(other) = siblings.iter().find(|s| ipam::overlaps(&s.cidr, &cidr)) {
            return Err(Error::invalid_input(format!(
                "Requested subnet with cidr: {cidr} for network: {network_id} overlaps with another subnet ({})",
                other.id
            )));
        }
        let mut std = new_standard();
        std.tags = tags.unwrap_or_default();
        let subnet = Subnet {
            id: new_id(),
            project_id,
            network_id,
            name,
            description,
            ip_version: version,
            cidr,
            gateway_ip,
            allocation_pools,
            dns_nameservers,
            host_routes,
            enable_dhcp,
            ipv6_ra_mode: ra,
            ipv6_address_mode: address_mode,
            std,
        };
        store::insert_subnet(&mut tx, &subnet).await?;
        self.sync_dhcp_port(&mut tx, &network).await?;
        tx.commit().await?;
        self.changed();
        Ok(subnet)
    }

    pub async fn update_subnet(
        &self,
        caller: &Caller,
        id: &str,
        mut fields: Fields,
    ) -> Result<Subnet> {
        let mut subnet = self.get_subnet(caller, id).await?;
        if !caller.owns(&subnet.project_id) {
            return Err(Error::Policy("rule:update_subnet".into()));
        }
        caller.require_writer("update_subnet")?;
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
        if let Some(n) = input::text(&mut fields, "name")? {
            subnet.name = n;
        }
        if let Some(d) = input::text(&mut fields, "description")? {
            subnet.description = d;
        }
        match fields.take("gateway_ip") {
            None => {}
            Some(Value::Null) => subnet.gateway_ip = None,
            Some(Value::String(s)) => subnet.gateway_ip = Some(input::ip(&s, "gateway_ip")?),
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "'{other}' is not a valid IP address for gateway_ip"
                )));
            }
        }
        check_gateway(&subnet.cidr, subnet.gateway_ip)?;
        if let Some(v) = fields.take("allocation_pools") {
            subnet.allocation_pools = pools(v)?;
        }
        ipam::validate_pools(&subnet.cidr, subnet.gateway_ip, &subnet.allocation_pools)
            .map_err(|e| pool_error(e, &subnet.cidr))?;
        if let Some(d) = dns(&mut fields)? {
            subnet.dns_nameservers = d;
        }
        if let Some(r) = routes(&mut fields, subnet.ip_version)? {
            subnet.host_routes = r;
        }
        if let Some(v) = fields.opt_bool("enable_dhcp")? {
            subnet.enable_dhcp = v;
        }
        fields.ignore("service_types");
        input::done(fields)?;
        let previous = touch(&mut subnet.std);
        let network = self.get_network(caller, &subnet.network_id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        if let Some(gateway) = subnet.gateway_ip
            && store::allocated(&mut tx, id)
                .await?
                .contains(&gateway.to_string())
        {
            return Err(Error::conflict(
                "GatewayIpInUse",
                format!("Current gateway ip {gateway} already in use by port. Unable to update."),
            ));
        }
        store::update_subnet(&mut tx, &subnet, previous).await?;
        self.sync_dhcp_port(&mut tx, &network).await?;
        tx.commit().await?;
        self.changed();
        Ok(subnet)
    }

    pub async fn delete_subnet(&self, caller: &Caller, id: &str) -> Result<()> {
        let subnet = self.get_subnet(caller, id).await?;
        if !caller.owns(&subnet.project_id) {
            return Err(Error::Policy("rule:delete_subnet".into()));
        }
        caller.require_writer("delete_subnet")?;
        let network = self.get_network(caller, &subnet.network_id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        for port_id in store::ports_using_subnet(&mut tx, id).await? {
            let port: Option<Port> = store::get(&mut *tx, Table::Ports, &port_id).await?;
            if port.is_some_and(|p| p.device_owner != DHCP_OWNER) {
                return Err(Error::conflict(
                    "SubnetInUse",
                    format!(
                        "Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."
                    ),
                ));
            }
        }
        // The DHCP port lets go of its address first, then the subnet can go.
        let mut remaining = subnet.clone();
        remaining.enable_dhcp = false;
        self.sync_dhcp_port_with(&mut tx, &network, Some(&remaining))
            .await?;
        store::delete_requested(&mut tx, Table::Subnets, id, Error::subnet_not_found).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    pub(crate) async fn sync_dhcp_port(&self, tx: &mut Tx, network: &Network) -> Result<()> {
        self.sync_dhcp_port_with(tx, network, None).await
    }

    /// Makes the network's DHCP port hold one address on each IPv4 subnet with DHCP on, and
    /// removes it when there is none. `replacing` stands in for a stored subnet being changed.
    async fn sync_dhcp_port_with(
        &self,
        tx: &mut Tx,
        network: &Network,
        replacing: Option<&Subnet>,
    ) -> Result<()> {
        let mut subnets: Vec<Subnet> =
            store::list(&mut **tx, Table::Subnets, Some(("network_id", &network.id))).await?;
        if let Some(r) = replacing {
            for s in &mut subnets {
                if s.id == r.id {
                    *s = r.clone();
                }
            }
        }
        let wanted: Vec<&Subnet> = subnets
            .iter()
            .filter(|s| s.enable_dhcp && s.ip_version == 4)
            .collect();
        let ports: Vec<Port> =
            store::list(&mut **tx, Table::Ports, Some(("network_id", &network.id))).await?;
        let device_id = format!("dhcp-{}", network.id);
        let existing = ports
            .into_iter()
            .find(|p| p.device_owner == DHCP_OWNER && p.device_id == device_id);
        match (existing, wanted.is_empty()) {
            (None, true) => Ok(()),
            (Some(port), true) => store::delete(tx, Table::Ports, &port.id).await.map(drop),
            (existing, false) => {
                let is_new = existing.is_none();
                let mut port = existing.unwrap_or_else(|| Port {
                    id: new_id(),
                    project_id: network.project_id.clone(),
                    network_id: network.id.clone(),
                    name: String::new(),
                    description: String::new(),
                    admin_state_up: true,
                    mac_address: input::random_mac(),
                    device_id: device_id.clone(),
                    device_owner: DHCP_OWNER.into(),
                    fixed_ips: Vec::new(),
                    security_groups: Vec::new(),
                    allowed_address_pairs: Vec::new(),
                    port_security_enabled: false,
                    host_id: self.host.clone(),
                    profile: Default::default(),
                    vnic_type: "normal".into(),
                    status: "DOWN".into(),
                    std: new_standard(),
                });
                let before = port.fixed_ips.clone();
                port.fixed_ips
                    .retain(|ip| wanted.iter().any(|s| s.id == ip.subnet_id));
                for subnet in &wanted {
                    // A subnet without a pool (all addresses assigned by hand) gets no server.
                    if subnet.allocation_pools.is_empty() {
                        continue;
                    }
                    if !port.fixed_ips.iter().any(|ip| ip.subnet_id == subnet.id) {
                        let ip = super::ports::next_address(tx, subnet, &[]).await?;
                        port.fixed_ips.push(crate::model::FixedIp {
                            subnet_id: subnet.id.clone(),
                            ip_address: ip,
                        });
                    }
                }
                if is_new {
                    store::insert_port(tx, &port).await
                } else if before != port.fixed_ips {
                    let previous = touch(&mut port.std);
                    store::update_port(tx, &port, previous).await
                } else {
                    Ok(())
                }
            }
        }
    }
}
