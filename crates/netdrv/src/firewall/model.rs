//! What the agent asks for: the ports with port security on, and their security groups.

use std::net::IpAddr;

use ipnet::IpNet;

/// Everything one host filters. Ports not listed (port security off) are not filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub ports: Vec<PortFilter>,
    pub groups: Vec<GroupFilter>,
    /// The conntrack zone of each network's bridge: connections are tracked per network,
    /// so one network's connection is never `established` on another (tenants' addresses
    /// overlap). Zones are 1..=65535 and no two bridges share one.
    pub zones: Vec<Zone>,
}

/// A network's bridge and its conntrack zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub bridge: String,
    pub zone: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortFilter {
    /// The port's host-side device (`ostp-...`).
    pub device: String,
    /// The bridge of the port's network (`osbr-...`): the table dispatches only traffic on
    /// its own cloud's bridges, so two clouds' rules on one host never meet.
    pub bridge: String,
    /// The port's own MAC(s): it may send from them with `addresses` and its EUI-64
    /// link-local address.
    pub macs: Vec<String>,
    /// The port's fixed IPs (/32, /128), its source addresses with `macs`.
    pub addresses: Vec<IpNet>,
    /// Allowed address pairs: an address or prefix usable only from its own MAC (which may
    /// be one of `macs` or another), with that MAC's link-local address.
    pub pairs: Vec<(String, IpNet)>,
    /// Security group ids.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    pub id: String,
    /// Fixed IPs of all ports in the group, on every host (for remote-group rules).
    pub members: Vec<IpAddr>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub direction: Direction,
    pub ethertype: EtherType,
    /// IP protocol number; `None` matches any protocol.
    pub protocol: Option<u8>,
    /// Destination port range for TCP/UDP/SCTP/DCCP/UDP-Lite; ICMP type for ICMP.
    pub port_min: Option<u16>,
    /// End of the port range; ICMP code for ICMP.
    pub port_max: Option<u16>,
    pub remote: Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Traffic to the port.
    Ingress,
    /// Traffic leaving the port.
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtherType {
    V4,
    V6,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Any,
    Prefix(IpNet),
    /// Members of this security group (by id).
    Group(String),
}
