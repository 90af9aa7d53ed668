//! Ports and IPAM: every address comes out of a transaction that holds the write lock and
//! is recorded in `net_ip_allocations`, whose key makes a second holder impossible.

use std::collections::HashSet;
use std::net::IpAddr;

use onestack_db::Tx;

use super::port_input::{IpRequest, NewPort, OwnerOnly, PairRequest, PortUpdate};
use super::{groups, input, quota};
use crate::error::{Error, Result};
use crate::ipam;
use crate::model::{
    AddressPair, DHCP_OWNER, FixedIp, Network, Port, Router, Subnet, is_reserved_owner,
};
use crate::policy::{Caller, NetworkPolicy};
use crate::service::{Networks, new_id, new_standard, touch};
use crate::store::{self, Table};

/// Resolves address pair requests against the port's MAC; a pair asked twice is refused.
fn address_pairs(requests: Vec<PairRequest>, port_mac: &str) -> Result<Vec<AddressPair>> {
    let mut out: Vec<AddressPair> = Vec::new();
    for request in requests {
        let pair = AddressPair {
            ip_address: request.ip_address,
            mac_address: request.mac_address.unwrap_or_else(|| port_mac.to_owned()),
        };
        if out.contains(&pair) {
            return Err(Error::invalid_input(
                "Request contains duplicate address pair",
            ));
        }
        out.push(pair);
    }
    Ok(out)
}

/// The lowest free address of `subnet`, not counting `releasing` (the port's own addresses
/// being replaced) as taken.
pub(crate) async fn next_address(
    tx: &mut Tx,
    subnet: &Subnet,
    also_taken: &[IpAddr],
) -> Result<IpAddr> {
    let mut taken: HashSet<IpAddr> = store::allocated(tx, &subnet.id)
        .await?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    taken.extend(also_taken.iter().copied());
    ipam::next_free(&subnet.allocation_pools, &taken).ok_or_else(|| {
        Error::conflict(
            "IpAddressGenerationFailure",
            format!(
                "No more IP addresses available on network {}.",
                subnet.network_id
            ),
        )
    })
}

/// Turns `fixed_ips` requests into addresses. `keep` are the port's current addresses, which
/// it may ask for again.
pub(crate) async fn allocate(
    tx: &mut Tx,
    network: &Network,
    requests: Option<Vec<IpRequest>>,
    keep: &[FixedIp],
) -> Result<Vec<FixedIp>> {
    let mut subnets: Vec<Subnet> =
        store::list(&mut **tx, Table::Subnets, Some(("network_id", &network.id))).await?;
    subnets.sort_by_key(|s| s.std.created_at);
    let mut out: Vec<FixedIp> = Vec::new();
    let Some(requests) = requests else {
        // One address of each IP version, from the first subnet that has one free.
        for version in [4u8, 6] {
            let mut exhausted = None;
            for subnet in subnets.iter().filter(|s| s.ip_version == version) {
                match next_address(tx, subnet, &[]).await {
                    Ok(ip) => {
                        out.push(FixedIp {
                            subnet_id: subnet.id.clone(),
                            ip_address: ip,
                        });
                        exhausted = None;
                        break;
                    }
                    Err(e) => exhausted = Some(e),
                }
            }
            if let Some(e) = exhausted {
                return Err(e);
            }
        }
        return Ok(out);
    };
    for request in requests {
        let (subnet, ip) = match request {
            IpRequest::Subnet(id) => {
                let subnet = subnets.iter().find(|s| s.id == id).ok_or_else(|| {
                    Error::invalid_input(format!("Failed to create port on network {}, because fixed_ips included invalid subnet {id}", network.id))
                })?;
                let chosen: Vec<IpAddr> = out.iter().map(|f| f.ip_address).collect();
                let kept = keep
                    .iter()
                    .find(|k| k.subnet_id == id && !chosen.contains(&k.ip_address));
                match kept {
                    Some(k) => (subnet, k.ip_address),
                    None => (subnet, next_address(tx, subnet, &chosen).await?),
                }
            }
            IpRequest::Address { subnet_id, ip } => {
                let subnet = match subnet_id {
                    Some(id) => {
                        let subnet = subnets.iter().find(|s| s.id == id).ok_or_else(|| {
                            Error::invalid_input(format!("Failed to create port on network {}, because fixed_ips included invalid subnet {id}", network.id))
                        })?;
                        if !subnet.cidr.contains(&ip) {
                            return Err(Error::Invalid { kind: "InvalidIpForSubnet", message: format!("IP address {ip} is not a valid IP for the specified subnet.") });
                        }
                        subnet
                    }
                    None => subnets.iter().find(|s| s.cidr.contains(&ip)).ok_or_else(|| Error::Invalid {
                        kind: "InvalidIpForNetwork",
                        message: format!("IP address {ip} is not a valid IP for any of the subnets on the specified network."),
                    })?,
                };
                let (first, last) = ipam::usable_range(&subnet.cidr);
                let value = ipam::to_u128(ip);
                if value < first || value > last {
                    return Err(Error::Invalid {
                        kind: "InvalidIpForSubnet",
                        message: format!(
                            "IP address {ip} is not a valid IP for the specified subnet."
                        ),
                    });
                }
                let mine = keep
                    .iter()
                    .any(|k| k.ip_address == ip && k.subnet_id == subnet.id);
                let taken = store::allocated(tx, &subnet.id)
                    .await?
                    .iter()
                    .any(|s| s.parse::<IpAddr>().ok() == Some(ip));
                if subnet.gateway_ip == Some(ip)
                    || (taken && !mine)
                    || out.iter().any(|f| f.ip_address == ip)
                {
                    return Err(Error::conflict(
                        "IpAddressAlreadyAllocated",
                        format!("IP address {ip} already allocated in subnet {}", subnet.id),
                    ));
                }
                (subnet, ip)
            }
        };
        out.push(FixedIp {
            subnet_id: subnet.id.clone(),
            ip_address: ip,
        });
    }
    Ok(out)
}

/// Attributes that let a port impersonate others (its MAC, chosen addresses, no port
/// security, address pairs) or act for the network (`network:*` owners) are for the
/// network's owner and admins, as in Neutron's policy: another project on a shared network
/// gets a plain port. The DHCP server's, routers' and floating IPs' owners are the
/// service's own: only admins may name them through the port API (routers and floating
/// IPs make their ports themselves).
fn check_owner_only(
    caller: &Caller,
    network: &Network,
    asked: OwnerOnly,
    device_owner: &str,
    action: &str,
) -> Result<()> {
    if is_reserved_owner(device_owner) && !caller.admin {
        return Err(Error::Policy(format!("rule:{action}:device_owner")));
    }
    if caller.owns(&network.project_id) {
        return Ok(());
    }
    if device_owner.starts_with("network:") {
        return Err(Error::Policy(format!("rule:{action}:device_owner")));
    }
    match asked.first() {
        Some(key) => Err(Error::Policy(format!("rule:{action}:{key}"))),
        None => Ok(()),
    }
}

/// Neutron's `DeviceIDNotOwnedByTenant`: a device id that names another project's router.
fn device_id_not_owned(device_id: &str) -> Error {
    Error::conflict(
        "DeviceIDNotOwnedByTenant",
        format!(
            "The following device_id {device_id} is not owned by your tenant or matches another tenants router."
        ),
    )
}

impl Networks {
    /// Refuses, for non-admins, a `device_id` that names a router of another project than
    /// the port's (as Neutron's `_enforce_device_owner_not_router_intf_or_device_id` does,
    /// whatever the owner: no device of a project is another project's router).
    async fn check_device_id(
        &self,
        caller: &Caller,
        project_id: &str,
        device_id: &str,
    ) -> Result<()> {
        if caller.admin || device_id.is_empty() {
            return Ok(());
        }
        match store::get::<Router, _>(&self.pool, Table::Routers, device_id).await? {
            Some(router) if router.project_id != project_id => Err(device_id_not_owned(device_id)),
            _ => Ok(()),
        }
    }

    pub async fn get_port(&self, caller: &Caller, id: &str) -> Result<Port> {
        match store::get::<Port, _>(&self.pool, Table::Ports, id).await? {
            Some(p) if caller.owns(&p.project_id) => Ok(p),
            _ => Err(Error::port_not_found(id)),
        }
    }

    pub async fn list_ports(&self, caller: &Caller) -> Result<Vec<Port>> {
        if caller.admin {
            store::list(&self.pool, Table::Ports, None).await
        } else {
            store::list(
                &self.pool,
                Table::Ports,
                Some(("project_id", &caller.project_id)),
            )
            .await
        }
    }

    /// The security groups a port of `project_id` asks for, each checked to exist there.
    async fn port_groups(
        &self,
        tx: &mut Tx,
        caller: &Caller,
        project_id: &str,
        ids: Vec<String>,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in ids {
            match groups::find_group(tx, &id).await? {
                Some(g) if g.project_id == project_id || caller.admin => {
                    if !out.contains(&g.id) {
                        out.push(g.id);
                    }
                }
                _ => return Err(Error::group_not_found(&id)),
            }
        }
        Ok(out)
    }

    pub async fn create_port(&self, caller: &Caller, new: NewPort) -> Result<Port> {
        caller.require_writer("create_port")?;
        let network = self.get_network(caller, &new.network_id).await?;
        let project_id = caller.target_project(new.project_id.clone(), "create_port:tenant_id")?;
        // Another project's network takes ports only when shared. An external one is visible
        // to all, but a port on it would put a guest straight on the outside: Neutron answers
        // as if it did not exist.
        if !caller.admin && !network.shared && network.project_id != project_id {
            return Err(Error::Absent {
                kind: "HTTPNotFound",
                message: "The resource could not be found.".into(),
            });
        }
        check_owner_only(
            caller,
            &network,
            new.owner_only(),
            &new.device_owner,
            "create_port",
        )?;
        self.check_device_id(caller, &project_id, &new.device_id)
            .await?;
        if new.host_id.is_some() || new.profile.is_some() {
            caller.require_admin("create_port:binding:host_id")?;
        }
        let NewPort {
            network_id,
            name,
            description,
            admin_state_up,
            device_id,
            device_owner,
            mac_address: mac_given,
            fixed_ips: requests,
            port_security_enabled,
            security_groups: groups_asked,
            allowed_address_pairs: pairs_asked,
            host_id,
            profile,
            tags,
            ..
        } = new;
        let port_security_enabled = port_security_enabled.unwrap_or(network.port_security_enabled);

        let mut tx = store::begin_write(&self.pool).await?;
        quota::check(self, &mut tx, &project_id, "port", Table::Ports).await?;
        let mac_address = match mac_given {
            Some(mac) => {
                if store::mac_taken(&mut tx, &network_id, &mac, "").await? {
                    return Err(Error::conflict(
                        "MacAddressInUse",
                        format!(
                            "Unable to complete operation for network {network_id}. The mac address {mac} is in use."
                        ),
                    ));
                }
                mac
            }
            None => loop {
                let mac = input::random_mac();
                if !store::mac_taken(&mut tx, &network_id, &mac, "").await? {
                    break mac;
                }
            },
        };
        let security_groups = match groups_asked {
            Some(ids) => self.port_groups(&mut tx, caller, &project_id, ids).await?,
            None if port_security_enabled && !device_owner.starts_with("network:") => {
                vec![groups::ensure_default_group(&mut tx, &project_id).await?]
            }
            None => Vec::new(),
        };
        if !port_security_enabled && !security_groups.is_empty() {
            return Err(Error::conflict(
                "PortSecurityAndIPRequiredForSecurityGroups",
                "Port security must be enabled and port must have an IP address in order to use security groups.",
            ));
        }
        let allowed_address_pairs = pairs_asked
            .map(|pairs| address_pairs(pairs, &mac_address))
            .transpose()?
            .unwrap_or_default();
        if !port_security_enabled && !allowed_address_pairs.is_empty() {
            return Err(Error::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        let fixed_ips = allocate(&mut tx, &network, requests, &[]).await?;
        let mut std = new_standard();
        std.tags = tags.unwrap_or_default();
        let port = Port {
            id: new_id(),
            project_id,
            network_id,
            name,
            description,
            admin_state_up,
            mac_address,
            device_id,
            device_owner,
            fixed_ips,
            security_groups,
            allowed_address_pairs,
            port_security_enabled,
            host_id: host_id.unwrap_or_default(),
            profile: profile.unwrap_or_default(),
            vnic_type: "normal".into(),
            status: "DOWN".into(),
            std,
        };
        store::insert_port(&mut tx, &port).await?;
        tx.commit().await?;
        self.changed();
        Ok(port)
    }

    pub async fn update_port(&self, caller: &Caller, id: &str, change: PortUpdate) -> Result<Port> {
        caller.require_writer("update_port")?;
        let mut port = self.get_port(caller, id).await?;
        let network = store::get::<Network, _>(&self.pool, Table::Networks, &port.network_id)
            .await?
            .ok_or_else(|| Error::network_not_found(&port.network_id))?;
        if port.device_owner == DHCP_OWNER && !caller.admin {
            return Err(Error::Policy("rule:update_port:device_owner".into()));
        }
        let moves_device = change
            .device_id
            .as_ref()
            .is_some_and(|d| *d != port.device_id)
            || change
                .device_owner
                .as_ref()
                .is_some_and(|o| *o != port.device_owner);
        if port.is_l3_owned() {
            // A router's or floating IP's port stays what that API made it: moving it to
            // another device (another project's router) or changing what it holds is
            // refused, for admins too.
            let changed = change.service_fixed_attribute();
            if moves_device || changed.is_some() {
                let what = if moves_device {
                    "device"
                } else {
                    changed.unwrap_or_default()
                };
                return Err(Error::conflict(
                    "ServicePortInUse",
                    format!(
                        "Port {id} cannot be updated directly via the port API: has device owner {}; its {what} changes through the router or floating IP API only.",
                        port.device_owner
                    ),
                ));
            }
        }
        let owner_only = change.owner_only();
        let PortUpdate {
            name,
            description,
            admin_state_up,
            device_id,
            device_owner,
            mac_address: new_mac,
            fixed_ips: requests,
            port_security_enabled,
            security_groups: groups_asked,
            allowed_address_pairs: pairs_asked,
            host_id,
            profile,
        } = change;
        if let Some(v) = device_id {
            port.device_id = v;
        }
        if moves_device {
            self.check_device_id(caller, &port.project_id, &port.device_id)
                .await?;
        }
        if let Some(n) = name {
            port.name = n;
        }
        if let Some(d) = description {
            port.description = d;
        }
        if let Some(v) = admin_state_up {
            port.admin_state_up = v;
        }
        check_owner_only(
            caller,
            &network,
            owner_only,
            device_owner.as_deref().unwrap_or(""),
            "update_port",
        )?;
        if let Some(v) = device_owner {
            port.device_owner = v;
        }
        if new_mac.is_some() {
            caller.require_admin("update_port:mac_address")?;
        }
        if let Some(v) = port_security_enabled {
            port.port_security_enabled = v;
        }
        if let Some(h) = host_id {
            caller.require_admin("update_port:binding:host_id")?;
            port.host_id = h;
            // Setting the binding ends a live migration's plug-in on its new host, unless
            // the same request gives the profile (below).
            port.profile.remove(crate::ops::guests::MIGRATING_TO);
        }
        if let Some(p) = profile {
            caller.require_admin("update_port:binding:profile")?;
            port.profile = p;
        }

        let mut tx = store::begin_write(&self.pool).await?;
        if let Some(mac) = new_mac
            && mac != port.mac_address
        {
            if !port.host_id.is_empty() {
                return Err(Error::conflict(
                    "PortBound",
                    format!(
                        "Unable to complete operation on port {id}, port is already bound, port type: bridge, old_mac {}, new_mac {mac}.",
                        port.mac_address
                    ),
                ));
            }
            if store::mac_taken(&mut tx, &port.network_id, &mac, id).await? {
                return Err(Error::conflict(
                    "MacAddressInUse",
                    format!(
                        "Unable to complete operation for network {}. The mac address {mac} is in use.",
                        port.network_id
                    ),
                ));
            }
            port.mac_address = mac;
        }
        if let Some(ids) = groups_asked {
            port.security_groups = self
                .port_groups(&mut tx, caller, &port.project_id.clone(), ids)
                .await?;
        }
        if let Some(pairs) = pairs_asked {
            port.allowed_address_pairs = address_pairs(pairs, &port.mac_address)?;
        }
        if !port.port_security_enabled && !port.security_groups.is_empty() {
            return Err(Error::conflict(
                "PortSecurityPortHasSecurityGroup",
                "Port has security group associated. Cannot disable port security or ip address until security group is removed",
            ));
        }
        if !port.port_security_enabled && !port.allowed_address_pairs.is_empty() {
            return Err(Error::conflict(
                "AddressPairAndPortSecurityRequired",
                "Port Security must be enabled in order to have allowed address pairs on a port.",
            ));
        }
        if let Some(requests) = requests {
            let keep = port.fixed_ips.clone();
            port.fixed_ips = allocate(&mut tx, &network, Some(requests), &keep).await?;
        }
        let previous = touch(&mut port.std);
        store::update_port(&mut tx, &port, previous).await?;
        tx.commit().await?;
        self.changed();
        Ok(port)
    }

    /// Gives port `id` to the device `device_id` (a server) when no device holds it. The
    /// check and the write are one transaction, so of two servers racing for one port
    /// exactly one gets it; the other is told it is in use (409 `PortInUse`).
    pub async fn claim_port(
        &self,
        caller: &Caller,
        id: &str,
        device_id: &str,
        device_owner: &str,
    ) -> Result<Port> {
        caller.require_writer("update_port")?;
        // Visibility first: another project's port is a 404, not "in use".
        self.get_port(caller, id).await?;
        let mut tx = store::begin_write(&self.pool).await?;
        let mut port: Port = store::get(&mut *tx, Table::Ports, id)
            .await?
            .ok_or_else(|| Error::port_not_found(id))?;
        let held = !port.device_id.is_empty() && port.device_id != device_id;
        if held || port.is_l3_owned() || port.device_owner == DHCP_OWNER {
            return Err(Error::conflict(
                "PortInUse",
                format!("Port {id} is still in use."),
            ));
        }
        port.device_id = device_id.to_owned();
        port.device_owner = device_owner.to_owned();
        let previous = touch(&mut port.std);
        store::update_port(&mut tx, &port, previous).await?;
        tx.commit().await?;
        self.changed();
        Ok(port)
    }

    pub async fn delete_port(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("delete_port")?;
        let port = self.get_port(caller, id).await?;
        if port.device_owner == DHCP_OWNER && !caller.admin {
            return Err(Error::Policy("rule:delete_port:device_owner".into()));
        }
        if port.is_l3_owned() {
            return Err(Error::conflict(
                "ServicePortInUse",
                format!(
                    "Port {id} cannot be deleted directly via the port API: has device owner {}.",
                    port.device_owner
                ),
            ));
        }
        let mut tx = store::begin_write(&self.pool).await?;
        self.release_floating_ips(&mut tx, id).await?;
        store::delete_requested(&mut tx, Table::Ports, id, Error::port_not_found).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }
}
