//! Subnets: CIDR, gateway and allocation pools checked against each other and against the
//! network's other subnets; a DHCP port is kept for the network while any IPv4 subnet on it
//! has DHCP on.

use std::net::IpAddr;

use ipnet::IpNet;
use onestack_db::Tx;

use super::input;
use super::quota;
use super::subnet_input::{NewSubnet, SubnetUpdate};
use crate::error::{Error, Result};
use crate::ipam::{self, PoolError};
use crate::model::{DHCP_OWNER, HostRoute, Network, Port, Subnet};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

/// Every host route in the subnet's IP version.
fn check_route_versions(routes: &[HostRoute], version: u8) -> Result<()> {
    let wrong = |route: &&HostRoute| {
        route.destination.network().is_ipv4() != (version == 4)
            || route.nexthop.is_ipv4() != (version == 4)
    };
    match routes.iter().find(wrong) {
        Some(route) => Err(Error::invalid_input(format!(
            "host route {} via {} is not IPv{version}",
            route.destination, route.nexthop
        ))),
        None => Ok(()),
    }
}

/// The CIDR in the subnet's IP version and large enough for hosts.
fn check_cidr(cidr: &IpNet, version: u8) -> Result<()> {
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
    Ok(())
}

/// IPv6 address modes only on IPv6 subnets, and only the modes Neutron knows.
fn check_ipv6_modes(new: &NewSubnet) -> Result<()> {
    for mode in new.ipv6_ra_mode.iter().chain(new.ipv6_address_mode.iter()) {
        if new.ip_version == 4 {
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
    Ok(())
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

    pub async fn create_subnet(&self, caller: &Caller, new: NewSubnet) -> Result<Subnet> {
        caller.require_writer("create_subnet")?;
        let network = self.get_network(caller, &new.network_id).await?;
        if !caller.owns(&network.project_id) {
            return Err(Error::Policy("rule:create_subnet".into()));
        }
        let project_id = caller.target_project(
            new.project_id
                .clone()
                .or(Some(network.project_id.clone()))
                .filter(|_| caller.admin),
            "create_subnet",
        )?;
        let (cidr, version) = (new.cidr, new.ip_version);
        check_cidr(&cidr, version)?;
        let gateway_ip = new.gateway_ip.unwrap_or_else(|| ipam::from_first(&cidr));
        check_gateway(&cidr, gateway_ip)?;
        let allocation_pools = new
            .allocation_pools
            .clone()
            .unwrap_or_else(|| ipam::default_pools(&cidr, gateway_ip));
        ipam::validate_pools(&cidr, gateway_ip, &allocation_pools)
            .map_err(|e| pool_error(e, &cidr))?;
        let dns_nameservers = new.dns_nameservers.clone().unwrap_or_default();
        if dns_nameservers
            .iter()
            .any(|d| d.is_ipv4() != (version == 4))
        {
            return Err(Error::invalid_input(
                "dns_nameservers must match the subnet's IP version",
            ));
        }
        let host_routes = new.host_routes.clone().unwrap_or_default();
        check_route_versions(&host_routes, version)?;
        check_ipv6_modes(&new)?;
        let network_id = new.network_id;

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
        std.tags = new.tags.unwrap_or_default();
        let subnet = Subnet {
            id: new_id(),
            project_id,
            network_id,
            name: new.name,
            description: new.description,
            ip_version: version,
            cidr,
            gateway_ip,
            allocation_pools,
            dns_nameservers,
            host_routes,
            enable_dhcp: new.enable_dhcp,
            ipv6_ra_mode: new.ipv6_ra_mode,
            ipv6_address_mode: new.ipv6_address_mode,
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
        change: SubnetUpdate,
    ) -> Result<Subnet> {
        let mut subnet = self.get_subnet(caller, id).await?;
        if !caller.owns(&subnet.project_id) {
            return Err(Error::Policy("rule:update_subnet".into()));
        }
        caller.require_writer("update_subnet")?;
        if let Some(n) = change.name {
            subnet.name = n;
        }
        if let Some(d) = change.description {
            subnet.description = d;
        }
        if let Some(gateway) = change.gateway_ip {
            subnet.gateway_ip = gateway;
        }
        check_gateway(&subnet.cidr, subnet.gateway_ip)?;
        if let Some(pools) = change.allocation_pools {
            subnet.allocation_pools = pools;
        }
        ipam::validate_pools(&subnet.cidr, subnet.gateway_ip, &subnet.allocation_pools)
            .map_err(|e| pool_error(e, &subnet.cidr))?;
        if let Some(d) = change.dns_nameservers {
            subnet.dns_nameservers = d;
        }
        if let Some(routes) = change.host_routes {
            check_route_versions(&routes, subnet.ip_version)?;
            subnet.host_routes = routes;
        }
        if let Some(v) = change.enable_dhcp {
            subnet.enable_dhcp = v;
        }
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
