//! What one host must build, read from the database: the agent's view of desired state.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use onestack_db::Pool;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{DHCP_OWNER, FloatingIp, Network, Port, Router, Rule, SecurityGroup, Subnet};
use crate::store::{self, Table};

/// One network as this host sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkPlan {
    pub network: Network,
    pub subnets: Vec<Subnet>,
    /// Ports bound to this host (the DHCP port excepted).
    pub local_ports: Vec<Port>,
    /// The network's DHCP port when this host serves DHCP for it.
    pub dhcp_port: Option<Port>,
    /// Every port of the network, for the DHCP server's host list.
    pub all_ports: Vec<Port>,
    /// MACs of ports bound to other hosts, with those hosts' tunnel addresses.
    pub remote_macs: Vec<(String, IpAddr)>,
    /// The tunnel addresses of the other hosts with ports on this network: its broadcasts
    /// go there, and to no other host.
    pub flood: Vec<IpAddr>,
    /// Some router (on whichever host) has an interface here, and so serves its metadata.
    pub routed: bool,
}

/// A security group some local port uses, with the addresses of all its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupPlan {
    pub group: SecurityGroup,
    pub rules: Vec<Rule>,
    pub members: Vec<IpAddr>,
}

/// A router whose ports are bound to this host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterPlan {
    pub router: Router,
    /// Interface ports with the subnets they hold the gateway of.
    pub interfaces: Vec<(Port, Vec<Subnet>)>,
    /// The gateway port with its subnets, when the router has a gateway.
    pub gateway: Option<(Port, Vec<Subnet>)>,
    /// Floating IPs the router carries (associated ones only).
    pub floating_ips: Vec<FloatingIp>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostState {
    pub networks: Vec<NetworkPlan>,
    pub routers: Vec<RouterPlan>,
    pub groups: Vec<GroupPlan>,
}

impl HostState {
    /// What a joined host is told: only the networks it has a port, DHCP server or router
    /// port on, and each network's full port list only where it serves DHCP. A joined
    /// host is not trusted like a controller: it learns no more of other tenants than it
    /// needs to build its own ports.
    pub fn for_joined_host(mut self) -> Self {
        let routed_here: BTreeSet<String> = self
            .routers
            .iter()
            .flat_map(|r| r.interfaces.iter().chain(r.gateway.iter()))
            .map(|(p, _)| p.network_id.clone())
            .collect();
        self.networks.retain(|plan| {
            !plan.local_ports.is_empty()
                || plan.dhcp_port.is_some()
                || routed_here.contains(&plan.network.id)
        });
        for plan in &mut self.networks {
            if plan.dhcp_port.is_none() {
                plan.all_ports.clear();
            }
        }
        self
    }
}

/// A port is plugged in on the host it is bound to, and on the host its guest is moving to
/// by live migration (the new host's guest needs its tap before it runs).
fn plugged_here(port: &Port, host: &str) -> bool {
    port.host_id == host
        || port
            .profile
            .get(crate::ops::guests::MIGRATING_TO)
            .and_then(|h| h.as_str())
            == Some(host)
}

/// Every host's underlay address, as its agent last reported it.
async fn tunnel_addresses(pool: &Pool) -> Result<HashMap<String, IpAddr>> {
    Ok(store::hosts(pool)
        .await?
        .into_iter()
        .filter_map(|(h, ip)| Some((h, ip?.parse().ok()?)))
        .collect())
}

/// Desired state for `host`.
pub async fn for_host(pool: &Pool, host: &str) -> Result<HostState> {
    let networks: Vec<Network> = store::list(pool, Table::Networks, None).await?;
    let subnets: Vec<Subnet> = store::list(pool, Table::Subnets, None).await?;
    let ports: Vec<Port> = store::list(pool, Table::Ports, None).await?;
    let tunnels = tunnel_addresses(pool).await?;

    let routers: Vec<Router> = store::list(pool, Table::Routers, None).await?;
    // Networks some router (on whichever host) has an interface on, by the routers' own
    // records: that router's namespace serves their metadata.
    let routed_networks: BTreeSet<&str> = routers
        .iter()
        .flat_map(|r| r.interface_ports(&ports))
        .map(|p| p.network_id.as_str())
        .collect();

    let mut used_groups: BTreeSet<String> = BTreeSet::new();
    let plans = networks
        .into_iter()
        .map(|network| {
            let mine: Vec<Port> = ports
                .iter()
                .filter(|p| p.network_id == network.id)
                .cloned()
                .collect();
            let local_ports: Vec<Port> = mine
                .iter()
                .filter(|p| {
                    plugged_here(p, host) && p.device_owner != DHCP_OWNER && !p.is_l3_owned()
                })
                .cloned()
                .collect();
            for p in &local_ports {
                if p.port_security_enabled {
                    used_groups.extend(p.security_groups.iter().cloned());
                }
            }
            let dhcp_id = format!("dhcp-{}", network.id);
            let dhcp_port = mine
                .iter()
                .find(|p| {
                    p.device_owner == DHCP_OWNER && p.device_id == dhcp_id && p.host_id == host
                })
                .cloned();
            let remote_macs = mine
                .iter()
                .filter(|p| !p.host_id.is_empty() && p.host_id != host)
                .filter_map(|p| Some((p.mac_address.clone(), *tunnels.get(&p.host_id)?)))
                .collect();
            let flood: BTreeSet<IpAddr> = mine
                .iter()
                .filter(|p| !p.host_id.is_empty() && p.host_id != host)
                .filter_map(|p| tunnels.get(&p.host_id).copied())
                .collect();
            NetworkPlan {
                routed: routed_networks.contains(network.id.as_str()),
                subnets: subnets
                    .iter()
                    .filter(|s| s.network_id == network.id)
                    .cloned()
                    .collect(),
                network,
                local_ports,
                dhcp_port,
                all_ports: mine,
                remote_macs,
                flood: flood.into_iter().collect(),
            }
        })
        .collect();

    let all_groups: Vec<SecurityGroup> = store::list(pool, Table::SecurityGroups, None).await?;
    let rules: Vec<Rule> = store::list(pool, Table::Rules, None).await?;
    // Groups named as remote groups by the used groups' rules need member sets too.
    let mut wanted = used_groups.clone();
    for r in rules
        .iter()
        .filter(|r| used_groups.contains(&r.security_group_id))
    {
        if let Some(remote) = &r.remote_group_id {
            wanted.insert(remote.clone());
        }
    }
    let groups = all_groups
        .into_iter()
        .filter(|g| wanted.contains(&g.id))
        .map(|group| {
            let members = ports
                .iter()
                .filter(|p| p.security_groups.contains(&group.id))
                .flat_map(|p| p.fixed_ips.iter().map(|f| f.ip_address))
                .collect();
            let rules = if used_groups.contains(&group.id) {
                rules
                    .iter()
                    .filter(|r| r.security_group_id == group.id)
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            GroupPlan {
                group,
                rules,
                members,
            }
        })
        .collect();
    let routers = routers_for_host(pool, host, routers, &ports, &subnets).await?;
    Ok(HostState {
        networks: plans,
        routers,
        groups,
    })
}

async fn routers_for_host(
    pool: &Pool,
    host: &str,
    routers: Vec<Router>,
    ports: &[Port],
    subnets: &[Subnet],
) -> Result<Vec<RouterPlan>> {
    let fips: Vec<FloatingIp> = store::list(pool, Table::FloatingIps, None).await?;
    let with_subnets = |p: &Port| {
        let held = subnets
            .iter()
            .filter(|s| p.fixed_ips.iter().any(|f| f.subnet_id == s.id))
            .cloned()
            .collect();
        (p.clone(), held)
    };
    Ok(routers
        .into_iter()
        .filter_map(|router| {
            // Interfaces as the router's record names them: a port that only claims the
            // router (its device_id) never gets into the router's namespace.
            let interfaces: Vec<(Port, Vec<Subnet>)> = router
                .interface_ports(ports)
                .filter(|p| p.host_id == host)
                .map(with_subnets)
                .collect();
            let gateway = router
                .gateway
                .as_ref()
                .and_then(|g| ports.iter().find(|p| p.id == g.port_id))
                .filter(|p| p.host_id == host)
                .map(with_subnets);
            if interfaces.is_empty() && gateway.is_none() {
                return None;
            }
            let floating_ips = fips
                .iter()
                .filter(|f| f.router_id.as_deref() == Some(router.id.as_str()))
                .cloned()
                .collect();
            Some(RouterPlan {
                router,
                interfaces,
                gateway,
                floating_ips,
            })
        })
        .collect())
}

/// What an agent reports the status of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reported {
    Port,
    FloatingIp,
}

/// An agent reports that it runs on `host`, reachable for VXLAN at `tunnel_ip`. Returns
/// whether its tunnel address is new or changed (the other hosts' forwarding entries then
/// change with it).
pub async fn heartbeat(pool: &Pool, host: &str, tunnel_ip: Option<&str>, now: i64) -> Result<bool> {
    let before = store::hosts(pool)
        .await?
        .into_iter()
        .find(|(h, _)| h == host)
        .and_then(|(_, ip)| ip);
    store::heartbeat(pool, host, tunnel_ip, now).await?;
    Ok(before.as_deref() != tunnel_ip)
}

/// Whether `host` carries the port or floating IP `id`, so that its agent may report its
/// status: the port is bound to it, or the floating IP's router has its gateway there.
pub async fn host_carries(pool: &Pool, host: &str, what: Reported, id: &str) -> Result<bool> {
    let bound_here = |port: Option<Port>| port.is_some_and(|p| p.host_id == host);
    match what {
        Reported::Port => Ok(bound_here(store::get(pool, Table::Ports, id).await?)),
        Reported::FloatingIp => {
            let fip: Option<FloatingIp> = store::get(pool, Table::FloatingIps, id).await?;
            let Some(router_id) = fip.and_then(|f| f.router_id) else {
                return Ok(false);
            };
            let router: Option<Router> = store::get(pool, Table::Routers, &router_id).await?;
            let Some(gateway) = router.and_then(|r| r.gateway) else {
                return Ok(false);
            };
            Ok(bound_here(
                store::get(pool, Table::Ports, &gateway.port_id).await?,
            ))
        }
    }
}

/// Whether `ip` may be a joined host's tunnel address: a unicast address that no other
/// host holds (a host claiming another's would draw that host's tenant traffic).
pub async fn tunnel_address_free(pool: &Pool, host: &str, ip: IpAddr) -> Result<bool> {
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if special {
        return Ok(false);
    }
    let wanted = ip.to_string();
    Ok(!store::hosts(pool)
        .await?
        .into_iter()
        .any(|(h, held)| h != host && held.as_deref() == Some(wanted.as_str())))
}

/// An agent reports a port or floating IP `ACTIVE` (carried on its host) or `DOWN`.
pub async fn report_status(pool: &Pool, what: Reported, id: &str, active: bool) -> Result<()> {
    let table = match what {
        Reported::Port => Table::Ports,
        Reported::FloatingIp => Table::FloatingIps,
    };
    let status = if active { "ACTIVE" } else { "DOWN" };
    store::set_status(pool, table, id, status).await
}
