//! Resources as Neutron shows them. Admin-only attributes (provider, binding details) are
//! left out for other callers.

use serde_json::{Value, json};

use crate::model::{Network, Port, Rule, SecurityGroup, Standard, Subnet};
use crate::ops::floating_ips::FloatingIpView;
use crate::ops::routers::{InterfaceInfo, RouterView};
use crate::policy::Caller;

/// Neutron's timestamp format: `2026-11-23T10:40:52Z`.
pub use onestack_db::timestamps::seconds_utc as timestamp;

fn standard(view: &mut Value, project_id: &str, std: &Standard) {
    view["tenant_id"] = json!(project_id);
    view["project_id"] = json!(project_id);
    view["tags"] = json!(std.tags);
    view["created_at"] = json!(timestamp(std.created_at));
    view["updated_at"] = json!(timestamp(std.updated_at));
    view["revision_number"] = json!(std.revision_number);
}

pub fn network(n: &Network, subnets: &[String], caller: &Caller) -> Value {
    let mut v = json!({
        "id": n.id,
        "name": n.name,
        "description": n.description,
        "admin_state_up": n.admin_state_up,
        "mtu": n.mtu,
        "shared": n.shared,
        "router:external": n.external,
        "port_security_enabled": n.port_security_enabled,
        "status": n.status,
        "subnets": subnets,
        "availability_zone_hints": [],
        "availability_zones": ["nova"],
        "ipv4_address_scope": null,
        "ipv6_address_scope": null,
    });
    if caller.admin {
        v["provider:network_type"] = json!(n.segment.network_type);
        v["provider:physical_network"] = json!(n.segment.physical_network);
        v["provider:segmentation_id"] = json!(n.segment.segmentation_id);
    }
    standard(&mut v, &n.project_id, &n.std);
    v
}

pub fn subnet(s: &Subnet) -> Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "network_id": s.network_id,
        "ip_version": s.ip_version,
        "cidr": s.cidr.to_string(),
        "gateway_ip": s.gateway_ip,
        "allocation_pools": s.allocation_pools,
        "dns_nameservers": s.dns_nameservers,
        "host_routes": s.host_routes,
        "enable_dhcp": s.enable_dhcp,
        "ipv6_ra_mode": s.ipv6_ra_mode,
        "ipv6_address_mode": s.ipv6_address_mode,
        "subnetpool_id": null,
        "service_types": [],
    });
    standard(&mut v, &s.project_id, &s.std);
    v
}

/// Neutron's `binding:vif_type`: what the host plugs the port into.
pub fn vif_type(p: &Port) -> &'static str {
    if p.host_id.is_empty() {
        "unbound"
    } else {
        "bridge"
    }
}

pub fn port(p: &Port, caller: &Caller) -> Value {
    let mut v = json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "network_id": p.network_id,
        "admin_state_up": p.admin_state_up,
        "mac_address": p.mac_address,
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": p.fixed_ips,
        "security_groups": p.security_groups,
        "allowed_address_pairs": p.allowed_address_pairs,
        "port_security_enabled": p.port_security_enabled,
        "status": p.status,
        "binding:vnic_type": p.vnic_type,
    });
    if caller.admin {
        v["binding:host_id"] = json!(p.host_id);
        v["binding:vif_type"] = json!(vif_type(p));
        v["binding:vif_details"] = if p.host_id.is_empty() {
            json!({})
        } else {
            json!({"port_filter": true, "connectivity": "l2"})
        };
        v["binding:profile"] = json!(p.profile);
    }
    standard(&mut v, &p.project_id, &p.std);
    v
}

pub fn rule(r: &Rule) -> Value {
    let normalized = r.remote_ip_prefix.map(|p| p.trunc().to_string());
    let mut v = json!({
        "id": r.id,
        "security_group_id": r.security_group_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix.map(|p| p.to_string()),
        "normalized_cidr": normalized,
        "remote_group_id": r.remote_group_id,
        "remote_address_group_id": null,
        "description": r.description,
    });
    standard(&mut v, &r.project_id, &r.std);
    v
}

pub fn group(g: &SecurityGroup, rules: &[Rule]) -> Value {
    let mut v = json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "stateful": g.stateful,
        "shared": false,
        "security_group_rules": rules.iter().map(rule).collect::<Vec<_>>(),
    });
    standard(&mut v, &g.project_id, &g.std);
    v
}

pub fn router(view: &RouterView, caller: &Caller) -> Value {
    let r = &view.router;
    let gateway = r.gateway.as_ref().map(|g| {
        let ips: Vec<Value> = view
            .gateway_port
            .iter()
            .flat_map(|p| p.fixed_ips.iter())
            .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
            .collect();
        json!({
            "network_id": g.network_id,
            "enable_snat": g.enable_snat,
            "external_fixed_ips": ips,
        })
    });
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "description": r.description,
        "admin_state_up": r.admin_state_up,
        "status": r.status,
        "external_gateway_info": gateway,
        "routes": r.routes,
        "availability_zone_hints": [],
        "availability_zones": ["nova"],
        "flavor_id": null,
    });
    if caller.admin {
        v["distributed"] = json!(false);
        v["ha"] = json!(false);
    }
    standard(&mut v, &r.project_id, &r.std);
    v
}

/// `add_router_interface` / `remove_router_interface` answers.
pub fn router_interface(info: &InterfaceInfo) -> Value {
    let subnets: Vec<&str> = info
        .port
        .fixed_ips
        .iter()
        .map(|f| f.subnet_id.as_str())
        .collect();
    json!({
        "id": info.router.id,
        "tenant_id": info.router.project_id,
        "project_id": info.router.project_id,
        "network_id": info.port.network_id,
        "port_id": info.port.id,
        "subnet_id": subnets.first(),
        "subnet_ids": subnets,
    })
}

pub fn floating_ip(view: &FloatingIpView) -> Value {
    let f = &view.fip;
    let details = view.port.as_ref().map(|p| {
        json!({
            "name": p.name,
            "network_id": p.network_id,
            "mac_address": p.mac_address,
            "admin_state_up": p.admin_state_up,
            "status": p.status,
            "device_id": p.device_id,
            "device_owner": p.device_owner,
        })
    });
    let mut v = json!({
        "id": f.id,
        "floating_network_id": f.floating_network_id,
        "floating_ip_address": f.floating_ip_address,
        "fixed_ip_address": f.fixed_ip_address,
        "port_id": f.port_id,
        "router_id": f.router_id,
        "status": f.status,
        "description": f.description,
        "port_details": details,
        "port_forwardings": [],
        "qos_policy_id": null,
        "dns_domain": "",
        "dns_name": "",
    });
    standard(&mut v, &f.project_id, &f.std);
    v
}
