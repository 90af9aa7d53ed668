//! The policy table: who may call each route, as Keystone's, Nova's, Neutron's and Glance's
//! default policies say (docs/policy.md is this table in prose). Every route the server
//! mounts must have a row, and every row a mounted route, so a route added later fails
//! [`each_role_gets_what_the_policy_table_says`] until someone decides who may call it.
//!
//! Each route is called with a request that would succeed for the right caller (alice's
//! real ids in the path, a valid body): a reader's write and a member's admin-only call are
//! then refused by policy (403), not by a missing resource or a bad body.

use std::collections::{BTreeSet, HashMap};

use onestack::openapi::examples;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::world::{alice_world, fill};
use crate::common::Cloud;
use crate::compute;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// No token needed: version discovery and token issue.
    Public,
    /// Any valid token; what the caller sees or makes is their own (keypairs, credentials
    /// lists, the token's own catalog).
    Token,
    /// Any role on the project that owns the target (reads).
    Reader,
    /// The member role on the project that owns the target (writes).
    Member,
    /// The user the path names, and admins (a user's credentials and password).
    Owner,
    /// The admin role (on the admin project or the system).
    Admin,
}

use Rule::*;

pub const POLICY: &[(&str, &str, Rule)] = &[
    // Compute: Nova's defaults (nova/policies/*.py).
    ("GET", "/compute", Public),
    ("GET", "/compute/openapi.json", Public),
    ("GET", "/compute/v2.1", Public),
    ("GET", "/compute/v2.1/flavors", Token),
    ("POST", "/compute/v2.1/flavors", Admin),
    ("GET", "/compute/v2.1/flavors/detail", Token),
    ("GET", "/compute/v2.1/flavors/{id}", Token),
    ("PUT", "/compute/v2.1/flavors/{id}", Admin),
    ("DELETE", "/compute/v2.1/flavors/{id}", Admin),
    ("POST", "/compute/v2.1/flavors/{id}/action", Admin),
    ("GET", "/compute/v2.1/flavors/{id}/os-extra_specs", Reader),
    ("POST", "/compute/v2.1/flavors/{id}/os-extra_specs", Admin),
    (
        "GET",
        "/compute/v2.1/flavors/{id}/os-extra_specs/{key}",
        Reader,
    ),
    (
        "PUT",
        "/compute/v2.1/flavors/{id}/os-extra_specs/{key}",
        Admin,
    ),
    (
        "DELETE",
        "/compute/v2.1/flavors/{id}/os-extra_specs/{key}",
        Admin,
    ),
    ("GET", "/compute/v2.1/flavors/{id}/os-flavor-access", Admin),
    ("GET", "/compute/v2.1/limits", Reader),
    ("GET", "/compute/v2.1/os-availability-zone", Token),
    ("GET", "/compute/v2.1/os-availability-zone/detail", Admin),
    ("GET", "/compute/v2.1/os-hypervisors", Admin),
    ("GET", "/compute/v2.1/os-hypervisors/detail", Admin),
    ("GET", "/compute/v2.1/os-hypervisors/{id}", Admin),
    ("GET", "/compute/v2.1/os-keypairs", Token),
    ("POST", "/compute/v2.1/os-keypairs", Token),
    ("GET", "/compute/v2.1/os-keypairs/{name}", Owner),
    ("DELETE", "/compute/v2.1/os-keypairs/{name}", Owner),
    ("GET", "/compute/v2.1/os-quota-sets/{project}", Reader),
    ("PUT", "/compute/v2.1/os-quota-sets/{project}", Admin),
    ("DELETE", "/compute/v2.1/os-quota-sets/{project}", Admin),
    (
        "GET",
        "/compute/v2.1/os-quota-sets/{project}/defaults",
        Token,
    ),
    (
        "GET",
        "/compute/v2.1/os-quota-sets/{project}/detail",
        Reader,
    ),
    ("GET", "/compute/v2.1/os-server-groups", Reader),
    ("POST", "/compute/v2.1/os-server-groups", Member),
    ("GET", "/compute/v2.1/os-server-groups/{id}", Reader),
    ("DELETE", "/compute/v2.1/os-server-groups/{id}", Member),
    ("GET", "/compute/v2.1/os-aggregates", Admin),
    ("POST", "/compute/v2.1/os-aggregates", Admin),
    ("GET", "/compute/v2.1/os-aggregates/{id}", Admin),
    ("PUT", "/compute/v2.1/os-aggregates/{id}", Admin),
    ("DELETE", "/compute/v2.1/os-aggregates/{id}", Admin),
    ("POST", "/compute/v2.1/os-aggregates/{id}/action", Admin),
    ("GET", "/compute/v2.1/os-services", Admin),
    ("PUT", "/compute/v2.1/os-services/{id}", Admin),
    ("DELETE", "/compute/v2.1/os-services/{id}", Admin),
    ("GET", "/compute/v2.1/os-simple-tenant-usage", Admin),
    (
        "GET",
        "/compute/v2.1/os-simple-tenant-usage/{project}",
        Reader,
    ),
    ("GET", "/compute/v2.1/servers", Reader),
    ("POST", "/compute/v2.1/servers", Member),
    ("GET", "/compute/v2.1/servers/detail", Reader),
    ("GET", "/compute/v2.1/servers/{id}", Reader),
    ("PUT", "/compute/v2.1/servers/{id}", Member),
    ("DELETE", "/compute/v2.1/servers/{id}", Member),
    ("POST", "/compute/v2.1/servers/{id}/action", Member),
    ("GET", "/compute/v2.1/servers/{id}/ips", Reader),
    ("GET", "/compute/v2.1/servers/{id}/ips/{network}", Reader),
    ("GET", "/compute/v2.1/servers/{id}/metadata", Reader),
    ("POST", "/compute/v2.1/servers/{id}/metadata", Member),
    ("PUT", "/compute/v2.1/servers/{id}/metadata", Member),
    ("GET", "/compute/v2.1/servers/{id}/metadata/{key}", Reader),
    ("PUT", "/compute/v2.1/servers/{id}/metadata/{key}", Member),
    (
        "DELETE",
        "/compute/v2.1/servers/{id}/metadata/{key}",
        Member,
    ),
    (
        "GET",
        "/compute/v2.1/servers/{id}/os-instance-actions",
        Reader,
    ),
    (
        "GET",
        "/compute/v2.1/servers/{id}/os-instance-actions/{request}",
        Reader,
    ),
    ("GET", "/compute/v2.1/servers/{id}/os-interface", Reader),
    ("POST", "/compute/v2.1/servers/{id}/os-interface", Member),
    (
        "GET",
        "/compute/v2.1/servers/{id}/os-interface/{port}",
        Reader,
    ),
    (
        "DELETE",
        "/compute/v2.1/servers/{id}/os-interface/{port}",
        Member,
    ),
    (
        "GET",
        "/compute/v2.1/servers/{id}/os-volume_attachments",
        Reader,
    ),
    (
        "POST",
        "/compute/v2.1/servers/{id}/os-volume_attachments",
        Member,
    ),
    (
        "GET",
        "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
        Reader,
    ),
    (
        "PUT",
        "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
        Member,
    ),
    (
        "DELETE",
        "/compute/v2.1/servers/{id}/os-volume_attachments/{volume}",
        Member,
    ),
    ("GET", "/compute/v2.1/servers/{id}/tags", Reader),
    ("PUT", "/compute/v2.1/servers/{id}/tags", Member),
    ("DELETE", "/compute/v2.1/servers/{id}/tags", Member),
    ("GET", "/compute/v2.1/servers/{id}/tags/{tag}", Reader),
    ("PUT", "/compute/v2.1/servers/{id}/tags/{tag}", Member),
    ("DELETE", "/compute/v2.1/servers/{id}/tags/{tag}", Member),
    // Identity: Keystone's defaults (keystone/common/policies/*.py).
    ("GET", "/identity", Public),
    ("GET", "/identity/openapi.json", Public),
    ("GET", "/identity/v3", Public),
    ("GET", "/identity/v3/auth/catalog", Token),
    ("GET", "/identity/v3/auth/domains", Token),
    ("GET", "/identity/v3/auth/projects", Token),
    ("GET", "/identity/v3/auth/system", Token),
    ("POST", "/identity/v3/auth/tokens", Public),
    ("GET", "/identity/v3/auth/tokens", Token),
    ("DELETE", "/identity/v3/auth/tokens", Token),
    ("GET", "/identity/v3/credentials", Token),
    ("POST", "/identity/v3/credentials", Owner),
    ("GET", "/identity/v3/credentials/{id}", Owner),
    ("PATCH", "/identity/v3/credentials/{id}", Owner),
    ("DELETE", "/identity/v3/credentials/{id}", Owner),
    ("GET", "/identity/v3/domains", Admin),
    ("POST", "/identity/v3/domains", Admin),
    ("GET", "/identity/v3/domains/{id}", Admin),
    ("PATCH", "/identity/v3/domains/{id}", Admin),
    ("DELETE", "/identity/v3/domains/{id}", Admin),
    (
        "GET",
        "/identity/v3/domains/{target_id}/groups/{actor_id}/roles",
        Admin,
    ),
    (
        "GET",
        "/identity/v3/domains/{target_id}/groups/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "PUT",
        "/identity/v3/domains/{target_id}/groups/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "DELETE",
        "/identity/v3/domains/{target_id}/groups/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "GET",
        "/identity/v3/domains/{target_id}/users/{actor_id}/roles",
        Admin,
    ),
    (
        "GET",
        "/identity/v3/domains/{target_id}/users/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "PUT",
        "/identity/v3/domains/{target_id}/users/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "DELETE",
        "/identity/v3/domains/{target_id}/users/{actor_id}/roles/{role_id}",
        Admin,
    ),
    ("GET", "/identity/v3/endpoints", Admin),
    ("POST", "/identity/v3/endpoints", Admin),
    ("GET", "/identity/v3/endpoints/{id}", Admin),
    ("PATCH", "/identity/v3/endpoints/{id}", Admin),
    ("DELETE", "/identity/v3/endpoints/{id}", Admin),
    ("GET", "/identity/v3/groups", Admin),
    ("POST", "/identity/v3/groups", Admin),
    ("GET", "/identity/v3/groups/{id}", Admin),
    ("PATCH", "/identity/v3/groups/{id}", Admin),
    ("DELETE", "/identity/v3/groups/{id}", Admin),
    ("GET", "/identity/v3/groups/{id}/users", Admin),
    ("GET", "/identity/v3/groups/{id}/users/{user_id}", Admin),
    ("PUT", "/identity/v3/groups/{id}/users/{user_id}", Admin),
    ("DELETE", "/identity/v3/groups/{id}/users/{user_id}", Admin),
    ("GET", "/identity/v3/projects", Admin),
    ("POST", "/identity/v3/projects", Admin),
    ("GET", "/identity/v3/projects/{id}", Reader),
    ("PATCH", "/identity/v3/projects/{id}", Admin),
    ("DELETE", "/identity/v3/projects/{id}", Admin),
    ("GET", "/identity/v3/projects/{id}/tags", Reader),
    ("PUT", "/identity/v3/projects/{id}/tags", Admin),
    ("DELETE", "/identity/v3/projects/{id}/tags", Admin),
    ("GET", "/identity/v3/projects/{id}/tags/{tag}", Reader),
    ("PUT", "/identity/v3/projects/{id}/tags/{tag}", Admin),
    ("DELETE", "/identity/v3/projects/{id}/tags/{tag}", Admin),
    (
        "GET",
        "/identity/v3/projects/{target_id}/groups/{actor_id}/roles",
        Admin,
    ),
    (
        "GET",
        "/identity/v3/projects/{target_id}/groups/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "PUT",
        "/identity/v3/projects/{target_id}/groups/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "DELETE",
        "/identity/v3/projects/{target_id}/groups/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "GET",
        "/identity/v3/projects/{target_id}/users/{actor_id}/roles",
        Admin,
    ),
    (
        "GET",
        "/identity/v3/projects/{target_id}/users/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "PUT",
        "/identity/v3/projects/{target_id}/users/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "DELETE",
        "/identity/v3/projects/{target_id}/users/{actor_id}/roles/{role_id}",
        Admin,
    ),
    ("GET", "/identity/v3/regions", Token),
    ("POST", "/identity/v3/regions", Admin),
    ("GET", "/identity/v3/regions/{id}", Token),
    ("PUT", "/identity/v3/regions/{id}", Admin),
    ("PATCH", "/identity/v3/regions/{id}", Admin),
    ("DELETE", "/identity/v3/regions/{id}", Admin),
    ("GET", "/identity/v3/role_assignments", Admin),
    ("GET", "/identity/v3/role_inferences", Admin),
    ("GET", "/identity/v3/roles", Admin),
    ("POST", "/identity/v3/roles", Admin),
    ("GET", "/identity/v3/roles/{id}", Admin),
    ("PATCH", "/identity/v3/roles/{id}", Admin),
    ("DELETE", "/identity/v3/roles/{id}", Admin),
    ("GET", "/identity/v3/roles/{id}/implies", Admin),
    ("GET", "/identity/v3/roles/{id}/implies/{implied_id}", Admin),
    ("PUT", "/identity/v3/roles/{id}/implies/{implied_id}", Admin),
    (
        "DELETE",
        "/identity/v3/roles/{id}/implies/{implied_id}",
        Admin,
    ),
    ("GET", "/identity/v3/services", Admin),
    ("POST", "/identity/v3/services", Admin),
    ("GET", "/identity/v3/services/{id}", Admin),
    ("PATCH", "/identity/v3/services/{id}", Admin),
    ("DELETE", "/identity/v3/services/{id}", Admin),
    ("GET", "/identity/v3/system/{actor}/{actor_id}/roles", Admin),
    (
        "GET",
        "/identity/v3/system/{actor}/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "PUT",
        "/identity/v3/system/{actor}/{actor_id}/roles/{role_id}",
        Admin,
    ),
    (
        "DELETE",
        "/identity/v3/system/{actor}/{actor_id}/roles/{role_id}",
        Admin,
    ),
    ("GET", "/identity/v3/users", Admin),
    ("POST", "/identity/v3/users", Admin),
    ("GET", "/identity/v3/users/{id}", Owner),
    ("PATCH", "/identity/v3/users/{id}", Admin),
    ("DELETE", "/identity/v3/users/{id}", Admin),
    (
        "GET",
        "/identity/v3/users/{id}/application_credentials",
        Owner,
    ),
    (
        "POST",
        "/identity/v3/users/{id}/application_credentials",
        Owner,
    ),
    (
        "GET",
        "/identity/v3/users/{id}/application_credentials/{credential_id}",
        Owner,
    ),
    (
        "DELETE",
        "/identity/v3/users/{id}/application_credentials/{credential_id}",
        Owner,
    ),
    ("GET", "/identity/v3/users/{id}/credentials/OS-EC2", Owner),
    ("POST", "/identity/v3/users/{id}/credentials/OS-EC2", Owner),
    (
        "GET",
        "/identity/v3/users/{id}/credentials/OS-EC2/{access}",
        Owner,
    ),
    (
        "DELETE",
        "/identity/v3/users/{id}/credentials/OS-EC2/{access}",
        Owner,
    ),
    ("GET", "/identity/v3/users/{id}/groups", Owner),
    ("POST", "/identity/v3/users/{id}/password", Owner),
    ("GET", "/identity/v3/users/{id}/projects", Owner),
    // Image: Glance's defaults (glance/policies/*.py).
    ("GET", "/image", Public),
    ("GET", "/image/openapi.json", Public),
    ("GET", "/image/v2", Public),
    ("GET", "/image/v2/images", Reader),
    ("POST", "/image/v2/images", Member),
    ("GET", "/image/v2/images/{id}", Reader),
    ("PATCH", "/image/v2/images/{id}", Member),
    ("DELETE", "/image/v2/images/{id}", Member),
    ("POST", "/image/v2/images/{id}/actions/deactivate", Member),
    ("POST", "/image/v2/images/{id}/actions/reactivate", Member),
    ("GET", "/image/v2/images/{id}/file", Member),
    ("PUT", "/image/v2/images/{id}/file", Member),
    ("POST", "/image/v2/images/{id}/import", Member),
    ("GET", "/image/v2/images/{id}/members", Reader),
    ("POST", "/image/v2/images/{id}/members", Member),
    ("GET", "/image/v2/images/{id}/members/{member_id}", Reader),
    ("PUT", "/image/v2/images/{id}/members/{member_id}", Member),
    (
        "DELETE",
        "/image/v2/images/{id}/members/{member_id}",
        Member,
    ),
    ("PUT", "/image/v2/images/{id}/stage", Member),
    ("PUT", "/image/v2/images/{id}/tags/{tag}", Member),
    ("DELETE", "/image/v2/images/{id}/tags/{tag}", Member),
    ("GET", "/image/v2/info/import", Token),
    ("GET", "/image/v2/info/stores", Token),
    ("GET", "/image/v2/schemas/image", Token),
    ("GET", "/image/v2/schemas/images", Token),
    ("GET", "/image/v2/schemas/member", Token),
    ("GET", "/image/v2/schemas/members", Token),
    // Network: Neutron's defaults (neutron/conf/policies/*.py).
    ("GET", "/networking", Public),
    ("GET", "/networking/openapi.json", Public),
    ("GET", "/networking/v2.0", Token),
    ("GET", "/networking/v2.0/extensions", Token),
    ("GET", "/networking/v2.0/extensions/{alias}", Token),
    ("GET", "/networking/v2.0/floatingips", Reader),
    ("POST", "/networking/v2.0/floatingips", Member),
    ("GET", "/networking/v2.0/floatingips/{id}", Reader),
    ("PUT", "/networking/v2.0/floatingips/{id}", Member),
    ("DELETE", "/networking/v2.0/floatingips/{id}", Member),
    ("GET", "/networking/v2.0/agents", Admin),
    ("GET", "/networking/v2.0/agents/{id}", Admin),
    ("GET", "/networking/v2.0/network-ip-availabilities", Admin),
    (
        "GET",
        "/networking/v2.0/network-ip-availabilities/{id}",
        Admin,
    ),
    ("GET", "/networking/v2.0/networks", Reader),
    ("POST", "/networking/v2.0/networks", Member),
    ("GET", "/networking/v2.0/networks/{id}", Reader),
    ("PUT", "/networking/v2.0/networks/{id}", Member),
    ("DELETE", "/networking/v2.0/networks/{id}", Member),
    ("GET", "/networking/v2.0/ports", Reader),
    ("POST", "/networking/v2.0/ports", Member),
    ("GET", "/networking/v2.0/ports/{id}", Reader),
    ("PUT", "/networking/v2.0/ports/{id}", Member),
    ("DELETE", "/networking/v2.0/ports/{id}", Member),
    ("GET", "/networking/v2.0/quotas", Admin),
    ("GET", "/networking/v2.0/quotas/{project_id}", Reader),
    ("PUT", "/networking/v2.0/quotas/{project_id}", Admin),
    ("DELETE", "/networking/v2.0/quotas/{project_id}", Admin),
    (
        "GET",
        "/networking/v2.0/quotas/{project_id}/default",
        Reader,
    ),
    (
        "GET",
        "/networking/v2.0/quotas/{project_id}/details",
        Reader,
    ),
    ("GET", "/networking/v2.0/routers", Reader),
    ("POST", "/networking/v2.0/routers", Member),
    ("GET", "/networking/v2.0/routers/{id}", Reader),
    ("PUT", "/networking/v2.0/routers/{id}", Member),
    ("DELETE", "/networking/v2.0/routers/{id}", Member),
    (
        "PUT",
        "/networking/v2.0/routers/{id}/add_router_interface",
        Member,
    ),
    (
        "PUT",
        "/networking/v2.0/routers/{id}/remove_router_interface",
        Member,
    ),
    ("GET", "/networking/v2.0/security-group-rules", Reader),
    ("POST", "/networking/v2.0/security-group-rules", Member),
    ("GET", "/networking/v2.0/security-group-rules/{id}", Reader),
    ("PUT", "/networking/v2.0/security-group-rules/{id}", Member),
    (
        "DELETE",
        "/networking/v2.0/security-group-rules/{id}",
        Member,
    ),
    ("GET", "/networking/v2.0/security-groups", Reader),
    ("POST", "/networking/v2.0/security-groups", Member),
    ("GET", "/networking/v2.0/security-groups/{id}", Reader),
    ("PUT", "/networking/v2.0/security-groups/{id}", Member),
    ("DELETE", "/networking/v2.0/security-groups/{id}", Member),
    ("GET", "/networking/v2.0/subnets", Reader),
    ("POST", "/networking/v2.0/subnets", Member),
    ("GET", "/networking/v2.0/subnets/{id}", Reader),
    ("PUT", "/networking/v2.0/subnets/{id}", Member),
    ("DELETE", "/networking/v2.0/subnets/{id}", Member),
    ("GET", "/networking/v2.0/{collection}/{id}/tags", Reader),
    ("PUT", "/networking/v2.0/{collection}/{id}/tags", Member),
    ("DELETE", "/networking/v2.0/{collection}/{id}/tags", Member),
    (
        "GET",
        "/networking/v2.0/{collection}/{id}/tags/{tag}",
        Reader,
    ),
    (
        "PUT",
        "/networking/v2.0/{collection}/{id}/tags/{tag}",
        Member,
    ),
    (
        "DELETE",
        "/networking/v2.0/{collection}/{id}/tags/{tag}",
        Member,
    ),
    // Block storage: Cinder's defaults (cinder/policies/*.py).
    ("GET", "/volume", Public),
    ("GET", "/volume/openapi.json", Public),
    ("GET", "/volume/v3", Token),
    ("GET", "/volume/v3/attachments", Reader),
    ("POST", "/volume/v3/attachments", Member),
    ("GET", "/volume/v3/attachments/detail", Reader),
    ("GET", "/volume/v3/attachments/{id}", Reader),
    ("DELETE", "/volume/v3/attachments/{id}", Member),
    ("GET", "/volume/v3/backups", Reader),
    ("POST", "/volume/v3/backups", Member),
    ("GET", "/volume/v3/backups/detail", Reader),
    ("GET", "/volume/v3/backups/{id}", Reader),
    ("PUT", "/volume/v3/backups/{id}", Member),
    ("DELETE", "/volume/v3/backups/{id}", Member),
    ("POST", "/volume/v3/backups/{id}/restore", Member),
    ("POST", "/volume/v3/backups/{id}/action", Admin),
    ("GET", "/volume/v3/limits", Reader),
    ("GET", "/volume/v3/os-volume-transfer", Reader),
    ("POST", "/volume/v3/os-volume-transfer", Member),
    ("GET", "/volume/v3/os-volume-transfer/detail", Reader),
    ("GET", "/volume/v3/os-volume-transfer/{id}", Reader),
    ("DELETE", "/volume/v3/os-volume-transfer/{id}", Member),
    ("POST", "/volume/v3/os-volume-transfer/{id}/accept", Member),
    ("GET", "/volume/v3/volume-transfers", Reader),
    ("POST", "/volume/v3/volume-transfers", Member),
    ("GET", "/volume/v3/volume-transfers/detail", Reader),
    ("GET", "/volume/v3/volume-transfers/{id}", Reader),
    ("DELETE", "/volume/v3/volume-transfers/{id}", Member),
    ("POST", "/volume/v3/volume-transfers/{id}/accept", Member),
    ("GET", "/volume/v3/os-availability-zone", Token),
    ("GET", "/volume/v3/os-quota-sets/{project}", Reader),
    ("PUT", "/volume/v3/os-quota-sets/{project}", Admin),
    ("DELETE", "/volume/v3/os-quota-sets/{project}", Admin),
    ("GET", "/volume/v3/os-quota-sets/{project}/defaults", Reader),
    ("GET", "/volume/v3/capabilities/{host}", Admin),
    ("GET", "/volume/v3/os-services", Admin),
    ("GET", "/volume/v3/scheduler-stats/get_pools", Admin),
    ("GET", "/volume/v3/snapshots", Reader),
    ("POST", "/volume/v3/snapshots", Member),
    ("GET", "/volume/v3/snapshots/detail", Reader),
    ("GET", "/volume/v3/snapshots/{id}", Reader),
    ("PUT", "/volume/v3/snapshots/{id}", Member),
    ("DELETE", "/volume/v3/snapshots/{id}", Member),
    ("GET", "/volume/v3/snapshots/{id}/metadata", Reader),
    ("POST", "/volume/v3/snapshots/{id}/metadata", Member),
    ("PUT", "/volume/v3/snapshots/{id}/metadata", Member),
    ("GET", "/volume/v3/snapshots/{id}/metadata/{key}", Reader),
    ("PUT", "/volume/v3/snapshots/{id}/metadata/{key}", Member),
    ("DELETE", "/volume/v3/snapshots/{id}/metadata/{key}", Member),
    ("GET", "/volume/v3/types", Token),
    ("POST", "/volume/v3/types", Admin),
    ("GET", "/volume/v3/types/default", Token),
    ("GET", "/volume/v3/types/{id}", Token),
    ("PUT", "/volume/v3/types/{id}", Admin),
    ("DELETE", "/volume/v3/types/{id}", Admin),
    ("POST", "/volume/v3/types/{id}/action", Admin),
    ("GET", "/volume/v3/types/{id}/os-volume-type-access", Admin),
    ("GET", "/volume/v3/types/{id}/extra_specs", Token),
    ("POST", "/volume/v3/types/{id}/extra_specs", Admin),
    ("GET", "/volume/v3/types/{id}/extra_specs/{key}", Token),
    ("PUT", "/volume/v3/types/{id}/extra_specs/{key}", Admin),
    ("DELETE", "/volume/v3/types/{id}/extra_specs/{key}", Admin),
    ("GET", "/volume/v3/volumes", Reader),
    ("POST", "/volume/v3/volumes", Member),
    ("GET", "/volume/v3/volumes/detail", Reader),
    ("GET", "/volume/v3/volumes/{id}", Reader),
    ("PUT", "/volume/v3/volumes/{id}", Member),
    ("DELETE", "/volume/v3/volumes/{id}", Member),
    ("POST", "/volume/v3/volumes/{id}/action", Member),
    ("GET", "/volume/v3/volumes/{id}/metadata", Reader),
    ("POST", "/volume/v3/volumes/{id}/metadata", Member),
    ("PUT", "/volume/v3/volumes/{id}/metadata", Member),
    ("GET", "/volume/v3/volumes/{id}/metadata/{key}", Reader),
    ("PUT", "/volume/v3/volumes/{id}/metadata/{key}", Member),
    ("DELETE", "/volume/v3/volumes/{id}/metadata/{key}", Member),
];

/// The rule for a route; HEAD is GET without a body.
pub fn rule(method: &Method, pattern: &str) -> Option<Rule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    POLICY
        .iter()
        .find(|(m, p, _)| *m == method && *p == pattern)
        .map(|(_, _, rule)| *rule)
}

pub use onestack::openapi::examples::RequestBody as Body;

/// The route's example request (`onestack::openapi::examples`, the one its OpenAPI document
/// shows) aimed at alice's world (`w`): each placeholder replaced by her resource's id.
/// `None` for a write route nobody has written an example for: the test names it.
pub fn valid_body(method: &Method, pattern: &str, w: &HashMap<String, String>) -> Option<Body> {
    Some(match examples::request_body(method.as_str(), pattern)? {
        Body::Json(value) => Body::Json(with_ids(value, w)),
        Body::JsonPatch(value) => Body::JsonPatch(with_ids(value, w)),
        other => other,
    })
}

/// `value` with each placeholder string replaced by the value it stands for in `w`.
fn with_ids(value: Value, w: &HashMap<String, String>) -> Value {
    match value {
        Value::String(text) => {
            let world_key = match text.as_str() {
                examples::NETWORK => "networks/{id}",
                examples::EXTERNAL_NETWORK => "external/network",
                examples::SUBNET => "subnets/{id}",
                examples::SECURITY_GROUP => "security-groups/{id}",
                examples::PROJECT => "projects/{id}",
                examples::USER => "users/{id}",
                examples::IMAGE => "images/{id}",
                examples::FLAVOR => "flavors/{id}",
                examples::VOLUME => "volumes/{id}",
                examples::SERVER => "servers/{id}",
                examples::PASSWORD => return Value::String("pw-alice".into()),
                _ => return Value::String(text),
            };
            Value::String(w[world_key].clone())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| with_ids(v, w)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, with_ids(v, w)))
                .collect(),
        ),
        other => other,
    }
}

/// `method` on `path` as `token`, with `body`; at the newest compute and volume
/// microversions (routes of later microversions exist for the table to judge).
pub async fn call(
    cloud: &Cloud,
    method: &Method,
    path: &str,
    token: &str,
    body: &Body,
) -> StatusCode {
    let mut request = cloud
        .http
        .request(method.clone(), format!("{}{path}", cloud.url))
        .header("X-Auth-Token", token)
        .header("OpenStack-API-Version", "compute latest, volume latest");
    request = match body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        Body::JsonPatch(value) => request
            .header(
                "Content-Type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(value.to_string()),
        Body::Bytes(bytes) => request
            .header("Content-Type", "application/octet-stream")
            .body(*bytes),
    };
    request.send().await.expect("request is sent").status()
}

/// The path the test calls for a route: alice's resources, except that accepting a share
/// is done by the project an image is shared with (bob's image, shared with alice's).
fn target(method: &Method, pattern: &str, world: &HashMap<String, String>) -> String {
    if method == Method::PUT && pattern == "/image/v2/images/{id}/members/{member_id}" {
        return format!(
            "/image/v2/images/{}/members/{}",
            world["shared/image"], world["projects/{id}"]
        );
    }
    fill(pattern, world)
}

/// Every mounted route against its row in [`POLICY`]:
/// - `Admin`: alice, a member, gets 403 (on her own resources, with a valid body); the
///   admin's reads are not refused, with a project-scoped or a system-scoped token;
/// - `Member`: rita, a reader on alice's project, gets 403 on alice's resources;
/// - `Owner`: rita gets 403 or 404 on what alice owns; alice reads her own;
/// - `Reader` and `Token`: rita's reads are not refused (not 401 or 403).
#[tokio::test]
async fn each_role_gets_what_the_policy_table_says() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let world = alice_world(&cloud, &env).await;
    let admin_token = cloud.admin_token().await;
    let reader_role = cloud.role_id(&admin_token, "reader").await;
    let rita = cloud
        .post(
            "/users",
            &admin_token,
            json!({"user": {"name": "rita", "password": "pw-rita"}}),
        )
        .await
        .id("user");
    let granted = cloud
        .put(
            &format!(
                "/projects/{}/users/{rita}/roles/{reader_role}",
                env.alice_project
            ),
            &admin_token,
        )
        .await;
    assert_eq!(granted.status, StatusCode::NO_CONTENT, "{}", granted.body);
    let rita = cloud.token("rita", "pw-rita", "alice").await;
    let alice = cloud.token("alice", "pw-alice", "alice").await;
    let system_admin = cloud
        .auth_body(json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"}, "password": cloud.admin_password}}},
            "scope": {"system": {"all": true}}}}))
        .await
        .subject_token();

    let mounted: BTreeSet<(String, String)> = cloud
        .running
        .as_ref()
        .expect("the cloud is running")
        .mounted_paths()
        .into_iter()
        .flat_map(|pattern| {
            super::METHODS
                .iter()
                .map(move |method| (method.to_string(), pattern.clone()))
        })
        .collect();
    let mut checked = 0;
    let mut unlisted = BTreeSet::new();
    let mut wrong = BTreeSet::new();
    for (method, pattern) in &mounted {
        let method: Method = method.parse().expect("a method");
        if method == Method::HEAD {
            continue;
        }
        let path = target(&method, pattern, &world);
        let Some(rule) = rule(&method, pattern) else {
            // Not mounted for this method (405 to anyone) is no route at all.
            let status = super::send(&cloud, &method, &path, None).await;
            if status != StatusCode::METHOD_NOT_ALLOWED {
                unlisted.insert(format!("{method} {pattern}"));
            }
            continue;
        };
        let Some(body) = valid_body(&method, pattern, &world) else {
            wrong.insert(format!("{method} {pattern}: no valid body written"));
            continue;
        };
        let read = method == Method::GET;
        let refused = |s: StatusCode| s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN;
        let mut expect = |who: &str, status: StatusCode, ok: bool| {
            if !ok || status.is_server_error() {
                wrong.insert(format!("{method} {pattern} ({rule:?}) as {who}: {status}"));
            }
        };
        checked += 1;
        match rule {
            Public => {}
            Token | Reader => {
                if read {
                    let status = call(&cloud, &method, &path, &rita, &body).await;
                    expect("a reader", status, !refused(status));
                }
            }
            Member => {
                let status = call(&cloud, &method, &path, &rita, &body).await;
                expect("a reader", status, status == StatusCode::FORBIDDEN);
            }
            Owner => {
                let status = call(&cloud, &method, &path, &rita, &body).await;
                expect(
                    "another user",
                    status,
                    [StatusCode::FORBIDDEN, StatusCode::NOT_FOUND].contains(&status),
                );
                if read {
                    let status = call(&cloud, &method, &path, &alice, &body).await;
                    expect("the owner", status, !refused(status));
                }
            }
            Admin => {
                let status = call(&cloud, &method, &path, &alice, &body).await;
                expect("a member", status, status == StatusCode::FORBIDDEN);
                if read {
                    let status = call(&cloud, &method, &path, &admin_token, &body).await;
                    expect("the admin", status, !refused(status));
                    let status = call(&cloud, &method, &path, &system_admin, &body).await;
                    expect("a system admin", status, !refused(status));
                }
            }
        }
    }
    let stale: Vec<_> = POLICY
        .iter()
        .filter(|(m, p, _)| !mounted.contains(&((*m).to_owned(), (*p).to_owned())))
        .collect();
    println!("routes checked against the policy table: {checked}");
    assert!(
        unlisted.is_empty(),
        "routes with no policy row: {unlisted:#?}"
    );
    assert!(stale.is_empty(), "policy rows for no route: {stale:#?}");
    assert!(wrong.is_empty(), "answered against the policy: {wrong:#?}");
}

#[test]
fn every_placeholder_of_the_examples_is_filled() {
    let world: HashMap<String, String> = [
        "networks/{id}",
        "external/network",
        "subnets/{id}",
        "security-groups/{id}",
        "projects/{id}",
        "users/{id}",
        "images/{id}",
        "flavors/{id}",
        "volumes/{id}",
        "servers/{id}",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), format!("id of {k}")))
    .collect();
    for placeholder in examples::PLACEHOLDERS {
        let filled = with_ids(Value::String((*placeholder).to_owned()), &world);
        assert_ne!(
            filled,
            Value::String((*placeholder).to_owned()),
            "{placeholder}"
        );
    }
}
