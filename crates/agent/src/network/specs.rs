//! What the desired state means for this host, in the terms of `netdrv`: the DHCP server of
//! a network, the security-group ruleset, a router's namespace and where the metadata
//! service listens. Pure functions: no host access.

use std::net::IpAddr;

use ipnet::IpNet;
use onestack_netdrv::firewall::{
    self, Direction, EtherType, GroupFilter, PortFilter, Remote, Ruleset, Zone,
};
use onestack_netdrv::router::{self as l3, RouterSpec};
use onestack_netdrv::{dhcp, names};
use onestack_network::desired::{GroupPlan, HostState, NetworkPlan, RouterPlan};
use onestack_network::model::{Port, protocol_number};

use crate::metadata::Scope;

pub(super) fn dhcp_network(plan: &NetworkPlan, port: &Port, lease_secs: u32) -> dhcp::DhcpNetwork {
    let subnets: Vec<_> = plan
        .subnets
        .iter()
        .filter(|s| s.enable_dhcp && s.ip_version == 4)
        .collect();
    let addresses = port
        .fixed_ips
        .iter()
        .filter_map(|f| {
            let subnet = subnets.iter().find(|s| s.id == f.subnet_id)?;
            IpNet::new(f.ip_address, subnet.cidr.prefix_len()).ok()
        })
        .collect();
    let hosts = plan
        .all_ports
        .iter()
        .filter(|p| p.id != port.id)
        .flat_map(|p| {
            p.fixed_ips
                .iter()
                .filter(|f| subnets.iter().any(|s| s.id == f.subnet_id))
                .map(move |f| dhcp::DhcpHost {
                    mac: p.mac_address.clone(),
                    ip: f.ip_address,
                    hostname: format!("host-{}", f.ip_address.to_string().replace(['.', ':'], "-")),
                })
        })
        .collect();
    dhcp::DhcpNetwork {
        network_id: plan.network.id.clone(),
        mtu: plan.network.mtu,
        addresses,
        mac: port.mac_address.clone(),
        subnets: subnets
            .iter()
            .map(|s| dhcp::DhcpSubnet {
                id: s.id.clone(),
                cidr: s.cidr,
                gateway: s.gateway_ip,
                dns: s.dns_nameservers.clone(),
                routes: s
                    .host_routes
                    .iter()
                    .map(|r| (r.destination, r.nexthop))
                    .collect(),
                lease_secs,
            })
            .collect(),
        hosts,
        metadata: false,
    }
}

/// The security-group ruleset for the ports bound here.
pub(super) fn ruleset(state: &HostState) -> Ruleset {
    let ports = state
        .networks
        .iter()
        .flat_map(|plan| {
            let bridge = names::bridge(&plan.network.id);
            plan.local_ports.iter().map(move |p| (p, bridge.clone()))
        })
        .filter(|(p, _)| p.port_security_enabled)
        .map(|(p, bridge)| {
            // Each allowed address pair's address goes with its own MAC only.
            let pairs = p
                .allowed_address_pairs
                .iter()
                .filter_map(|pair| {
                    let net = pair
                        .ip_address
                        .parse::<IpNet>()
                        .or_else(|_| pair.ip_address.parse::<IpAddr>().map(IpNet::from))
                        .ok()?;
                    Some((pair.mac_address.clone(), net.trunc()))
                })
                .collect();
            PortFilter {
                device: names::port(&p.id),
                bridge,
                macs: vec![p.mac_address.clone()],
                addresses: p
                    .fixed_ips
                    .iter()
                    .map(|f| IpNet::from(f.ip_address))
                    .collect(),
                pairs,
                groups: p.security_groups.clone(),
            }
        })
        .collect();
    let groups = state.groups.iter().map(group_filter).collect();
    // One conntrack zone per network, keyed by its bridge.
    let zones = state
        .networks
        .iter()
        .filter_map(|plan| {
            Some(Zone {
                bridge: names::bridge(&plan.network.id),
                zone: plan.network.conntrack_zone?,
            })
        })
        .collect();
    Ruleset {
        ports,
        groups,
        zones,
    }
}

fn group_filter(plan: &GroupPlan) -> GroupFilter {
    let rules = plan
        .rules
        .iter()
        .map(|r| {
            let protocol = protocol_number(r.protocol.as_deref());
            firewall::Rule {
                direction: if r.direction == "ingress" {
                    Direction::Ingress
                } else {
                    Direction::Egress
                },
                ethertype: if r.ethertype == "IPv6" {
                    EtherType::V6
                } else {
                    EtherType::V4
                },
                protocol,
                port_min: r.port_range_min.and_then(|p| u16::try_from(p).ok()),
                port_max: r.port_range_max.and_then(|p| u16::try_from(p).ok()),
                remote: match (&r.remote_ip_prefix, &r.remote_group_id) {
                    (Some(prefix), _) => Remote::Prefix(prefix.trunc()),
                    (None, Some(group)) => Remote::Group(group.clone()),
                    (None, None) => Remote::Any,
                },
            }
        })
        .collect();
    GroupFilter {
        id: plan.group.id.clone(),
        members: plan.members.clone(),
        rules,
    }
}

/// What a router's namespace must hold: its interfaces on the tenant bridges (gateway
/// addresses), its gateway on the external bridge with the floating addresses, SNAT when
/// enabled, and the static routes.
pub(super) fn router_spec(plan: &RouterPlan, state: &HostState) -> RouterSpec {
    let mtu = |network_id: &str| {
        state
            .networks
            .iter()
            .find(|n| n.network.id == network_id)
            .map_or(1500, |n| n.network.mtu)
    };
    let router_port = |port: &Port, subnets: &[onestack_network::model::Subnet]| l3::RouterPort {
        port_id: port.id.clone(),
        bridge: names::bridge(&port.network_id),
        mac: port.mac_address.clone(),
        mtu: mtu(&port.network_id),
        addresses: port
            .fixed_ips
            .iter()
            .filter_map(|f| {
                let subnet = subnets.iter().find(|s| s.id == f.subnet_id)?;
                IpNet::new(f.ip_address, subnet.cidr.prefix_len()).ok()
            })
            .collect(),
    };
    let gateway = plan.gateway.as_ref().map(|(port, subnets)| {
        let default_route = subnets
            .iter()
            .filter(|s| s.ip_version == 4)
            .find_map(|s| s.gateway_ip);
        let floating = plan
            .floating_ips
            .iter()
            .filter_map(|f| match (f.floating_ip_address, f.fixed_ip_address?) {
                (IpAddr::V4(floating), IpAddr::V4(fixed)) => Some((floating, fixed)),
                _ => None,
            })
            .collect();
        l3::Gateway {
            port: router_port(port, subnets),
            default_route,
            snat: plan.router.gateway.as_ref().is_some_and(|g| g.enable_snat),
            floating,
        }
    });
    RouterSpec {
        router_id: plan.router.id.clone(),
        interfaces: plan
            .interfaces
            .iter()
            .map(|(p, subnets)| router_port(p, subnets))
            .collect(),
        gateway,
        routes: plan
            .router
            .routes
            .iter()
            .map(|r| (r.destination, r.nexthop))
            .collect(),
        metadata: !plan.interfaces.is_empty(),
    }
}

/// Where the metadata service listens: each router namespace with interfaces (for the
/// subnets on the router), and the DHCP namespace of each network no router serves.
pub(super) fn metadata_scopes(state: &HostState) -> Vec<Scope> {
    let subnets_of = |port: &Port| -> Vec<String> {
        port.fixed_ips.iter().map(|f| f.subnet_id.clone()).collect()
    };
    let routers = state
        .routers
        .iter()
        .filter(|p| !p.interfaces.is_empty())
        .map(|p| Scope {
            namespace: names::router_namespace(&p.router.id),
            subnets: p
                .interfaces
                .iter()
                .flat_map(|(port, _)| subnets_of(port))
                .collect(),
        });
    let isolated = state.networks.iter().filter(|p| !p.routed).filter_map(|p| {
        Some(Scope {
            namespace: names::dhcp_namespace(&p.network.id),
            subnets: subnets_of(p.dhcp_port.as_ref()?),
        })
    });
    routers.chain(isolated).collect()
}
