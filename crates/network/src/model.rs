//! The stored documents: what the database holds for each resource, typed.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Attributes every Neutron resource carries (the `standard-attr-*` extensions).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Standard {
    pub tags: Vec<String>,
    pub revision_number: i64,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mtu: u32,
    pub shared: bool,
    pub external: bool,
    pub segment: Segment,
    pub port_security_enabled: bool,
    pub status: String,
    /// The network's conntrack zone on every host (1..=65535, no two networks share one):
    /// a connection tracked on one network is never taken for another's, whatever the
    /// addresses. `None` only in records from before zones, until the agent's first pass
    /// gives them one (`Networks::assign_conntrack_zones`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack_zone: Option<u16>,
    #[serde(flatten)]
    pub std: Standard,
}

/// Where a network's traffic goes on the wire (Neutron's provider attributes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// `vxlan`, `flat`, `vlan` or `local`.
    pub network_type: String,
    pub physical_network: Option<String>,
    pub segmentation_id: Option<u32>,
}

impl Segment {
    /// The key that makes a segment exclusive to one network, if it is exclusive.
    pub fn key(&self) -> Option<String> {
        let physnet = self.physical_network.as_deref().unwrap_or("");
        match (self.network_type.as_str(), self.segmentation_id) {
            ("vxlan", Some(vni)) => Some(format!("vxlan:{vni}")),
            ("vlan", Some(vid)) => Some(format!("vlan:{physnet}:{vid}")),
            ("flat", _) => Some(format!("flat:{physnet}")),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    pub start: IpAddr,
    pub end: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub ip_version: u8,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub allocation_pools: Vec<AllocationPool>,
    pub dns_nameservers: Vec<IpAddr>,
    pub host_routes: Vec<HostRoute>,
    pub enable_dhcp: bool,
    pub ipv6_ra_mode: Option<String>,
    pub ipv6_address_mode: Option<String>,
    #[serde(flatten)]
    pub std: Standard,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: String,
    pub ip_address: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPair {
    /// An address or a CIDR, as the client gave it.
    pub ip_address: String,
    pub mac_address: String,
}

/// `device_owner` of the port that serves DHCP on a network.
pub const DHCP_OWNER: &str = "network:dhcp";
/// `device_owner` of a router's port on a tenant subnet (it holds the subnet's gateway).
pub const ROUTER_INTERFACE_OWNER: &str = "network:router_interface";
/// `device_owner` of a router's port on its external network.
pub const ROUTER_GATEWAY_OWNER: &str = "network:router_gateway";
/// `device_owner` of the port that holds a floating IP's address.
pub const FLOATING_IP_OWNER: &str = "network:floatingip";

/// A router: interfaces and gateway are ports whose `device_id` is the router's id, and
/// the router's own record names them (`gateway.port_id`, `interfaces`): that record, not a
/// port's `device_id`, is what the data plane and floating IPs go by.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Router {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub status: String,
    pub gateway: Option<RouterGateway>,
    /// Static routes (`extraroute`).
    pub routes: Vec<HostRoute>,
    /// The interface ports `add_router_interface` made or took, by id. `None` only in
    /// records written before the list existed (see [`Router::interface_ports`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<String>>,
    #[serde(flatten)]
    pub std: Standard,
}

impl Router {
    /// The router's interface ports among `ports`: those its record names that still say
    /// they are its interfaces. A port's `device_id` and `device_owner` alone never make it
    /// one (a port of another project could claim them). Records from before the list
    /// existed fall back to the ports of the router's own project that claim it.
    pub fn interface_ports<'a>(&'a self, ports: &'a [Port]) -> impl Iterator<Item = &'a Port> {
        ports.iter().filter(move |p| {
            let claims = p.device_id == self.id && p.device_owner == ROUTER_INTERFACE_OWNER;
            let recorded = match &self.interfaces {
                Some(ids) => ids.contains(&p.id),
                None => p.project_id == self.project_id,
            };
            claims && recorded
        })
    }

    /// Records `port_id` as an interface (from now on the list is authoritative).
    pub fn add_interface(&mut self, port_id: &str, ports: &[Port]) {
        let mut ids: Vec<String> = self.interface_ports(ports).map(|p| p.id.clone()).collect();
        if !ids.iter().any(|i| i == port_id) {
            ids.push(port_id.to_owned());
        }
        self.interfaces = Some(ids);
    }

    /// Forgets `port_id` as an interface.
    pub fn remove_interface(&mut self, port_id: &str, ports: &[Port]) {
        let ids = self
            .interface_ports(ports)
            .map(|p| p.id.clone())
            .filter(|i| i != port_id)
            .collect();
        self.interfaces = Some(ids);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterGateway {
    pub network_id: String,
    pub enable_snat: bool,
    /// The gateway port (owner `network:router_gateway`, no project).
    pub port_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FloatingIp {
    pub id: String,
    pub project_id: String,
    pub floating_network_id: String,
    pub floating_ip_address: IpAddr,
    /// The port on the external network that holds the address.
    pub floating_port_id: String,
    pub description: String,
    /// The port and address it is associated with, and the router that carries it.
    pub port_id: Option<String>,
    pub fixed_ip_address: Option<IpAddr>,
    pub router_id: Option<String>,
    pub status: String,
    #[serde(flatten)]
    pub std: Standard,
}

impl FloatingIp {
    /// The key that lets a fixed address carry one floating IP only.
    pub fn association(&self) -> Option<String> {
        Some(Self::association_of(
            self.port_id.as_ref()?,
            self.fixed_ip_address?,
        ))
    }

    pub fn association_of(port_id: &str, fixed: std::net::IpAddr) -> String {
        format!("{port_id}/{fixed}")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Port {
    pub id: String,
    pub project_id: String,
    pub network_id: String,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mac_address: String,
    pub device_id: String,
    pub device_owner: String,
    pub fixed_ips: Vec<FixedIp>,
    pub security_groups: Vec<String>,
    pub allowed_address_pairs: Vec<AddressPair>,
    pub port_security_enabled: bool,
    /// `binding:host_id`: the host whose agent plugs the port in ("" when unbound).
    pub host_id: String,
    /// `binding:profile`.
    pub profile: Map<String, Value>,
    /// `binding:vnic_type`.
    pub vnic_type: String,
    pub status: String,
    #[serde(flatten)]
    pub std: Standard,
}

impl Port {
    /// Ports the network itself owns (DHCP, router interfaces) rather than a tenant's device.
    pub fn is_network_owned(&self) -> bool {
        self.device_owner.starts_with("network:")
    }

    /// Ports a router or floating IP owns: they are changed through those APIs only.
    pub fn is_l3_owned(&self) -> bool {
        matches!(
            self.device_owner.as_str(),
            ROUTER_INTERFACE_OWNER | ROUTER_GATEWAY_OWNER | FLOATING_IP_OWNER
        )
    }
}

/// Device owners only the service (or an admin) may give a port: the DHCP server's, and
/// every router's or floating IP's (`network:router_interface`, `network:router_gateway`,
/// Neutron's other `network:router_*`/`network:ha_router_*` kinds, `network:floatingip`).
pub fn is_reserved_owner(device_owner: &str) -> bool {
    device_owner == DHCP_OWNER
        || device_owner == FLOATING_IP_OWNER
        || device_owner.starts_with("network:router")
        || device_owner.starts_with("network:ha_router")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub stateful: bool,
    #[serde(flatten)]
    pub std: Standard,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub project_id: String,
    pub security_group_id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// As the client gave it: a name (`tcp`) or a number (`"6"`); `None` is any protocol.
    pub protocol: Option<String>,
    pub port_range_min: Option<u32>,
    pub port_range_max: Option<u32>,
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<String>,
    pub description: String,
    #[serde(flatten)]
    pub std: Standard,
}

/// IP protocol names Neutron accepts, with their numbers.
pub const PROTOCOLS: &[(&str, u8)] = &[
    ("ah", 51),
    ("dccp", 33),
    ("egp", 8),
    ("esp", 50),
    ("gre", 47),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ip", 0),
    ("ipip", 4),
    ("ipv6-encap", 41),
    ("ipv6-frag", 44),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ipv6-route", 43),
    ("ospf", 89),
    ("pgm", 113),
    ("rsvp", 46),
    ("sctp", 132),
    ("tcp", 6),
    ("udp", 17),
    ("udplite", 136),
    ("vrrp", 112),
];

/// The protocol number of a rule's protocol, `None` for any.
pub fn protocol_number(protocol: Option<&str>) -> Option<u8> {
    let p = protocol?;
    if p == "any" {
        return None;
    }
    PROTOCOLS
        .iter()
        .find(|(name, _)| *name == p)
        .map(|(_, n)| *n)
        .or_else(|| p.parse().ok())
}
