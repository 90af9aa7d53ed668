//! Over 600 lines on purpose: the gateway, interfaces and routes share one transaction
//! pattern over the router's ports and addresses.
//!
//! Routers: a gateway on an external network (with or without SNAT), interfaces on tenant
//! subnets (each holds its subnet's gateway address) and static routes. Interfaces and the
//! gateway are ports owned by the router; the agent builds a namespace from them.

use std::net::IpAddr;

use onestack_db::Tx;

use super::l3_input::{GatewayRequest, InterfaceRequest, NewRouter, RouterUpdate};
use super::ports::allocate;
use super::{input, quota};
use crate::error::{Error, Result};
use crate::model::{
    FixedIp, FloatingIp, HostRoute, Network, Port, ROUTER_GATEWAY_OWNER, ROUTER_INTERFACE_OWNER,
    Router, RouterGateway, Subnet,
};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

/// A router with the ports it owns.
#[derive(Debug, Clone)]
pub struct RouterView {
    pub router: Router,
    pub gateway_port: Option<Port>,
    pub interfaces: Vec<Port>,
}

/// What `add_router_interface` / `remove_router_interface` answer.
#[derive(Debug, Clone)]
pub struct InterfaceInfo {
    pub router: Router,
    pub port: Port,
}

pub fn router_not_found(id: &str) -> Error {
    Error::not_found("RouterNotFound", "Router", id)
}

fn unsupported_mode(mode: &str) -> Error {
    Error::invalid_input(format!("'{mode}' routers are not supported"))
}

fn bad_router_request(message: impl std::fmt::Display) -> Error {
    Error::Invalid {
        kind: "BadRequest",
        message: format!("Bad router request: {message}."),
    }
}

/// A port the service makes for a router or floating IP (no security groups, no tenant
/// device).
pub(crate) fn service_port(
    project_id: &str,
    network_id: &str,
    device_id: &str,
    device_owner: &str,
    host_id: &str,
) -> Port {
    Port {
        id: new_id(),
        project_id: project_id.to_owned(),
        network_id: network_id.to_owned(),
        name: String::new(),
        description: String::new(),
        admin_state_up: true,
        mac_address: input::random_mac(),
        device_id: device_id.to_owned(),
        device_owner: device_owner.to_owned(),
        fixed_ips: Vec::new(),
        security_groups: Vec::new(),
        allowed_address_pairs: Vec::new(),
        port_security_enabled: false,
        host_id: host_id.to_owned(),
        profile: Default::default(),
        vnic_type: "normal".into(),
        status: "DOWN".into(),
        std: new_standard(),
    }
}

/// Inserts a port with a fresh MAC (retrying the rare collision).
pub(crate) async fn insert_service_port(tx: &mut Tx, port: &mut Port) -> Result<()> {
    while store::mac_taken(tx, &port.network_id, &port.mac_address, "").await? {
        port.mac_address = input::random_mac();
    }
    store::insert_port(tx, port).await
}

impl Networks {
    async fn router_ports(&self, router_id: &str) -> Result<Vec<Port>> {
        let ports: Vec<Port> = store::list(&self.pool, Table::Ports, None).await?;
        Ok(ports
            .into_iter()
            .filter(|p| p.device_id == router_id && p.is_l3_owned())
            .collect())
    }

    fn view(router: Router, ports: &[Port]) -> RouterView {
        let gateway_port = router
            .gateway
            .as_ref()
            .and_then(|g| ports.iter().find(|p| p.id == g.port_id).cloned());
        let interfaces = router.interface_ports(ports).cloned().collect();
        RouterView {
            router,
            gateway_port,
            interfaces,
        }
    }

    async fn find_router(&self, caller: &Caller, id: &str) -> Result<Router> {
        match store::get::<Router, _>(&self.pool, Table::Routers, id).await? {
            Some(r) if caller.owns(&r.project_id) => Ok(r),
            _ => Err(router_not_found(id)),
        }
    }

    pub async fn get_router(&self, caller: &Caller, id: &str) -> Result<RouterView> {
        let router = self.find_router(caller, id).await?;
        let ports = self.router_ports(id).await?;
        Ok(Self::view(router, &ports))
    }

    pub async fn list_routers(&self, caller: &Caller) -> Result<Vec<RouterView>> {
        let routers: Vec<Router> = store::list(&self.pool, Table::Routers, None).await?;
        let ports: Vec<Port> = store::list(&self.pool, Table::Ports, None).await?;
        Ok(routers
            .into_iter()
            .filter(|r| caller.owns(&r.project_id))
            .map(|r| Self::view(r, &ports))
            .collect())
    }

    pub async fn create_router(&self, caller: &Caller, new: NewRouter) -> Result<RouterView> {
        caller.require_writer("create_router")?;
        let project_id = caller.target_project(new.project_id, "create_router:tenant_id")?;
        for (mode, on) in new.modes.given() {
            caller.require_admin(&format!("create_router:{mode}"))?;
            if on {
                return Err(unsupported_mode(mode));
            }
        }
        let mut std = new_standard();
        std.tags = new.tags.unwrap_or_default();
        let mut router = Router {
            id: new_id(),
            project_id: project_id.clone(),
            name: new.name,
            description: new.description,
            admin_state_up: new.admin_state_up,
            status: "ACTIVE".into(),
            gateway: None,
            routes: Vec::new(),
            interfaces: Some(Vec::new()),
            std,
        };
        let mut tx = store::begin_write(&self.pool).await?;
        quota::check(self, &mut tx, &project_id, "router", Table::Routers).await?;
        store::insert_router(&mut tx, &router).await?;
        if let Some(gateway) = new.gateway {
            let previous = router.std.revision_number;
            self.set_gateway(&mut tx, caller, &mut router, gateway)
                .await?;
            store::update_router(&mut tx, &router, previous).await?;
        }
        tx.commit().await?;
        self.changed();
        self.get_router(caller, &router.id).await
    }

    pub async fn update_router(
        &self,
        caller: &Caller,
        id: &str,
        change: RouterUpdate,
    ) -> Result<RouterView> {
        caller.require_writer("update_router")?;
        let mut router = self.find_router(caller, id).await?;
        if let Some((mode, _)) = change.modes.given().find(|(_, on)| *on) {
            return Err(unsupported_mode(mode));
        }
        if let Some(n) = change.name {
            router.name = n;
        }
        if let Some(d) = change.description {
            router.description = d;
        }
        if let Some(v) = change.admin_state_up {
            router.admin_state_up = v;
        }
        let mut tx = store::begin_write(&self.pool).await?;
        let previous = touch(&mut router.std);
        match change.gateway {
            Some(Some(gateway)) => {
                self.set_gateway(&mut tx, caller, &mut router, gateway)
                    .await?;
            }
            Some(None) => self.clear_gateway(&mut tx, &mut router).await?,
            None => {}
        }
        if let Some(new_routes) = change.routes {
            self.check_routes(&mut tx, &router, &new_routes).await?;
            router.routes = new_routes;
        }
        store::update_router(&mut tx, &router, previous).await?;
        tx.commit().await?;
        self.changed();
        self.get_router(caller, id).await
    }

    /// `extraroute`: every nexthop must be on a subnet the router is connected to.
    async fn check_routes(&self, tx: &mut Tx, router: &Router, routes: &[HostRoute]) -> Result<()> {
        let connected = self.connected_subnets(tx, router).await?;
        for route in routes {
            let reachable = connected
                .iter()
                .any(|(s, own)| s.cidr.contains(&route.nexthop) && !own.contains(&route.nexthop));
            if !reachable {
                return Err(Error::Invalid {
                    kind: "InvalidRoutes",
                    message: format!(
                        "Invalid format for routes: [{{'destination': '{}', 'nexthop': '{}'}}], the nexthop is not connected with router",
                        route.destination, route.nexthop
                    ),
                });
            }
        }
        Ok(())
    }

    /// Subnets the router has a port on, with the router's own addresses in each.
    async fn connected_subnets(
        &self,
        tx: &mut Tx,
        router: &Router,
    ) -> Result<Vec<(Subnet, Vec<IpAddr>)>> {
        let ports: Vec<Port> = store::list(&mut **tx, Table::Ports, None).await?;
        let gateway = router
            .gateway
            .as_ref()
            .and_then(|g| ports.iter().find(|p| p.id == g.port_id));
        let mut out: Vec<(Subnet, Vec<IpAddr>)> = Vec::new();
        for port in router.interface_ports(&ports).chain(gateway) {
            for ip in &port.fixed_ips {
                if let Some(subnet) =
                    store::get::<Subnet, _>(&mut **tx, Table::Subnets, &ip.subnet_id).await?
                {
                    out.push((subnet, vec![ip.ip_address]));
                }
            }
        }
        Ok(out)
    }

    /// Sets or moves the gateway to the network `gateway` names.
    async fn set_gateway(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        router: &mut Router,
        gateway: GatewayRequest,
    ) -> Result<()> {
        let GatewayRequest {
            network_id,
            enable_snat,
            fixed_ips,
        } = gateway;
        if enable_snat.is_some() {
            caller.require_admin("update_router:external_gateway_info:enable_snat")?;
        }
        if fixed_ips.is_some() {
            caller.require_admin("update_router:external_gateway_info:external_fixed_ips")?;
        }
        let network =
            match store::get::<Network, _>(&mut **tx, Table::Networks, &network_id).await? {
                Some(n) if caller.can_see_network(&n) => n,
                _ => return Err(Error::network_not_found(&network_id)),
            };
        if !network.external {
            return Err(bad_router_request(format!(
                "Network {network_id} is not an external network"
            )));
        }
        let same_network = router
            .gateway
            .as_ref()
            .is_some_and(|g| g.network_id == network_id);
        if same_network && fixed_ips.is_none() {
            if let (Some(gateway), Some(snat)) = (router.gateway.as_mut(), enable_snat) {
                gateway.enable_snat = snat;
            }
            return Ok(());
        }
        let old_port = router.gateway.as_ref().map(|g| g.port_id.clone());
        if !same_network {
            self.check_no_floating_ips(tx, router).await?;
        }
        if let Some(old) = &old_port {
            store::delete(tx, Table::Ports, old).await?;
        }
        let mut port = service_port(
            "",
            &network_id,
            &router.id,
            ROUTER_GATEWAY_OWNER,
            &self.host,
        );
        port.fixed_ips = allocate(tx, &network, fixed_ips, &[]).await?;
        if port.fixed_ips.is_empty() {
            return Err(bad_router_request(format!(
                "No subnet of network {network_id} has a free address for the gateway"
            )));
        }
        insert_service_port(tx, &mut port).await?;
        router.gateway = Some(RouterGateway {
            network_id,
            enable_snat: enable_snat.unwrap_or(true),
            port_id: port.id,
        });
        Ok(())
    }

    async fn clear_gateway(&self, tx: &mut Tx, router: &mut Router) -> Result<()> {
        let Some(gateway) = router.gateway.take() else {
            return Ok(());
        };
        self.check_no_floating_ips(tx, router).await?;
        store::delete(tx, Table::Ports, &gateway.port_id)
            .await
            .map(drop)
    }

    async fn check_no_floating_ips(&self, tx: &mut Tx, router: &Router) -> Result<()> {
        let fips: Vec<FloatingIp> = store::list(&mut **tx, Table::FloatingIps, None).await?;
        if fips
            .iter()
            .any(|f| f.router_id.as_deref() == Some(router.id.as_str()))
        {
            return Err(Error::conflict(
                "RouterExternalGatewayInUseByFloatingIp",
                format!(
                    "Gateway cannot be updated for router {}, since a gateway to external network {} is required by one or more floating IPs.",
                    router.id,
                    router
                        .gateway
                        .as_ref()
                        .map(|g| g.network_id.as_str())
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    pub async fn delete_router(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("delete_router")?;
        let mut router = self.find_router(caller, id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        let ports: Vec<Port> = store::list(&mut *tx, Table::Ports, None).await?;
        if router.interface_ports(&ports).next().is_some() {
            return Err(Error::conflict(
                "RouterInUse",
                format!("Router {id} still has ports"),
            ));
        }
        self.clear_gateway(&mut tx, &mut router).await?;
        store::delete_requested(&mut tx, Table::Routers, id, router_not_found).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    pub async fn add_router_interface(
        &self,
        caller: &Caller,
        id: &str,
        request: InterfaceRequest,
    ) -> Result<InterfaceInfo> {
        caller.require_writer("add_router_interface")?;
        let mut router = self.find_router(caller, id).await?;
        let InterfaceRequest { subnet_id, port_id } = request;
        let mut tx = store::begin_write(&self.pool).await?;
        let port = match (subnet_id, port_id) {
            (Some(_), Some(_)) => {
                return Err(bad_router_request(
                    "Cannot specify both subnet-id and port-id",
                ));
            }
            (None, None) => {
                return Err(bad_router_request(
                    "Either subnet_id or port_id must be specified",
                ));
            }
            (Some(subnet_id), None) => {
                let subnet = self.interface_subnet(&mut tx, caller, &subnet_id).await?;
                let Some(gateway_ip) = subnet.gateway_ip else {
                    return Err(bad_router_request(
                        "Subnet for router interface must have a gateway IP",
                    ));
                };
                self.check_new_interface(&mut tx, &router, std::slice::from_ref(&subnet))
                    .await?;
                if store::allocated(&mut tx, &subnet.id)
                    .await?
                    .iter()
                    .any(|a| a.parse::<IpAddr>().ok() == Some(gateway_ip))
                {
                    return Err(Error::conflict(
                        "IpAddressAlreadyAllocated",
                        format!(
                            "IP address {gateway_ip} already allocated in subnet {}",
                            subnet.id
                        ),
                    ));
                }
                let mut port = service_port(
                    &router.project_id,
                    &subnet.network_id,
                    id,
                    ROUTER_INTERFACE_OWNER,
                    &self.host,
                );
                port.fixed_ips = vec![FixedIp {
                    subnet_id: subnet.id.clone(),
                    ip_address: gateway_ip,
                }];
                insert_service_port(&mut tx, &mut port).await?;
                port
            }
            (None, Some(port_id)) => {
                let mut port = match store::get::<Port, _>(&mut *tx, Table::Ports, &port_id).await?
                {
                    Some(p) if caller.owns(&p.project_id) => p,
                    _ => return Err(Error::port_not_found(&port_id)),
                };
                if !port.device_id.is_empty() || !port.device_owner.is_empty() {
                    return Err(Error::conflict(
                        "PortInUse",
                        format!(
                            "Unable to complete operation on port {port_id} for network {}. Port already has an attached device {}.",
                            port.network_id, port.device_id
                        ),
                    ));
                }
                if port.fixed_ips.is_empty() {
                    return Err(bad_router_request(
                        "Router port must have at least one fixed IP",
                    ));
                }
                let mut subnets = Vec::new();
                for ip in &port.fixed_ips {
                    if let Some(s) =
                        store::get::<Subnet, _>(&mut *tx, Table::Subnets, &ip.subnet_id).await?
                    {
                        subnets.push(s);
                    }
                }
                self.check_new_interface(&mut tx, &router, &subnets).await?;
                let previous = touch(&mut port.std);
                port.device_id = id.to_owned();
                port.device_owner = ROUTER_INTERFACE_OWNER.into();
                port.host_id = self.host.clone();
                port.security_groups.clear();
                port.allowed_address_pairs.clear();
                port.port_security_enabled = false;
                store::update_port(&mut tx, &port, previous).await?;
                port
            }
        };
        // The router's record is what makes the port its interface.
        let ports: Vec<Port> = store::list(&mut *tx, Table::Ports, None).await?;
        let previous = touch(&mut router.std);
        router.add_interface(&port.id, &ports);
        store::update_router(&mut tx, &router, previous).await?;
        tx.commit().await?;
        self.changed();
        Ok(InterfaceInfo { router, port })
    }

    async fn interface_subnet(&self, tx: &mut Tx, caller: &Caller, id: &str) -> Result<Subnet> {
        let subnet = store::get::<Subnet, _>(&mut **tx, Table::Subnets, id)
            .await?
            .ok_or_else(|| Error::subnet_not_found(id))?;
        let network = store::get::<Network, _>(&mut **tx, Table::Networks, &subnet.network_id)
            .await?
            .ok_or_else(|| Error::subnet_not_found(id))?;
        // A router plugs only into its project's own subnets (admins excepted).
        if !caller.owns(&subnet.project_id) {
            return Err(Error::subnet_not_found(id));
        }
        if network.external {
            return Err(bad_router_request(format!(
                "Subnet {id} is on external network {}; set it as the router's gateway instead",
                network.id
            )));
        }
        Ok(subnet)
    }

    /// A router holds at most one port per subnet and its subnets must not overlap.
    async fn check_new_interface(
        &self,
        tx: &mut Tx,
        router: &Router,
        new: &[Subnet],
    ) -> Result<()> {
        for (existing, _) in self.connected_subnets(tx, router).await? {
            for subnet in new {
                if existing.id == subnet.id {
                    return Err(bad_router_request(format!(
                        "Router already has a port on subnet {}",
                        subnet.id
                    )));
                }
                if crate::ipam::overlaps(&existing.cidr, &subnet.cidr) {
                    return Err(bad_router_request(format!(
                        "Cidr {} of subnet {} overlaps with cidr {} of subnet {}",
                        subnet.cidr, subnet.id, existing.cidr, existing.id
                    )));
                }
            }
        }
        Ok(())
    }

    pub async fn remove_router_interface(
        &self,
        caller: &Caller,
        id: &str,
        request: InterfaceRequest,
    ) -> Result<InterfaceInfo> {
        caller.require_writer("remove_router_interface")?;
        let mut router = self.find_router(caller, id).await?;
        let InterfaceRequest { subnet_id, port_id } = request;
        if subnet_id.is_none() && port_id.is_none() {
            return Err(bad_router_request(
                "Either subnet_id or port_id must be specified",
            ));
        }
        let mut tx = store::begin_write(&self.pool).await?;
        let ports: Vec<Port> = store::list(&mut *tx, Table::Ports, None).await?;
        let port = router
            .interface_ports(&ports)
            .find(|p| {
                port_id.as_deref().is_none_or(|want| p.id == want)
                    && subnet_id
                        .as_deref()
                        .is_none_or(|want| p.fixed_ips.iter().any(|f| f.subnet_id == want))
            })
            .cloned();
        let Some(port) = port else {
            return Err(match port_id {
                Some(p) => Error::not_found_message(
                    "RouterInterfaceNotFound",
                    format!("Router {id} does not have an interface with id {p}"),
                ),
                None => Error::not_found_message(
                    "RouterInterfaceNotFoundForSubnet",
                    format!(
                        "Router {id} has no interface on subnet {}",
                        subnet_id.unwrap_or_default()
                    ),
                ),
            });
        };
        let fips: Vec<FloatingIp> = store::list(&mut *tx, Table::FloatingIps, None).await?;
        let subnets: Vec<&str> = port
            .fixed_ips
            .iter()
            .map(|f| f.subnet_id.as_str())
            .collect();
        for fip in fips.iter().filter(|f| f.router_id.as_deref() == Some(id)) {
            let Some(fixed_port) = &fip.port_id else {
                continue;
            };
            let Some(fixed) = store::get::<Port, _>(&mut *tx, Table::Ports, fixed_port).await?
            else {
                continue;
            };
            if fixed.fixed_ips.iter().any(|f| {
                subnets.contains(&f.subnet_id.as_str())
                    && Some(f.ip_address) == fip.fixed_ip_address
            }) {
                return Err(Error::conflict(
                    "RouterInterfaceInUseByFloatingIP",
                    format!(
                        "Router interface for subnet {} on router {id} cannot be deleted, as it is required by one or more floating IPs.",
                        subnets.join(", ")
                    ),
                ));
            }
        }
        store::delete(&mut tx, Table::Ports, &port.id).await?;
        let previous = touch(&mut router.std);
        router.remove_interface(&port.id, &ports);
        store::update_router(&mut tx, &router, previous).await?;
        tx.commit().await?;
        self.changed();
        Ok(InterfaceInfo { router, port })
    }
}
