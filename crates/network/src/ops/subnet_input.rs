//! What the subnet operations are asked to do, typed: read from a request body by
//! `api::subnets`. The operations check the values against each other and the network.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{AllocationPool, HostRoute};

/// A subnet to make.
#[derive(Debug)]
pub struct NewSubnet {
    /// Another project than the network's (admins only).
    pub project_id: Option<String>,
    pub network_id: String,
    /// 4 or 6.
    pub ip_version: u8,
    /// In its canonical form (no host bits).
    pub cidr: IpNet,
    pub name: String,
    pub description: String,
    /// `None`: the first host address; `Some(None)`: no gateway.
    pub gateway_ip: Option<Option<IpAddr>>,
    /// `None`: the whole range less the gateway.
    pub allocation_pools: Option<Vec<AllocationPool>>,
    pub dns_nameservers: Option<Vec<IpAddr>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// The changes to a subnet; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct SubnetUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` removes the gateway.
    pub gateway_ip: Option<Option<IpAddr>>,
    pub allocation_pools: Option<Vec<AllocationPool>>,
    pub dns_nameservers: Option<Vec<IpAddr>>,
    pub host_routes: Option<Vec<HostRoute>>,
    pub enable_dhcp: Option<bool>,
}
