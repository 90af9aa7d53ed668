//! Integration tests of the Network v2.0 API (Neutron): the whole server in process, real
//! HTTP. The host agent is off here; `dataplane.rs` tests what it builds.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod agents;
mod dataplane;
mod routers;

use crate::common::{Cloud, Reply};

/// A project's view of the network API.
pub struct Neutron<'a> {
    cloud: &'a Cloud,
    token: String,
}

impl<'a> Neutron<'a> {
    pub fn new(cloud: &'a Cloud, token: &str) -> Self {
        Neutron {
            cloud,
            token: token.to_owned(),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .cloud
            .http
            .request(method, format!("{}/networking{path}", self.cloud.url))
            .header("X-Auth-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a resource and returns its view, asserting 201.
    pub async fn create(&self, collection: &str, what: &str, attrs: Value) -> Value {
        let reply = self
            .post(&format!("/v2.0/{collection}"), json!({ what: attrs }))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{collection}: {}",
            reply.body
        );
        reply.body[what].clone()
    }

    pub async fn network(&self, name: &str) -> Value {
        self.create("networks", "network", json!({"name": name}))
            .await
    }

    pub async fn subnet(&self, network: &Value, cidr: &str, extra: Value) -> Value {
        let mut attrs = json!({"network_id": network["id"], "cidr": cidr, "ip_version": if cidr.contains(':') { 6 } else { 4 }});
        if let (Some(a), Some(e)) = (attrs.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        self.create("subnets", "subnet", attrs).await
    }
}

/// Asserts a Neutron error: the status and `NeutronError.type`.
pub fn assert_neutron_error(reply: &Reply, status: StatusCode, kind: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let error = &reply.body["NeutronError"];
    assert_eq!(error["type"], kind, "{}", reply.body);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.body
    );
    assert_eq!(error["detail"], "", "{}", reply.body);
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Two member projects and a reader, with their tokens.
struct Tenants {
    admin: String,
    alice: String,
    alice_project: String,
    bob: String,
    reader: String,
}

async fn tenants(cloud: &Cloud) -> Tenants {
    let admin = cloud.admin_token().await;
    let (alice_project, _) = cloud.tenant(&admin, "alice", "pw-alice", "member").await;
    cloud.tenant(&admin, "bob", "pw-bob", "member").await;
    cloud.tenant(&admin, "rita", "pw-rita", "reader").await;
    Tenants {
        alice: cloud.token("alice", "pw-alice", "alice").await,
        bob: cloud.token("bob", "pw-bob", "bob").await,
        reader: cloud.token("rita", "pw-rita", "rita").await,
        admin,
        alice_project,
    }
}

#[tokio::test]
async fn discovery_catalog_extensions_and_error_bodies() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    let n = Neutron::new(&cloud, &admin);
    let versions = cloud
        .http
        .get(format!("{}/networking", cloud.url))
        .send()
        .await
        .unwrap();
    assert_eq!(versions.status(), StatusCode::OK);
    let body: Value = versions.json().await.unwrap();
    assert_eq!(body["versions"][0]["id"], "v2.0");
    assert!(
        body["versions"][0]["links"][0]["href"]
            .as_str()
            .unwrap()
            .ends_with("/networking/v2.0/")
    );

    let catalog = cloud.get("/auth/catalog", &admin).await;
    let network = catalog.body["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "network")
        .cloned()
        .unwrap();
    assert!(
        network["endpoints"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/networking")
    );

    let exts = n.get("/v2.0/extensions").await;
    let aliases: Vec<&str> = exts.body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    for alias in [
        "security-group",
        "port-security",
        "allowed-address-pairs",
        "provider",
        "external-net",
        "quotas",
        "standard-attr-tag",
        "binding",
        "network-ip-availability",
    ] {
        assert!(aliases.contains(&alias), "{alias} missing");
    }
    assert!(aliases.contains(&"router"), "routers are served");
    assert!(!aliases.contains(&"l3-ha"), "HA routers are not served");
    assert_eq!(
        n.get("/v2.0/extensions/binding").await.body["extension"]["alias"],
        "binding"
    );
    assert_neutron_error(
        &n.get("/v2.0/extensions/l3-ha").await,
        StatusCode::NOT_FOUND,
        "ExtensionNotFound",
    );

    // No token, a bad token, malformed JSON, a wrong shape, unknown attributes.
    let anonymous = Neutron::new(&cloud, "");
    assert_eq!(
        anonymous.get("/v2.0/networks").await.status,
        StatusCode::UNAUTHORIZED
    );
    let bad = cloud
        .http
        .post(format!("{}/networking/v2.0/networks", cloud.url))
        .header("X-Auth-Token", &admin)
        .header("Content-Type", "application/json")
        .body("{\"network\": ")
        .send()
        .await
        .unwrap();
    let bad = Reply::from(bad).await;
    assert_neutron_error(&bad, StatusCode::BAD_REQUEST, "HTTPBadRequest");
    assert_neutron_error(
        &n.post("/v2.0/networks", json!({"network": "x"})).await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    assert_neutron_error(
        &n.post("/v2.0/networks", json!({"network": {"bogus": 1}}))
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    assert_neutron_error(
        &n.post("/v2.0/networks", json!({"network": {"name": 5}}))
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    assert_neutron_error(
        &n.post("/v2.0/networks", json!({"networks": [{"name": "a"}]}))
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    assert_neutron_error(
        &n.get("/v2.0/networks/nope").await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
    assert_eq!(
        n.get("/v2.0/networks").await.body["networks"],
        json!([]),
        "nothing was created by bad requests"
    );
    let huge = "x".repeat(2 * 1024 * 1024);
    let reply = n
        .post("/v2.0/networks", json!({"network": {"name": huge}}))
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn networks_defaults_policy_and_isolation() {
    let cloud = Cloud::start().await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob, reader) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
        Neutron::new(&cloud, &t.reader),
    );

    let net = alice.network("net01").await;
    assert_eq!(net["admin_state_up"], true);
    assert_eq!(net["status"], "ACTIVE");
    assert_eq!(net["shared"], false);
    assert_eq!(net["router:external"], false);
    assert_eq!(net["port_security_enabled"], true);
    assert_eq!(
        net["mtu"], 1450,
        "VXLAN leaves 50 bytes for the encapsulation"
    );
    assert_eq!(net["project_id"], t.alice_project.as_str());
    assert_eq!(net["tenant_id"], t.alice_project.as_str());
    assert_eq!(net["subnets"], json!([]));
    assert!(net["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        net.get("provider:network_type").is_none(),
        "provider attributes are for admins"
    );
    let seen = admin.get(&format!("/v2.0/networks/{}", id(&net))).await;
    assert_eq!(seen.body["network"]["provider:network_type"], "vxlan");
    assert!(
        seen.body["network"]["provider:segmentation_id"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Members may not use admin attributes; readers may not create.
    assert_neutron_error(
        &alice
            .post(
                "/v2.0/networks",
                json!({"network": {"name": "s", "shared": true}}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &alice
            .post(
                "/v2.0/networks",
                json!({"network": {"provider:network_type": "vxlan"}}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &alice
            .post(
                "/v2.0/networks",
                json!({"network": {"router:external": true}}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &reader
            .post("/v2.0/networks", json!({"network": {"name": "r"}}))
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &alice
            .post("/v2.0/networks", json!({"network": {"mtu": 9000}}))
            .await,
        StatusCode::BAD_REQUEST,
        "InvalidInput",
    );

    // Bob does not see Alice's network, cannot change or delete it.
    assert_neutron_error(
        &bob.get(&format!("/v2.0/networks/{}", id(&net))).await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
    assert_eq!(bob.get("/v2.0/networks").await.body["networks"], json!([]));
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/networks/{}", id(&net)),
            json!({"network": {"name": "x"}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
    assert_neutron_error(
        &bob.delete(&format!("/v2.0/networks/{}", id(&net))).await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );

    // A shared network is visible to Bob but still not his to change.
    let shared = admin
        .create(
            "networks",
            "network",
            json!({"name": "shared01", "shared": true}),
        )
        .await;
    let listed = bob.get("/v2.0/networks").await;
    assert_eq!(listed.body["networks"].as_array().unwrap().len(), 1);
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/networks/{}", id(&shared)),
            json!({"network": {"name": "x"}}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );

    // Updates bump the revision; provider attributes are immutable.
    let updated = alice
        .put(
            &format!("/v2.0/networks/{}", id(&net)),
            json!({"network": {"name": "net01b", "mtu": 1400, "description": "d"}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["network"]["name"], "net01b");
    assert_eq!(updated.body["network"]["mtu"], 1400);
    assert!(
        updated.body["network"]["revision_number"].as_i64().unwrap()
            > net["revision_number"].as_i64().unwrap()
    );

    // Provider networks: flat/vlan need a configured physical network; segments are exclusive.
    assert_neutron_error(
        &admin.post("/v2.0/networks", json!({"network": {"provider:network_type": "flat", "provider:physical_network": "nope"}})).await,
        StatusCode::BAD_REQUEST,
        "InvalidInput",
    );
    let vx = admin.create("networks", "network", json!({"name": "vx", "provider:network_type": "vxlan", "provider:segmentation_id": 4242})).await;
    assert_eq!(vx["provider:segmentation_id"], 4242);
    assert_neutron_error(
        &admin.post("/v2.0/networks", json!({"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 4242}})).await,
        StatusCode::CONFLICT,
        "SegmentInUse",
    );

    // Filters, fields, sorting and pagination with links.
    for i in 0..5 {
        alice.network(&format!("page{i}")).await;
    }
    let page = alice
        .get("/v2.0/networks?limit=2&sort_key=name&sort_dir=asc&fields=id&fields=name")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let items = page.body["networks"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0].as_object().unwrap().len(),
        2,
        "only the fields asked for"
    );
    assert_eq!(items[0]["name"], "net01b");
    let next = page.body["networks_links"][0]["href"].as_str().unwrap();
    assert!(next.contains("marker="), "{next}");
    let path = next.split("/networking").nth(1).unwrap();
    let second = alice.get(path).await;
    assert_eq!(second.body["networks"][0]["name"], "page1");
    assert_eq!(
        alice.get("/v2.0/networks?name=page3").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        alice.get("/v2.0/networks?name=page3&name=page4").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        alice.get("/v2.0/networks?shared=true").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_neutron_error(
        &alice.get("/v2.0/networks?limit=-1").await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );

    // Deleting: gone, then 404.
    assert_eq!(
        alice
            .delete(&format!("/v2.0/networks/{}", id(&net)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_neutron_error(
        &alice.get(&format!("/v2.0/networks/{}", id(&net))).await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
}

#[tokio::test]
async fn subnets_validate_cidr_gateway_and_pools() {
    let cloud = Cloud::start().await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
    );
    let net = alice.network("net01").await;
    let nid = id(&net);
    let bad = |body: Value| json!({"subnet": body});

    for (body, kind) in [
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/33"}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "banana"}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.5/24"}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 6, "cidr": "10.0.0.0/24"}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 5, "cidr": "10.0.0.0/24"}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": "10.9.0.1"}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.1.2", "end": "10.0.1.9"}]}),
            "OutOfBoundsAllocationPool",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.9", "end": "10.0.0.2"}]}),
            "InvalidAllocationPool",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.5", "end": "10.0.0.20"}]}),
            "OverlappingAllocationPools",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "dns_nameservers": ["x"]}),
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "host_routes": [{"destination": "10.1.0.0/16"}]}),
            "InvalidInput",
        ),
    ] {
        assert_neutron_error(
            &alice.post("/v2.0/subnets", bad(body.clone())).await,
            StatusCode::BAD_REQUEST,
            kind,
        );
    }
    assert_neutron_error(
        &alice.post("/v2.0/subnets", bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.9"}]}))).await,
        StatusCode::CONFLICT,
        "GatewayConflictWithAllocationPools",
    );
    // Another project's network: not found for Bob.
    assert_neutron_error(
        &bob.post(
            "/v2.0/subnets",
            bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.0/24"})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
    assert_eq!(
        alice.get("/v2.0/subnets").await.body["subnets"],
        json!([]),
        "nothing was created"
    );

    let subnet = alice
        .subnet(&net, "10.0.0.0/24", json!({"name": "sub01", "dns_nameservers": ["192.0.2.53"], "host_routes": [{"destination": "10.1.0.0/16", "nexthop": "10.0.0.254"}]}))
        .await;
    assert_eq!(subnet["gateway_ip"], "10.0.0.1");
    assert_eq!(
        subnet["allocation_pools"],
        json!([{"start": "10.0.0.2", "end": "10.0.0.254"}])
    );
    assert_eq!(subnet["enable_dhcp"], true);
    assert_eq!(subnet["dns_nameservers"], json!(["192.0.2.53"]));
    assert_eq!(subnet["host_routes"][0]["nexthop"], "10.0.0.254");
    // DHCP on: the network got a DHCP port holding the first free address.
    let ports = admin
        .get(&format!(
            "/v2.0/ports?network_id={nid}&device_owner=network:dhcp"
        ))
        .await;
    assert_eq!(
        ports.body["ports"].as_array().unwrap().len(),
        1,
        "{}",
        ports.body
    );
    assert_eq!(
        ports.body["ports"][0]["fixed_ips"][0]["ip_address"],
        "10.0.0.2"
    );
    assert_eq!(
        alice.get(&format!("/v2.0/networks/{nid}")).await.body["network"]["subnets"],
        json!([id(&subnet)])
    );

    // Overlap within a network is refused; another network may reuse the range.
    assert_neutron_error(
        &alice
            .post(
                "/v2.0/subnets",
                bad(json!({"network_id": nid, "ip_version": 4, "cidr": "10.0.0.128/25"})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "InvalidInput",
    );
    let other = alice.network("net02").await;
    let no_dhcp = alice.subnet(&other, "10.0.0.0/24", json!({"enable_dhcp": false, "gateway_ip": null, "allocation_pools": [{"start": "10.0.0.100", "end": "10.0.0.110"}]})).await;
    assert_eq!(no_dhcp["gateway_ip"], Value::Null);
    let none = admin
        .get(&format!("/v2.0/ports?network_id={}", id(&other)))
        .await;
    assert_eq!(none.body["ports"], json!([]), "no DHCP port without DHCP");

    let v6 = alice.subnet(&net, "fd00:1::/64", json!({})).await;
    assert_eq!(v6["ip_version"], 6);
    assert_eq!(v6["gateway_ip"], "fd00:1::1");

    // The gateway cannot move onto an address in use (the DHCP port holds .2).
    assert_neutron_error(
        &alice.put(&format!("/v2.0/subnets/{}", id(&subnet)), json!({"subnet": {"gateway_ip": "10.0.0.2", "allocation_pools": [{"start": "10.0.0.3", "end": "10.0.0.254"}]}})).await,
        StatusCode::CONFLICT,
        "GatewayIpInUse",
    );
    // Only admins touch the DHCP port.
    let dhcp_port = admin
        .get(&format!(
            "/v2.0/ports?network_id={nid}&device_owner=network:dhcp"
        ))
        .await
        .body["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_neutron_error(
        &alice.delete(&format!("/v2.0/ports/{dhcp_port}")).await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    // Updates: read-only attributes refused, DHCP off removes the DHCP port.
    assert_neutron_error(
        &alice
            .put(
                &format!("/v2.0/subnets/{}", id(&subnet)),
                json!({"subnet": {"cidr": "10.1.0.0/24"}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    let updated = alice
        .put(
            &format!("/v2.0/subnets/{}", id(&subnet)),
            json!({"subnet": {"enable_dhcp": false, "name": "renamed"}}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        admin
            .get(&format!("/v2.0/ports?network_id={nid}"))
            .await
            .body["ports"],
        json!([])
    );

    // A subnet with a port on it cannot go; the network neither.
    let port = alice
        .create("ports", "port", json!({"network_id": nid}))
        .await;
    assert_neutron_error(
        &alice
            .delete(&format!("/v2.0/subnets/{}", id(&subnet)))
            .await,
        StatusCode::CONFLICT,
        "SubnetInUse",
    );
    assert_neutron_error(
        &alice.delete(&format!("/v2.0/networks/{nid}")).await,
        StatusCode::CONFLICT,
        "NetworkInUse",
    );
    assert_eq!(
        alice
            .delete(&format!("/v2.0/ports/{}", id(&port)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice
            .delete(&format!("/v2.0/subnets/{}", id(&subnet)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice.delete(&format!("/v2.0/networks/{nid}")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_neutron_error(
        &alice.get(&format!("/v2.0/subnets/{}", id(&v6))).await,
        StatusCode::NOT_FOUND,
        "SubnetNotFound",
    );
}

#[tokio::test]
async fn ports_ipam_macs_groups_and_isolation() {
    let cloud = Cloud::start().await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
    );
    let net = alice.network("net01").await;
    let nid = id(&net);
    let s1 = alice
        .subnet(&net, "10.0.0.0/24", json!({"enable_dhcp": false}))
        .await;
    let other = alice.network("net02").await;
    let s_other = alice
        .subnet(&other, "10.9.0.0/24", json!({"enable_dhcp": false}))
        .await;

    let p1 = alice
        .create("ports", "port", json!({"network_id": nid, "name": "p1"}))
        .await;
    assert_eq!(
        p1["fixed_ips"],
        json!([{"subnet_id": id(&s1), "ip_address": "10.0.0.2"}])
    );
    assert!(p1["mac_address"].as_str().unwrap().starts_with("fa:16:3e:"));
    assert_eq!(p1["status"], "DOWN");
    assert_eq!(p1["admin_state_up"], true);
    assert_eq!(p1["port_security_enabled"], true);
    assert_eq!(
        p1["security_groups"].as_array().unwrap().len(),
        1,
        "the default group"
    );
    assert!(
        p1.get("binding:host_id").is_none(),
        "binding details are for admins"
    );
    let default_group = p1["security_groups"][0].as_str().unwrap().to_owned();
    let groups = alice.get("/v2.0/security-groups?name=default").await;
    assert_eq!(
        groups.body["security_groups"][0]["id"],
        default_group.as_str()
    );

    let p2 = alice.create("ports", "port", json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.50"}], "mac_address": "fa:16:3e:aa:bb:cc"})).await;
    assert_eq!(p2["fixed_ips"][0]["ip_address"], "10.0.0.50");
    for (attrs, status, kind) in [
        (
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.50"}]}),
            StatusCode::CONFLICT,
            "IpAddressAlreadyAllocated",
        ),
        (
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.1"}]}),
            StatusCode::CONFLICT,
            "IpAddressAlreadyAllocated",
        ),
        (
            json!({"network_id": nid, "fixed_ips": [{"subnet_id": id(&s_other)}]}),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.9.0.7"}]}),
            StatusCode::BAD_REQUEST,
            "InvalidIpForNetwork",
        ),
        (
            json!({"network_id": nid, "fixed_ips": [{"subnet_id": id(&s1), "ip_address": "10.9.0.7"}]}),
            StatusCode::BAD_REQUEST,
            "InvalidIpForSubnet",
        ),
        (
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "nope"}]}),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "mac_address": "fa:16:3e:aa:bb:cc"}),
            StatusCode::CONFLICT,
            "MacAddressInUse",
        ),
        (
            json!({"network_id": nid, "mac_address": "01:00:5e:00:00:01"}),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "security_groups": ["nope"]}),
            StatusCode::NOT_FOUND,
            "SecurityGroupNotFound",
        ),
        (
            json!({"network_id": nid, "port_security_enabled": false, "security_groups": [default_group]}),
            StatusCode::CONFLICT,
            "PortSecurityAndIPRequiredForSecurityGroups",
        ),
        (
            json!({"network_id": nid, "port_security_enabled": false, "allowed_address_pairs": [{"ip_address": "10.0.0.99"}]}),
            StatusCode::CONFLICT,
            "AddressPairAndPortSecurityRequired",
        ),
        (
            json!({"network_id": nid, "allowed_address_pairs": [{"ip_address": "x"}]}),
            StatusCode::BAD_REQUEST,
            "InvalidInput",
        ),
        (
            json!({"network_id": nid, "binding:host_id": "h1"}),
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
        ),
        (
            json!({"network_id": "nope"}),
            StatusCode::NOT_FOUND,
            "NetworkNotFound",
        ),
    ] {
        let reply = alice
            .post("/v2.0/ports", json!({"port": attrs.clone()}))
            .await;
        assert_neutron_error(&reply, status, kind);
    }
    // The same MAC is fine on another network.
    alice
        .create(
            "ports",
            "port",
            json!({"network_id": id(&other), "mac_address": "fa:16:3e:aa:bb:cc"}),
        )
        .await;
    assert_eq!(
        alice
            .get(&format!("/v2.0/ports?network_id={nid}"))
            .await
            .body["ports"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "failed creates left nothing"
    );

    // Bob cannot use, see or change Alice's network and ports; a port of another project's
    // security group is refused.
    assert_neutron_error(
        &bob.post("/v2.0/ports", json!({"port": {"network_id": nid}}))
            .await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
    assert_neutron_error(
        &bob.get(&format!("/v2.0/ports/{}", id(&p1))).await,
        StatusCode::NOT_FOUND,
        "PortNotFound",
    );
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/ports/{}", id(&p1)),
            json!({"port": {"name": "x"}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "PortNotFound",
    );
    assert_neutron_error(
        &bob.delete(&format!("/v2.0/ports/{}", id(&p1))).await,
        StatusCode::NOT_FOUND,
        "PortNotFound",
    );
    assert_eq!(bob.get("/v2.0/ports").await.body["ports"], json!([]));
    let bob_net = bob.network("bobnet").await;
    bob.subnet(&bob_net, "10.7.0.0/24", json!({"enable_dhcp": false}))
        .await;
    assert_neutron_error(
        &bob.post(
            "/v2.0/ports",
            json!({"port": {"network_id": id(&bob_net), "security_groups": [default_group]}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "SecurityGroupNotFound",
    );

    // On a shared network Bob gets a port (his own).
    let shared = admin
        .create(
            "networks",
            "network",
            json!({"name": "shared", "shared": true}),
        )
        .await;
    admin
        .subnet(&shared, "10.8.0.0/24", json!({"enable_dhcp": false}))
        .await;
    let bob_port = bob
        .create("ports", "port", json!({"network_id": id(&shared)}))
        .await;
    assert_eq!(bob_port["fixed_ips"][0]["ip_address"], "10.8.0.2");
    // ...but nothing that would let it impersonate others there, nor act for the network.
    for attrs in [
        json!({"mac_address": "fa:16:3e:00:00:99"}),
        json!({"fixed_ips": [{"ip_address": "10.8.0.50"}]}),
        json!({"port_security_enabled": false}),
        json!({"allowed_address_pairs": [{"ip_address": "0.0.0.0/0"}]}),
        json!({"device_owner": "network:router_interface"}),
        json!({"device_owner": "network:dhcp"}),
    ] {
        let mut attrs = attrs;
        attrs["network_id"] = json!(id(&shared));
        assert_neutron_error(
            &bob.post("/v2.0/ports", json!({"port": attrs.clone()}))
                .await,
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
        );
    }
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/ports/{}", id(&bob_port)),
            json!({"port": {"allowed_address_pairs": [{"ip_address": "10.8.0.0/24"}]}}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    // While Bob has a port on it, the network cannot stop being shared.
    assert_neutron_error(
        &admin
            .put(
                &format!("/v2.0/networks/{}", id(&shared)),
                json!({"network": {"shared": false}}),
            )
            .await,
        StatusCode::CONFLICT,
        "InvalidSharedSetting",
    );

    // Admins bind ports to hosts.
    let bound = admin
        .put(
            &format!("/v2.0/ports/{}", id(&p1)),
            json!({"port": {"binding:host_id": "compute1"}}),
        )
        .await;
    assert_eq!(bound.status, StatusCode::OK, "{}", bound.body);
    assert_eq!(bound.body["port"]["binding:host_id"], "compute1");
    assert_eq!(bound.body["port"]["binding:vif_type"], "bridge");

    // Updating fixed_ips: a new address, the old one released and reusable.
    let moved = alice.put(&format!("/v2.0/ports/{}", id(&p1)), json!({"port": {"fixed_ips": [{"ip_address": "10.0.0.77"}], "allowed_address_pairs": [{"ip_address": "10.0.0.0/28"}]}})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(
        moved.body["port"]["fixed_ips"][0]["ip_address"],
        "10.0.0.77"
    );
    assert_eq!(
        moved.body["port"]["allowed_address_pairs"][0]["mac_address"],
        p1["mac_address"]
    );
    let reuse = alice
        .create(
            "ports",
            "port",
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.2"}]}),
        )
        .await;
    assert_eq!(reuse["fixed_ips"][0]["ip_address"], "10.0.0.2");
    assert_eq!(
        alice
            .get("/v2.0/ports?fixed_ips=ip_address%3D10.0.0.77")
            .await
            .body["ports"][0]["id"],
        id(&p1).as_str()
    );
    assert_eq!(
        alice
            .delete(&format!("/v2.0/ports/{}", id(&reuse)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let again = alice
        .create(
            "ports",
            "port",
            json!({"network_id": nid, "fixed_ips": [{"ip_address": "10.0.0.2"}]}),
        )
        .await;
    assert_eq!(
        again["fixed_ips"][0]["ip_address"], "10.0.0.2",
        "deleting a port releases its address"
    );
}

#[tokio::test]
async fn concurrent_ports_never_share_an_address() {
    let cloud = Cloud::start().await;
    let admin_token = cloud.admin_token().await;
    let admin = Neutron::new(&cloud, &admin_token);
    let net = admin.network("busy").await;
    admin
        .subnet(&net, "10.20.0.0/26", json!({"enable_dhcp": false}))
        .await;
    let nid = id(&net);
    // 61 addresses in the pool, 70 requests: 61 succeed with distinct addresses, 9 are told so.
    let replies = futures_util::future::join_all(
        (0..70).map(|_| admin.post("/v2.0/ports", json!({"port": {"network_id": nid}}))),
    )
    .await;
    let mut addresses = HashSet::new();
    let mut exhausted = 0;
    for reply in &replies {
        match reply.status {
            StatusCode::CREATED => {
                let ip = reply.body["port"]["fixed_ips"][0]["ip_address"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                assert!(addresses.insert(ip.clone()), "{ip} handed out twice");
            }
            _ => {
                assert_neutron_error(reply, StatusCode::CONFLICT, "IpAddressGenerationFailure");
                exhausted += 1;
            }
        }
    }
    assert_eq!(addresses.len(), 61);
    assert_eq!(exhausted, 9);
}

#[tokio::test]
async fn security_groups_and_rules() {
    let cloud = Cloud::start().await;
    let t = tenants(&cloud).await;
    let (alice, bob, reader) = (
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
        Neutron::new(&cloud, &t.reader),
    );

    let groups = alice.get("/v2.0/security-groups").await;
    assert_eq!(groups.status, StatusCode::OK);
    let default = groups.body["security_groups"][0].clone();
    assert_eq!(default["name"], "default");
    let rules = default["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    assert!(rules.iter().any(|r| r["direction"] == "ingress"
        && r["remote_group_id"] == default["id"]
        && r["ethertype"] == "IPv4"));
    assert!(rules.iter().any(|r| r["direction"] == "egress"
        && r["remote_group_id"].is_null()
        && r["ethertype"] == "IPv6"));
    assert_eq!(
        alice.get("/v2.0/security-groups").await.body["security_groups"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "created once"
    );

    let web = alice
        .create(
            "security-groups",
            "security_group",
            json!({"name": "web", "description": "http"}),
        )
        .await;
    assert_eq!(
        web["security_group_rules"].as_array().unwrap().len(),
        2,
        "egress for both families"
    );
    let gid = id(&web);
    let ssh = alice.create("security-group-rules", "security_group_rule", json!({"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"})).await;
    assert_eq!(ssh["protocol"], "tcp");
    assert_eq!(ssh["ethertype"], "IPv4");
    assert_eq!(ssh["normalized_cidr"], "0.0.0.0/0");
    let dup = alice.post("/v2.0/security-group-rules", json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress", "protocol": "6", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}})).await;
    assert_neutron_error(&dup, StatusCode::CONFLICT, "SecurityGroupRuleExists");
    let icmp = alice.create("security-group-rules", "security_group_rule", json!({"security_group_id": gid, "direction": "ingress", "protocol": "icmp", "port_range_min": 8, "port_range_max": 0})).await;
    assert_eq!(icmp["port_range_min"], 8);
    let by_number = alice.create("security-group-rules", "security_group_rule", json!({"security_group_id": gid, "direction": "ingress", "protocol": 17, "port_range_min": 53})).await;
    assert_eq!(by_number["port_range_max"], 53);

    for (attrs, kind) in [
        (
            json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 30, "port_range_max": 20}),
            "SecurityGroupInvalidPortRange",
        ),
        (
            json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 0}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 70000}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"direction": "ingress", "protocol": "gre", "port_range_min": 1}),
            "SecurityGroupInvalidPortValue",
        ),
        (
            json!({"direction": "ingress", "protocol": "icmp", "port_range_min": 300}),
            "SecurityGroupInvalidIcmpValue",
        ),
        (
            json!({"direction": "ingress", "protocol": "bogus"}),
            "SecurityGroupRuleInvalidProtocol",
        ),
        (json!({"direction": "sideways"}), "InvalidInput"),
        (
            json!({"direction": "ingress", "ethertype": "IPv5"}),
            "SecurityGroupRuleInvalidEtherType",
        ),
        (
            json!({"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}),
            "SecurityGroupRuleParameterConflict",
        ),
        (
            json!({"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": gid}),
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
        ),
    ] {
        let mut attrs = attrs;
        attrs["security_group_id"] = json!(gid);
        let reply = alice
            .post(
                "/v2.0/security-group-rules",
                json!({"security_group_rule": attrs}),
            )
            .await;
        assert_neutron_error(&reply, StatusCode::BAD_REQUEST, kind);
    }
    assert_eq!(
        alice
            .get(&format!("/v2.0/security-groups/{gid}"))
            .await
            .body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "bad rules left nothing"
    );

    // Isolation: Bob sees none of it, cannot add rules or point at Alice's group.
    assert_neutron_error(
        &bob.get(&format!("/v2.0/security-groups/{gid}")).await,
        StatusCode::NOT_FOUND,
        "SecurityGroupNotFound",
    );
    assert_neutron_error(
        &bob.get(&format!("/v2.0/security-group-rules/{}", id(&ssh)))
            .await,
        StatusCode::NOT_FOUND,
        "SecurityGroupRuleNotFound",
    );
    assert_neutron_error(
        &bob.post(
            "/v2.0/security-group-rules",
            json!({"security_group_rule": {"security_group_id": gid, "direction": "ingress"}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "SecurityGroupNotFound",
    );
    let bob_group = bob
        .create("security-groups", "security_group", json!({"name": "b"}))
        .await;
    assert_neutron_error(&bob.post("/v2.0/security-group-rules", json!({"security_group_rule": {"security_group_id": id(&bob_group), "direction": "ingress", "remote_group_id": gid}})).await, StatusCode::NOT_FOUND, "SecurityGroupNotFound");
    assert_neutron_error(
        &bob.delete(&format!("/v2.0/security-groups/{gid}")).await,
        StatusCode::NOT_FOUND,
        "SecurityGroupNotFound",
    );
    assert!(
        bob.get("/v2.0/security-group-rules").await.body["security_group_rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["security_group_id"] != gid.as_str())
    );
    assert_neutron_error(
        &reader
            .post(
                "/v2.0/security-groups",
                json!({"security_group": {"name": "r"}}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );

    // A group in use cannot be deleted; the default group never by its project.
    let net = alice.network("n").await;
    alice
        .subnet(&net, "10.0.0.0/24", json!({"enable_dhcp": false}))
        .await;
    let port = alice
        .create(
            "ports",
            "port",
            json!({"network_id": id(&net), "security_groups": [gid]}),
        )
        .await;
    assert_neutron_error(
        &alice.delete(&format!("/v2.0/security-groups/{gid}")).await,
        StatusCode::CONFLICT,
        "SecurityGroupInUse",
    );
    assert_neutron_error(
        &alice
            .delete(&format!("/v2.0/security-groups/{}", id(&default)))
            .await,
        StatusCode::CONFLICT,
        "SecurityGroupCannotRemoveDefault",
    );
    assert_eq!(
        alice
            .delete(&format!("/v2.0/ports/{}", id(&port)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice
            .delete(&format!("/v2.0/security-group-rules/{}", id(&ssh)))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // Deleting a group takes the rules that name it as their remote group with it.
    let peer = alice
        .create("security-groups", "security_group", json!({"name": "peer"}))
        .await;
    let from_web = alice
        .create(
            "security-group-rules",
            "security_group_rule",
            json!({"security_group_id": id(&peer), "direction": "ingress", "remote_group_id": gid}),
        )
        .await;
    assert_eq!(
        alice
            .delete(&format!("/v2.0/security-groups/{gid}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_neutron_error(
        &alice
            .get(&format!("/v2.0/security-group-rules/{}", id(&from_web)))
            .await,
        StatusCode::NOT_FOUND,
        "SecurityGroupRuleNotFound",
    );
}

#[tokio::test]
async fn quotas_tags_and_ip_availability() {
    let cloud = Cloud::start().await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
    );
    let project = t.alice_project.clone();

    let quota = alice.get(&format!("/v2.0/quotas/{project}")).await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
    assert_eq!(quota.body["quota"]["network"], 100);
    assert_eq!(quota.body["quota"]["port"], 500);
    assert_neutron_error(
        &bob.get(&format!("/v2.0/quotas/{project}")).await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &alice
            .put(
                &format!("/v2.0/quotas/{project}"),
                json!({"quota": {"network": 1}}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &admin
            .put(
                &format!("/v2.0/quotas/{project}"),
                json!({"quota": {"network": "many"}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    assert_neutron_error(
        &admin
            .put(
                &format!("/v2.0/quotas/{project}"),
                json!({"quota": {"bogus": 1}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    let set = admin
        .put(
            &format!("/v2.0/quotas/{project}"),
            json!({"quota": {"network": 1}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["quota"]["network"], 1);
    let net = alice.network("only").await;
    assert_neutron_error(
        &alice
            .post("/v2.0/networks", json!({"network": {"name": "two"}}))
            .await,
        StatusCode::CONFLICT,
        "OverQuota",
    );
    let details = alice.get(&format!("/v2.0/quotas/{project}/details")).await;
    assert_eq!(
        details.body["quota"]["network"],
        json!({"limit": 1, "used": 1, "reserved": 0})
    );
    assert_eq!(
        admin.get("/v2.0/quotas").await.body["quotas"][0]["project_id"],
        project.as_str()
    );
    assert_eq!(
        admin
            .delete(&format!("/v2.0/quotas/{project}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice.get(&format!("/v2.0/quotas/{project}")).await.body["quota"]["network"],
        100
    );

    // Tags: add, replace, filter, remove; Bob cannot tag Alice's network.
    let nid = id(&net);
    assert_eq!(
        alice
            .send(Method::PUT, &format!("/v2.0/networks/{nid}/tags/red"), None)
            .await
            .status,
        StatusCode::CREATED
    );
    let replaced = alice
        .put(
            &format!("/v2.0/networks/{nid}/tags"),
            json!({"tags": ["blue", "green"]}),
        )
        .await;
    assert_eq!(replaced.body["tags"], json!(["blue", "green"]));
    assert_eq!(
        alice
            .get(&format!("/v2.0/networks/{nid}/tags/blue"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_neutron_error(
        &alice.get(&format!("/v2.0/networks/{nid}/tags/red")).await,
        StatusCode::NOT_FOUND,
        "TagNotFound",
    );
    assert_eq!(
        alice.get("/v2.0/networks?tags=blue,green").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        alice.get("/v2.0/networks?not-tags-any=blue").await.body["networks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_neutron_error(
        &bob.send(Method::PUT, &format!("/v2.0/networks/{nid}/tags/x"), None)
            .await,
        StatusCode::NOT_FOUND,
        "NetworkNotFound",
    );
    assert_eq!(
        alice
            .delete(&format!("/v2.0/networks/{nid}/tags"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        alice.get(&format!("/v2.0/networks/{nid}")).await.body["network"]["tags"],
        json!([])
    );

    // IP availability: admins only; pool size and used addresses per subnet.
    alice.subnet(&net, "10.0.0.0/28", json!({})).await;
    alice
        .create("ports", "port", json!({"network_id": nid}))
        .await;
    assert_neutron_error(
        &alice.get("/v2.0/network-ip-availabilities").await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    let avail = admin
        .get(&format!("/v2.0/network-ip-availabilities/{nid}"))
        .await;
    assert_eq!(avail.status, StatusCode::OK, "{}", avail.body);
    let a = &avail.body["network_ip_availability"];
    assert_eq!(a["total_ips"], 13);
    assert_eq!(a["used_ips"], 2, "the DHCP port and the new port");
    assert_eq!(a["subnet_ip_availability"][0]["cidr"], "10.0.0.0/28");
}
