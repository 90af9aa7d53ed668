//! A request each route accepts, for the OpenAPI documents (whose request schemas are
//! inferred from these) and for the tests, which send each one with real ids in place of
//! the placeholders and expect it to succeed for a caller the policy allows: so an example
//! that stops being valid fails the authorization test, and the documents stay true.

use serde_json::{Value, json};

/// The body of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestBody {
    None,
    Json(Value),
    /// Glance's `application/openstack-images-v2.1-json-patch`.
    JsonPatch(Value),
    /// Raw bytes (`application/octet-stream`): image data.
    Bytes(&'static [u8]),
}

/// Stand-ins for values that exist only in a running cloud; a test replaces each by the id
/// of a resource it made (or by its user's password).
pub const PLACEHOLDERS: &[&str] = &[
    NETWORK,
    EXTERNAL_NETWORK,
    SUBNET,
    SECURITY_GROUP,
    PROJECT,
    USER,
    PASSWORD,
    IMAGE,
    FLAVOR,
    VOLUME,
    SERVER,
];
pub const NETWORK: &str = "<network id>";
pub const EXTERNAL_NETWORK: &str = "<external network id>";
pub const SUBNET: &str = "<subnet id>";
pub const SECURITY_GROUP: &str = "<security group id>";
pub const PROJECT: &str = "<project id>";
pub const USER: &str = "<user id>";
/// The user's current password (also the new one, so that sending the example to change
/// a password leaves it as it was).
pub const PASSWORD: &str = "<password>";
pub const IMAGE: &str = "<image id>";
pub const FLAVOR: &str = "<flavor id>";
pub const VOLUME: &str = "<volume id>";
pub const SERVER: &str = "<server id>";

/// An id-shaped value for routes whose target need not exist (a service id, a member).
const ANY_ID: &str = "5a1c7e2e00004000800000000000a11e";

/// A body `method` on the route `pattern` (as mounted, e.g. `/compute/v2.1/servers`)
/// accepts; `None` for a route with a body this table does not describe.
pub fn request_body(method: &str, pattern: &str) -> Option<RequestBody> {
    if matches!(method, "GET" | "HEAD" | "DELETE") {
        return Some(RequestBody::None);
    }
    let json = match (method, pattern.trim_start_matches('/')) {
        ("POST", "compute/v2.1/flavors") => {
            json!({"flavor": {"name": "f-new", "ram": 64, "vcpus": 1, "disk": 1}})
        }
        ("PUT", "compute/v2.1/flavors/{id}") => json!({"flavor": {"description": "d"}}),
        ("POST", "compute/v2.1/flavors/{id}/action") => {
            json!({"addTenantAccess": {"tenant": PROJECT}})
        }
        ("POST", "compute/v2.1/flavors/{id}/os-extra_specs") => {
            json!({"extra_specs": {"k2": "v2"}})
        }
        ("PUT", "compute/v2.1/flavors/{id}/os-extra_specs/{key}") => json!({"k1": "v9"}),
        ("POST", "compute/v2.1/os-keypairs") => json!({"keypair": {"name": "k-new"}}),
        ("PUT", "compute/v2.1/os-quota-sets/{project}") => json!({"quota_set": {"cores": 4}}),
        ("POST", "compute/v2.1/os-server-groups") => {
            json!({"server_group": {"name": "g-new", "policy": "affinity"}})
        }
        ("PUT", "compute/v2.1/os-services/{id}") => json!({"status": "disabled"}),
        ("POST", "compute/v2.1/os-aggregates") => {
            json!({"aggregate": {"name": "rack-1", "availability_zone": "az-1"}})
        }
        ("PUT", "compute/v2.1/os-aggregates/{id}") => json!({"aggregate": {"name": "rack-2"}}),
        ("POST", "compute/v2.1/os-aggregates/{id}/action") => {
            json!({"set_metadata": {"metadata": {"ssd": "true"}}})
        }
        ("POST", "compute/v2.1/servers") => json!({"server": {
            "name": "s-new", "imageRef": IMAGE, "flavorRef": FLAVOR,
            "networks": [{"uuid": NETWORK}]}}),
        ("PUT", "compute/v2.1/servers/{id}") => json!({"server": {"name": "renamed"}}),
        ("POST", "compute/v2.1/servers/{id}/action") => json!({"reboot": {"type": "SOFT"}}),
        ("POST" | "PUT", "compute/v2.1/servers/{id}/metadata") => {
            json!({"metadata": {"k": "v"}})
        }
        ("PUT", "compute/v2.1/servers/{id}/metadata/{key}") => json!({"meta": {"role": "db"}}),
        ("POST", "compute/v2.1/servers/{id}/os-interface") => {
            json!({"interfaceAttachment": {"net_id": NETWORK}})
        }
        ("POST", "volume/v3/os-volume-transfer" | "volume/v3/volume-transfers") => {
            json!({"transfer": {"volume_id": VOLUME, "name": "t-new"}})
        }
        (
            "POST",
            "volume/v3/os-volume-transfer/{id}/accept" | "volume/v3/volume-transfers/{id}/accept",
        ) => {
            json!({"accept": {"auth_key": "0123456789abcdef"}})
        }
        ("POST", "volume/v3/attachments") => {
            json!({"attachment": {"volume_uuid": VOLUME, "instance_uuid": SERVER}})
        }
        ("POST", "volume/v3/backups") => json!({"backup": {"volume_id": VOLUME, "name": "b-new"}}),
        ("PUT", "volume/v3/backups/{id}") => json!({"backup": {"name": "renamed"}}),
        ("POST", "volume/v3/backups/{id}/restore") => json!({"restore": {"name": "restored"}}),
        ("POST", "volume/v3/backups/{id}/action") => {
            json!({"os-reset_status": {"status": "available"}})
        }
        ("POST", "compute/v2.1/servers/{id}/os-volume_attachments")
        | ("PUT", "compute/v2.1/servers/{id}/os-volume_attachments/{volume}") => {
            json!({"volumeAttachment": {"volumeId": VOLUME}})
        }
        ("PUT", "compute/v2.1/servers/{id}/tags") => json!({"tags": ["t2"]}),
        ("POST", "identity/v3/auth/tokens") => json!({"auth": {"identity": {
            "methods": ["password"],
            "password": {"user": {"id": USER, "password": PASSWORD}}}}}),
        ("POST", "identity/v3/credentials") => json!({"credential": {
            "type": "cert", "user_id": USER, "blob": "another-cert"}}),
        ("PATCH", "identity/v3/credentials/{id}") => json!({"credential": {"blob": "changed"}}),
        ("POST", "identity/v3/domains") => json!({"domain": {"name": "d-new"}}),
        ("PATCH", "identity/v3/domains/{id}") => json!({"domain": {"description": "d"}}),
        ("POST", "identity/v3/endpoints") => json!({"endpoint": {
            "service_id": ANY_ID, "interface": "public", "url": "http://endpoint.example"}}),
        ("PATCH", "identity/v3/endpoints/{id}") => {
            json!({"endpoint": {"url": "http://changed.example"}})
        }
        ("POST", "identity/v3/groups") => json!({"group": {"name": "g-new"}}),
        ("PATCH", "identity/v3/groups/{id}") => json!({"group": {"description": "d"}}),
        ("POST", "identity/v3/projects") => json!({"project": {"name": "p-new"}}),
        ("PATCH", "identity/v3/projects/{id}") => json!({"project": {"description": "d"}}),
        ("PUT", "identity/v3/projects/{id}/tags") => json!({"tags": ["t2"]}),
        ("POST", "identity/v3/regions") => json!({"region": {"id": "r-new"}}),
        ("PUT" | "PATCH", "identity/v3/regions/{id}") => json!({"region": {"description": "d"}}),
        ("POST", "identity/v3/roles") => json!({"role": {"name": "r-new"}}),
        ("PATCH", "identity/v3/roles/{id}") => json!({"role": {"description": "d"}}),
        ("POST", "identity/v3/services") => json!({"service": {"type": "t-new", "name": "n"}}),
        ("PATCH", "identity/v3/services/{id}") => json!({"service": {"description": "d"}}),
        ("POST", "identity/v3/users") => {
            json!({"user": {"name": "u-new", "password": "pw-u-new-long"}})
        }
        ("PATCH", "identity/v3/users/{id}") => json!({"user": {"description": "d"}}),
        ("POST", "identity/v3/users/{id}/application_credentials") => {
            json!({"application_credential": {"name": "ac-new"}})
        }
        ("POST", "identity/v3/users/{id}/credentials/OS-EC2") => json!({"tenant_id": PROJECT}),
        ("POST", "identity/v3/users/{id}/password") => json!({"user": {
            "original_password": PASSWORD, "password": PASSWORD}}),
        ("POST", "image/v2/images") => {
            json!({"name": "i-new", "disk_format": "raw", "container_format": "bare"})
        }
        ("PATCH", "image/v2/images/{id}") => {
            return Some(RequestBody::JsonPatch(
                json!([{"op": "replace", "path": "/name", "value": "renamed"}]),
            ));
        }
        ("PUT", "image/v2/images/{id}/file" | "image/v2/images/{id}/stage") => {
            return Some(RequestBody::Bytes(b"image bytes"));
        }
        ("POST", "image/v2/images/{id}/import") => json!({"method": {"name": "glance-direct"}}),
        ("POST", "image/v2/images/{id}/members") => json!({"member": ANY_ID}),
        ("PUT", "image/v2/images/{id}/members/{member_id}") => json!({"status": "accepted"}),
        ("POST", "networking/v2.0/floatingips") => {
            json!({"floatingip": {"floating_network_id": EXTERNAL_NETWORK}})
        }
        ("PUT", "networking/v2.0/floatingips/{id}") => json!({"floatingip": {"port_id": null}}),
        ("POST", "networking/v2.0/networks") => json!({"network": {"name": "n-new"}}),
        ("PUT", "networking/v2.0/networks/{id}") => json!({"network": {"name": "renamed"}}),
        ("POST", "networking/v2.0/ports") => json!({"port": {"network_id": NETWORK}}),
        ("PUT", "networking/v2.0/ports/{id}") => json!({"port": {"name": "renamed"}}),
        ("PUT", "networking/v2.0/quotas/{project_id}") => json!({"quota": {"port": 10}}),
        ("POST", "networking/v2.0/routers") => json!({"router": {"name": "r-new"}}),
        ("PUT", "networking/v2.0/routers/{id}") => json!({"router": {"name": "renamed"}}),
        (
            "PUT",
            "networking/v2.0/routers/{id}/add_router_interface"
            | "networking/v2.0/routers/{id}/remove_router_interface",
        ) => json!({"subnet_id": SUBNET}),
        ("POST", "networking/v2.0/security-group-rules") => json!({"security_group_rule": {
            "security_group_id": SECURITY_GROUP, "direction": "ingress", "protocol": "udp"}}),
        ("PUT", "networking/v2.0/security-group-rules/{id}") => {
            json!({"security_group_rule": {"description": "d"}})
        }
        ("POST", "networking/v2.0/security-groups") => {
            json!({"security_group": {"name": "sg-new"}})
        }
        ("PUT", "networking/v2.0/security-groups/{id}") => {
            json!({"security_group": {"name": "renamed"}})
        }
        ("POST", "networking/v2.0/subnets") => json!({"subnet": {
            "network_id": NETWORK, "cidr": "10.61.0.0/24", "ip_version": 4}}),
        ("PUT", "networking/v2.0/subnets/{id}") => json!({"subnet": {"name": "renamed"}}),
        ("PUT", "networking/v2.0/{collection}/{id}/tags") => json!({"tags": ["t2"]}),
        ("POST", "volume/v3/volumes") => {
            json!({"volume": {"size": 1, "name": "v-new", "metadata": {"k": "v"}}})
        }
        ("PUT", "volume/v3/volumes/{id}") => json!({"volume": {"name": "renamed"}}),
        ("POST", "volume/v3/volumes/{id}/action") => {
            json!({"os-set_bootable": {"bootable": true}})
        }
        (
            "POST" | "PUT",
            "volume/v3/volumes/{id}/metadata" | "volume/v3/snapshots/{id}/metadata",
        ) => {
            json!({"metadata": {"k": "v"}})
        }
        (
            "PUT",
            "volume/v3/volumes/{id}/metadata/{key}" | "volume/v3/snapshots/{id}/metadata/{key}",
        ) => {
            json!({"meta": {"role": "db"}})
        }
        ("POST", "volume/v3/snapshots") => {
            json!({"snapshot": {"volume_id": VOLUME, "name": "s-new"}})
        }
        ("PUT", "volume/v3/snapshots/{id}") => json!({"snapshot": {"name": "renamed"}}),
        ("POST", "volume/v3/types") => {
            json!({"volume_type": {"name": "t-new", "extra_specs": {"k": "v"}}})
        }
        ("PUT", "volume/v3/types/{id}") => json!({"volume_type": {"description": "d"}}),
        ("POST", "volume/v3/types/{id}/action") => {
            json!({"addProjectAccess": {"project": PROJECT}})
        }
        ("POST", "volume/v3/types/{id}/extra_specs") => {
            json!({"extra_specs": {"replication_enabled": "<is> False"}})
        }
        ("PUT", "volume/v3/types/{id}/extra_specs/{key}") => {
            json!({"multiattach": "<is> False"})
        }
        ("PUT", "volume/v3/os-quota-sets/{project}") => {
            json!({"quota_set": {"volumes": 20}})
        }
        // Routes that take no body: grants, memberships, tags, image actions.
        (
            "PUT",
            "compute/v2.1/servers/{id}/tags/{tag}"
            | "identity/v3/projects/{id}/tags/{tag}"
            | "identity/v3/roles/{id}/implies/{implied_id}"
            | "identity/v3/groups/{id}/users/{user_id}"
            | "identity/v3/domains/{target_id}/groups/{actor_id}/roles/{role_id}"
            | "identity/v3/domains/{target_id}/users/{actor_id}/roles/{role_id}"
            | "identity/v3/projects/{target_id}/groups/{actor_id}/roles/{role_id}"
            | "identity/v3/projects/{target_id}/users/{actor_id}/roles/{role_id}"
            | "identity/v3/system/{actor}/{actor_id}/roles/{role_id}"
            | "image/v2/images/{id}/tags/{tag}"
            | "networking/v2.0/{collection}/{id}/tags/{tag}",
        )
        | (
            "POST",
            "image/v2/images/{id}/actions/deactivate" | "image/v2/images/{id}/actions/reactivate",
        ) => return Some(RequestBody::None),
        _ => return None,
    };
    Some(RequestBody::Json(json))
}
