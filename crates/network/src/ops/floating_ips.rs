//! Floating IPs: an address of an external network (held by a port of its own) that a
//! router forwards to a port's fixed address. Association needs a router with a gateway on
//! that external network and an interface on the fixed address's subnet.

use std::net::IpAddr;

use onestack_db::Tx;

use super::l3_input::{FloatingIpUpdate, NewFloatingIp};
use super::port_input::IpRequest;
use super::ports::allocate;
use super::quota;
use super::routers::{insert_service_port, service_port};
use crate::error::{Error, Result};
use crate::model::{FLOATING_IP_OWNER, FloatingIp, Network, Port, Router};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

pub fn floating_ip_not_found(id: &str) -> Error {
    Error::not_found("FloatingIPNotFound", "Floating IP", id)
}

fn bad_request(message: impl std::fmt::Display) -> Error {
    Error::Invalid {
        kind: "BadRequest",
        message: format!("Bad floatingip request: {message}."),
    }
}

/// A floating IP with the port it is associated with (for `port_details`).
#[derive(Debug, Clone)]
pub struct FloatingIpView {
    pub fip: FloatingIp,
    pub port: Option<Port>,
}

impl Networks {
    async fn find_floating_ip(&self, caller: &Caller, id: &str) -> Result<FloatingIp> {
        match store::get::<FloatingIp, _>(&self.pool, Table::FloatingIps, id).await? {
            Some(f) if caller.owns(&f.project_id) => Ok(f),
            _ => Err(floating_ip_not_found(id)),
        }
    }

    async fn with_port(&self, fip: FloatingIp) -> Result<FloatingIpView> {
        let port = match &fip.port_id {
            Some(id) => store::get(&self.pool, Table::Ports, id).await?,
            None => None,
        };
        Ok(FloatingIpView { fip, port })
    }

    pub async fn get_floating_ip(&self, caller: &Caller, id: &str) -> Result<FloatingIpView> {
        let fip = self.find_floating_ip(caller, id).await?;
        self.with_port(fip).await
    }

    pub async fn list_floating_ips(&self, caller: &Caller) -> Result<Vec<FloatingIpView>> {
        let fips: Vec<FloatingIp> = store::list(&self.pool, Table::FloatingIps, None).await?;
        let ports: Vec<Port> = store::list(&self.pool, Table::Ports, None).await?;
        Ok(fips
            .into_iter()
            .filter(|f| caller.owns(&f.project_id))
            .map(|fip| {
                let port = fip
                    .port_id
                    .as_ref()
                    .and_then(|id| ports.iter().find(|p| &p.id == id).cloned());
                FloatingIpView { fip, port }
            })
            .collect())
    }

    /// Floating IPs associated with any of `port_ids` (compute shows them in `addresses`).
    pub async fn floating_ips_of_ports(&self, port_ids: &[String]) -> Result<Vec<FloatingIp>> {
        let fips: Vec<FloatingIp> = store::list(&self.pool, Table::FloatingIps, None).await?;
        Ok(fips
            .into_iter()
            .filter(|f| f.port_id.as_ref().is_some_and(|p| port_ids.contains(p)))
            .collect())
    }

    pub async fn create_floating_ip(
        &self,
        caller: &Caller,
        new: NewFloatingIp,
    ) -> Result<FloatingIpView> {
        caller.require_writer("create_floatingip")?;
        let project_id = caller.target_project(new.project_id, "create_floatingip:tenant_id")?;
        if new.floating_ip_address.is_some() {
            caller.require_admin("create_floatingip:floating_ip_address")?;
        }
        let network_id = new.floating_network_id;
        let fixed = new.fixed_ip_address;
        let network =
            match store::get::<Network, _>(&self.pool, Table::Networks, &network_id).await? {
                Some(n) if caller.can_see_network(&n) => n,
                _ => return Err(Error::network_not_found(&network_id)),
            };
        if !network.external {
            return Err(bad_request(format!(
                "Network {network_id} is not a valid external network"
            )));
        }
        let requests = match (new.floating_ip_address, new.subnet_id) {
            (Some(ip), subnet_id) => Some(vec![IpRequest::Address { subnet_id, ip }]),
            (None, Some(subnet)) => Some(vec![IpRequest::Subnet(subnet)]),
            (None, None) => None,
        };
        let mut tx = store::begin_write(&self.pool).await?;
        quota::check(self, &mut tx, &project_id, "floatingip", Table::FloatingIps).await?;
        let id = new_id();
        let mut port = service_port("", &network_id, &id, FLOATING_IP_OWNER, "");
        port.fixed_ips = allocate(&mut tx, &network, requests, &[])
            .await?
            .into_iter()
            .filter(|f| f.ip_address.is_ipv4())
            .take(1)
            .collect();
        let Some(floating) = port.fixed_ips.first().map(|f| f.ip_address) else {
            return Err(bad_request(format!(
                "Network {network_id} has no IPv4 subnet to take a floating IP from"
            )));
        };
        insert_service_port(&mut tx, &mut port).await?;
        let mut std = new_standard();
        std.tags = new.tags.unwrap_or_default();
        let mut fip = FloatingIp {
            id,
            project_id,
            floating_network_id: network_id,
            floating_ip_address: floating,
            floating_port_id: port.id,
            description: new.description,
            port_id: None,
            fixed_ip_address: None,
            router_id: None,
            status: "DOWN".into(),
            std,
        };
        if let Some(port_id) = new.port_id {
            self.associate(&mut tx, caller, &mut fip, &port_id, fixed)
                .await?;
        } else if fixed.is_some() {
            return Err(bad_request("fixed_ip_address needs a port_id"));
        }
        store::insert_floating_ip(&mut tx, &fip).await?;
        tx.commit().await?;
        self.changed();
        self.with_port(fip).await
    }

    pub async fn update_floating_ip(
        &self,
        caller: &Caller,
        id: &str,
        change: FloatingIpUpdate,
    ) -> Result<FloatingIpView> {
        caller.require_writer("update_floatingip")?;
        let mut fip = self.find_floating_ip(caller, id).await?;
        if let Some(d) = change.description {
            fip.description = d;
        }
        let fixed = change.fixed_ip_address;
        let mut tx = store::begin_write(&self.pool).await?;
        let previous = touch(&mut fip.std);
        match change.port_id {
            None if fixed.is_some() => {
                return Err(bad_request("fixed_ip_address needs a port_id"));
            }
            None => {}
            Some(None) => disassociate(&mut fip),
            Some(Some(port_id)) => {
                self.associate(&mut tx, caller, &mut fip, &port_id, fixed)
                    .await?;
            }
        }
        store::update_floating_ip(&mut tx, &fip, previous).await?;
        tx.commit().await?;
        self.changed();
        self.with_port(fip).await
    }

    pub async fn delete_floating_ip(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("delete_floatingip")?;
        let fip = self.find_floating_ip(caller, id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        store::delete_requested(&mut tx, Table::FloatingIps, id, floating_ip_not_found).await?;
        store::delete(&mut tx, Table::Ports, &fip.floating_port_id).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// Points `fip` at `port_id`'s fixed address `fixed` (or its only IPv4 address) through
    /// the router that connects that subnet with the floating IP's network.
    async fn associate(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        fip: &mut FloatingIp,
        port_id: &str,
        fixed: Option<IpAddr>,
    ) -> Result<()> {
        let port = match store::get::<Port, _>(&mut **tx, Table::Ports, port_id).await? {
            Some(p) if p.project_id == fip.project_id || caller.admin => p,
            _ => return Err(Error::port_not_found(port_id)),
        };
        if port.is_network_owned() {
            return Err(bad_request(format!(
                "Port {port_id} is owned by {} and cannot have a floating IP",
                port.device_owner
            )));
        }
        let v4: Vec<_> = port
            .fixed_ips
            .iter()
            .filter(|f| f.ip_address.is_ipv4())
            .collect();
        let chosen = match fixed {
            Some(ip) => v4.iter().find(|f| f.ip_address == ip).ok_or_else(|| {
                bad_request(format!("Port {port_id} does not have fixed ip {ip}"))
            })?,
            None => match v4.as_slice() {
                [one] => one,
                [] => {
                    return Err(bad_request(format!(
                        "Port {port_id} does not have any IPv4 address, which is needed to associate a floating IP"
                    )));
                }
                _ => {
                    return Err(bad_request(format!(
                        "Port {port_id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP"
                    )));
                }
            },
        };
        let router = self
            .router_between(tx, &fip.floating_network_id, &chosen.subnet_id)
            .await?
            .ok_or_else(|| {
                Error::not_found_message(
                    "ExternalGatewayForFloatingIPNotFound",
                    format!(
                        "External network {} is not reachable from subnet {}. Therefore, cannot associate Port {port_id} with a Floating IP.",
                        fip.floating_network_id, chosen.subnet_id
                    ),
                )
            })?;
        fip.port_id = Some(port.id.clone());
        fip.fixed_ip_address = Some(chosen.ip_address);
        fip.router_id = Some(router.id);
        fip.status = "DOWN".into();
        Ok(())
    }

    /// The router with a gateway on `external` and an interface on `subnet_id`.
    async fn router_between(
        &self,
        tx: &mut Tx,
        external: &str,
        subnet_id: &str,
    ) -> Result<Option<Router>> {
        let routers: Vec<Router> = store::list(&mut **tx, Table::Routers, None).await?;
        let ports: Vec<Port> = store::list(&mut **tx, Table::Ports, None).await?;
        // The router's own record says which ports are its interfaces: a port claiming a
        // router through its device_id is not one.
        Ok(routers.into_iter().find(|r| {
            r.gateway.as_ref().is_some_and(|g| g.network_id == external)
                && r.interface_ports(&ports)
                    .any(|p| p.fixed_ips.iter().any(|f| f.subnet_id == subnet_id))
        }))
    }

    /// Lets go of the floating IPs of a port being deleted (Neutron disassociates them).
    pub(crate) async fn release_floating_ips(&self, tx: &mut Tx, port_id: &str) -> Result<()> {
        let fips: Vec<FloatingIp> = store::list(&mut **tx, Table::FloatingIps, None).await?;
        for mut fip in fips
            .into_iter()
            .filter(|f| f.port_id.as_deref() == Some(port_id))
        {
            let previous = touch(&mut fip.std);
            disassociate(&mut fip);
            store::update_floating_ip(tx, &fip, previous).await?;
        }
        Ok(())
    }
}

fn disassociate(fip: &mut FloatingIp) {
    fip.port_id = None;
    fip.fixed_ip_address = None;
    fip.router_id = None;
    fip.status = "DOWN".into();
}
