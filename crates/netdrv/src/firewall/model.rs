//! What the agent asks for: the ports with port security on, and their security groups.

use std::net::IpAddr;

use ipnet::IpNet;

/// Everything one host filters. Ports not listed (port security off) are not filtered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub ports: Vec<PortFilter>,
    pub groups: Vec<GroupFilter>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortFilter {
    /// The port's host-side device (`ostp-...`).
    pub device: String,
    /// MACs the port may send from (its own and allowed address pairs').
    pub macs: Vec<String>,
    /// Source addresses it may use: fixed IPs (/32, /128) and allowed address pairs (any
    /// prefix).
    pub addresses: Vec<IpNet>,
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
