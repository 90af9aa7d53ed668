//! Version discovery and the extension list: only what really works is listed.

use axum::Json;
use axum::extract::Path;
use onestack_api::{ApiError, AuthContext, BaseUrl};
use serde_json::{Value, json};

/// (alias, name, description) of each extension served.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("agent", "agent", "The agent management extension."),
    (
        "security-group",
        "security-group",
        "The security groups extension.",
    ),
    ("port-security", "Port Security", "Provides port security"),
    (
        "allowed-address-pairs",
        "Allowed Address Pairs",
        "Provides allowed address pairs",
    ),
    (
        "provider",
        "Provider Network",
        "Expose mapping of virtual networks to physical networks",
    ),
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    (
        "router",
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.",
    ),
    (
        "ext-gw-mode",
        "Neutron L3 Configurable external gateway mode",
        "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
    ),
    (
        "extraroute",
        "Neutron Extra Route",
        "Extra routes configuration for L3 router",
    ),
    (
        "fip-port-details",
        "Floating IP Port Details Extension",
        "Add port_details attribute to Floating IP resource",
    ),
    (
        "quotas",
        "Quota management support",
        "Expose functions for quotas management per project",
    ),
    (
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip",
        "Enables to set tag on resources with standard attribute.",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "binding",
        "Port Binding",
        "Expose port bindings of a virtual port to external application",
    ),
    (
        "network-ip-availability",
        "Network IP Availability",
        "Provides IP availability data for each network and subnet.",
    ),
    (
        "net-mtu",
        "Network MTU",
        "Provides MTU attribute for a network resource.",
    ),
    (
        "net-mtu-writable",
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
    ),
    (
        "project-id",
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
    ),
    (
        "pagination",
        "Pagination support",
        "Extension that indicates that pagination is enabled.",
    ),
    (
        "sorting",
        "Sorting support",
        "Extension that indicates that sorting is enabled.",
    ),
    (
        "fields",
        "fields",
        "Extension that indicates that fields query parameter is supported.",
    ),
];

fn extension_view(alias: &str, name: &str, description: &str) -> Value {
    json!({"alias": alias, "name": name, "description": description, "updated": "2026-11-23T00:00:00-00:00", "links": []})
}

pub async fn versions(BaseUrl(base): BaseUrl) -> Json<Value> {
    Json(json!({"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": format!("{base}/networking/v2.0/"), "rel": "self"}],
    }]}))
}

/// Neutron serves everything below `/v2.0` to authenticated callers only.
pub async fn resources(_caller: AuthContext, BaseUrl(base): BaseUrl) -> Json<Value> {
    let items: Vec<Value> = [
        ("network", "networks"),
        ("subnet", "subnets"),
        ("port", "ports"),
        ("security_group", "security-groups"),
        ("security_group_rule", "security-group-rules"),
        ("quota", "quotas"),
        ("network_ip_availability", "network-ip-availabilities"),
        ("extension", "extensions"),
    ]
    .iter()
    .map(|(name, collection)| {
        json!({"name": name, "collection": collection,
               "links": [{"href": format!("{base}/networking/v2.0/{collection}"), "rel": "self"}]})
    })
    .collect();
    Json(json!({"resources": items}))
}

pub async fn extensions(_caller: AuthContext) -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(a, n, d)| extension_view(a, n, d))
        .collect();
    Json(json!({"extensions": list}))
}

pub async fn extension(
    _caller: AuthContext,
    Path(alias): Path<String>,
) -> Result<Json<Value>, ApiError> {
    EXTENSIONS
        .iter()
        .find(|(a, _, _)| *a == alias)
        .map(|(a, n, d)| Json(json!({"extension": extension_view(a, n, d)})))
        .ok_or_else(|| {
            ApiError::not_found(format!("Extension with alias {alias} does not exist"))
                .with_kind("ExtensionNotFound")
        })
}
