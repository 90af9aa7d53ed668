//! What a guest learns about itself, in the formats cloud-init reads: the OpenStack tree
//! (`openstack/latest/meta_data.json`, `network_data.json`, `user_data`,
//! `vendor_data.json`) and the EC2 tree. The config drive carries these files; the metadata
//! service serves the same ones ([`lookup`] maps its paths onto them).

mod tree;

pub use tree::{Found, lookup};

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use onestack_db::Pool;
use onestack_network::ops::guests;
pub use onestack_network::ops::guests::GuestNetworking;
use serde_json::{Value, json};

use crate::error::Result;
use crate::model::Server;
use crate::store;

/// The networking of `server`'s ports, in its NIC order.
pub async fn networking(pool: &Pool, server: &Server) -> Result<GuestNetworking> {
    let port_ids: Vec<String> = server.nics.iter().map(|n| n.port_id.clone()).collect();
    Ok(guests::guest_networking(pool, &port_ids).await?)
}

/// The config drive's files for `server`, with its networking as it is now.
pub async fn config_drive_files(pool: &Pool, server: &Server) -> Result<BTreeMap<String, Vec<u8>>> {
    let net = networking(pool, server).await?;
    Ok(config_drive(server, &net))
}

/// Who is asking: the server whose port holds `source` on one of `subnets` (what the guest
/// cannot forge), with its networking; `None` unless the port is plugged into a server that
/// lists it and both are in one project.
pub async fn identify(
    pool: &Pool,
    subnets: &[String],
    source: IpAddr,
) -> Result<Option<(Server, GuestNetworking)>> {
    let Some(port) = guests::port_holding(pool, subnets, source).await? else {
        return Ok(None);
    };
    if !port.device_owner.starts_with("compute:") || port.device_id.is_empty() {
        return Ok(None);
    }
    let Some(server) = store::server(pool, &port.device_id).await? else {
        return Ok(None);
    };
    let server = server.doc;
    let plugged = server.nics.iter().any(|n| n.port_id == port.id);
    if !plugged || server.project_id != port.project_id {
        return Ok(None);
    }
    let net = networking(pool, &server).await?;
    Ok(Some((server, net)))
}

/// The interface name Nova gives a port's link (`tap` + the first 11 characters of its id).
fn link_id(port_id: &str) -> String {
    format!("tap{}", port_id.chars().take(11).collect::<String>())
}

fn netmask(prefix: u8, v6: bool) -> String {
    if v6 {
        let bits = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(prefix))
        };
        std::net::Ipv6Addr::from(bits).to_string()
    } else {
        let bits = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        std::net::Ipv4Addr::from(bits).to_string()
    }
}

/// `network_data.json`: links, networks (static addresses, or DHCP where the subnet has
/// it on), routes and DNS.
pub fn network_data(net: &GuestNetworking) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut dns: Vec<String> = Vec::new();
    for (port, network, subnets) in &net.ports {
        let link = link_id(&port.id);
        links.push(json!({
            "id": link,
            "vif_id": port.id,
            "type": "bridge",
            "ethernet_mac_address": port.mac_address,
            "mtu": network.mtu,
        }));
        for fixed in &port.fixed_ips {
            let Some(subnet) = subnets.iter().find(|s| s.id == fixed.subnet_id) else {
                continue;
            };
            let index = networks.len();
            let v6 = matches!(fixed.ip_address, IpAddr::V6(_));
            let services: Vec<Value> = subnet
                .dns_nameservers
                .iter()
                .map(|a| json!({"type": "dns", "address": a.to_string()}))
                .collect();
            for a in &subnet.dns_nameservers {
                if !dns.contains(&a.to_string()) {
                    dns.push(a.to_string());
                }
            }
            let mut entry = json!({
                "id": format!("network{index}"),
                "link": link,
                "network_id": network.id,
            });
            if !v6 && subnet.enable_dhcp {
                entry["type"] = json!("ipv4_dhcp");
            } else {
                let kind = match (v6, subnet.ipv6_address_mode.as_deref()) {
                    (false, _) => "ipv4",
                    (true, Some("slaac")) => "ipv6_slaac",
                    (true, Some("dhcpv6-stateful")) => "ipv6_dhcp",
                    (true, Some("dhcpv6-stateless")) => "ipv6_dhcpv6-stateless",
                    (true, _) => "ipv6",
                };
                let mut routes: Vec<Value> = Vec::new();
                if let Some(gw) = subnet.gateway_ip {
                    let any = if v6 { "::" } else { "0.0.0.0" };
                    routes.push(json!({"network": any, "netmask": netmask(0, v6), "gateway": gw.to_string()}));
                }
                for r in &subnet.host_routes {
                    routes.push(json!({
                        "network": r.destination.network().to_string(),
                        "netmask": netmask(r.destination.prefix_len(), v6),
                        "gateway": r.nexthop.to_string(),
                    }));
                }
                entry["type"] = json!(kind);
                entry["ip_address"] = json!(fixed.ip_address.to_string());
                entry["netmask"] = json!(netmask(subnet.cidr.prefix_len(), v6));
                entry["routes"] = json!(routes);
                entry["services"] = json!(services);
            }
            networks.push(entry);
        }
    }
    json!({
        "links": links,
        "networks": networks,
        "services": dns.iter().map(|a| json!({"type": "dns", "address": a})).collect::<Vec<_>>(),
    })
}

/// `meta_data.json` of the OpenStack tree.
pub fn meta_data(server: &Server) -> Value {
    let mut keys = Vec::new();
    let mut public_keys = serde_json::Map::new();
    if let (Some(name), Some(data)) = (&server.key_name, &server.key_data) {
        public_keys.insert(name.clone(), json!(data));
        keys.push(json!({"name": name, "type": "ssh", "data": data}));
    }
    json!({
        "uuid": server.id,
        "name": server.name,
        "hostname": server.hostname,
        "launch_index": server.launch_index,
        "availability_zone": server.availability_zone,
        "project_id": server.project_id,
        "meta": server.metadata,
        "public_keys": public_keys,
        "keys": keys,
        "devices": [],
        "random_seed": STANDARD.encode(rand::random::<[u8; 32]>()),
    })
}

fn ec2_id(prefix: &str, uuid: &str) -> String {
    // Nova derives EC2 ids from an integer id; a stable one from the uuid will do.
    format!("{prefix}-{}", &uuid.replace('-', "")[..8])
}

/// The EC2 tree's `meta-data.json`.
pub fn ec2_meta_data(server: &Server, net: &GuestNetworking) -> Value {
    let local_ipv4 = net
        .ports
        .iter()
        .flat_map(|(p, _, _)| p.fixed_ips.iter())
        .find(|f| f.ip_address.is_ipv4())
        .map(|f| f.ip_address.to_string())
        .unwrap_or_default();
    let public_ipv4 = net
        .floating
        .iter()
        .find(|a| a.is_ipv4())
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut public_keys = serde_json::Map::new();
    if let Some(data) = &server.key_data {
        public_keys.insert("0".into(), json!({"openssh-key": data}));
    }
    json!({
        "ami-id": ec2_id("ami", if server.image_id.is_empty() { &server.id } else { &server.image_id }),
        "ami-launch-index": server.launch_index,
        "ami-manifest-path": "FIXME",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": server.hostname,
        "instance-action": "none",
        "instance-id": ec2_id("i", &server.id),
        "instance-type": server.flavor.name,
        "local-hostname": server.hostname,
        "local-ipv4": local_ipv4,
        "placement": {"availability-zone": server.availability_zone},
        "public-hostname": server.hostname,
        "public-ipv4": public_ipv4,
        "public-keys": public_keys,
        "reservation-id": server.reservation_id,
        "security-groups": server.security_groups,
    })
}

/// The server's user data, decoded.
fn user_data(server: &Server) -> Option<Vec<u8>> {
    server
        .user_data
        .as_deref()
        .and_then(|u| STANDARD.decode(u).ok())
}

/// Every file of the config drive, by path.
pub fn config_drive(server: &Server, net: &GuestNetworking) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let user_data = user_data(server);
    let openstack = [
        ("meta_data.json", meta_data(server).to_string().into_bytes()),
        (
            "network_data.json",
            network_data(net).to_string().into_bytes(),
        ),
        ("vendor_data.json", b"{}".to_vec()),
        ("vendor_data2.json", b"{}".to_vec()),
    ];
    let ec2 = ec2_meta_data(server, net).to_string().into_bytes();
    for version in ["latest", "2018-08-27"] {
        for (name, data) in &openstack {
            files.insert(format!("openstack/{version}/{name}"), data.clone());
        }
        if let Some(u) = &user_data {
            files.insert(format!("openstack/{version}/user_data"), u.clone());
        }
    }
    for version in ["latest", "2009-04-04"] {
        files.insert(format!("ec2/{version}/meta-data.json"), ec2.clone());
        if let Some(u) = &user_data {
            files.insert(format!("ec2/{version}/user-data"), u.clone());
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(netmask(24, false), "255.255.255.0");
        assert_eq!(netmask(0, false), "0.0.0.0");
        assert_eq!(netmask(64, true), "ffff:ffff:ffff:ffff::");
        assert_eq!(link_id("1a2b3c4d-5e6f-7890"), "tap1a2b3c4d-5e");
    }
}
