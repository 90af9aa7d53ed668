//! Routers and floating IPs through the API: the walkthrough's calls, every refusal
//! Neutron gives (with its error type), and what another project or a reader may not do.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Neutron, assert_neutron_error, id, tenants};
use crate::common::Cloud;

/// A cloud whose `physnet1` is `lo` (API tests: the agent is off, nothing is built).
async fn l3_cloud() -> Cloud {
    Cloud::start_with(|c| {
        c.network
            .physical_interfaces
            .insert("physnet1".into(), "lo".into());
    })
    .await
}

/// An external flat network on `physnet1` with a subnet without DHCP, made by the admin.
async fn external(admin: &Neutron<'_>) -> (Value, Value) {
    let net = admin
        .create(
            "networks",
            "network",
            json!({"name": "public01", "router:external": true,
                   "provider:network_type": "flat", "provider:physical_network": "physnet1"}),
        )
        .await;
    let subnet = admin
        .subnet(
            &net,
            "198.51.100.0/24",
            json!({"enable_dhcp": false, "gateway_ip": "198.51.100.1",
                   "allocation_pools": [{"start": "198.51.100.10", "end": "198.51.100.99"}]}),
        )
        .await;
    (net, subnet)
}

#[tokio::test]
async fn routers_interfaces_gateways_and_floating_ips() {
    let cloud = l3_cloud().await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob, reader) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
        Neutron::new(&cloud, &t.reader),
    );
    let (public, public_subnet) = external(&admin).await;
    let net = alice.network("net01").await;
    let sub = alice.subnet(&net, "10.0.0.0/24", json!({})).await;
    let net2 = alice.network("net02").await;
    let sub2 = alice.subnet(&net2, "10.0.1.0/24", json!({})).await;

    // The extensions are listed now that they work.
    let ext = alice.get("/v2.0/extensions").await;
    for alias in ["router", "ext-gw-mode", "extraroute", "fip-port-details"] {
        assert!(
            ext.body["extensions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["alias"] == alias),
            "{alias}"
        );
    }

    // Create: defaults as Neutron shows them; a reader may not create.
    let router = alice
        .create("routers", "router", json!({"name": "r1"}))
        .await;
    let rid = id(&router);
    assert_eq!(router["status"], "ACTIVE");
    assert_eq!(router["admin_state_up"], true);
    assert_eq!(router["external_gateway_info"], Value::Null);
    assert_eq!(router["routes"], json!([]));
    assert_eq!(router["project_id"], t.alice_project.as_str());
    assert_neutron_error(
        &reader
            .post("/v2.0/routers", json!({"router": {"name": "x"}}))
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    assert_neutron_error(
        &alice
            .post("/v2.0/routers", json!({"router": {"name": 7}}))
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    let r = alice
        .post("/v2.0/routers", json!({"router": {"bogus": 1}}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Gateway: not on a tenant network; on the external one with an address from its pool.
    let path = format!("/v2.0/routers/{rid}");
    assert_neutron_error(
        &alice
            .put(
                &path,
                json!({"router": {"external_gateway_info": {"network_id": net["id"]}}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    assert_neutron_error(
        &alice
            .put(&path, json!({"router": {"external_gateway_info": {"network_id": public["id"], "enable_snat": false}}}))
            .await,
        StatusCode::FORBIDDEN,
        "PolicyNotAuthorized",
    );
    let set = alice
        .put(
            &path,
            json!({"router": {"external_gateway_info": {"network_id": public["id"]}}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let gw = &set.body["router"]["external_gateway_info"];
    assert_eq!(gw["network_id"], public["id"]);
    assert_eq!(gw["enable_snat"], true);
    assert_eq!(
        gw["external_fixed_ips"][0]["subnet_id"],
        public_subnet["id"]
    );
    assert_eq!(gw["external_fixed_ips"][0]["ip_address"], "198.51.100.10");

    // Interfaces: by subnet (holds the gateway address), by port; refusals.
    let add = format!("/v2.0/routers/{rid}/add_router_interface");
    let remove = format!("/v2.0/routers/{rid}/remove_router_interface");
    let added = alice.put(&add, json!({"subnet_id": sub["id"]})).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["subnet_id"], sub["id"]);
    assert_eq!(added.body["id"], rid.as_str());
    let iface_port = alice
        .get(&format!(
            "/v2.0/ports/{}",
            added.body["port_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        iface_port.body["port"]["device_owner"],
        "network:router_interface"
    );
    assert_eq!(iface_port.body["port"]["device_id"], rid.as_str());
    assert_eq!(
        iface_port.body["port"]["fixed_ips"][0]["ip_address"],
        "10.0.0.1"
    );
    assert_neutron_error(
        &alice.put(&add, json!({"subnet_id": sub["id"]})).await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    assert_neutron_error(
        &alice.put(&add, json!({})).await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    assert_neutron_error(
        &admin
            .put(&add, json!({"subnet_id": public_subnet["id"]}))
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    let overlapping_net = alice.network("net03").await;
    let overlapping = alice
        .subnet(&overlapping_net, "10.0.0.0/25", json!({}))
        .await;
    assert_neutron_error(
        &alice
            .put(&add, json!({"subnet_id": overlapping["id"]}))
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    let port2 = alice
        .create("ports", "port", json!({"network_id": net2["id"]}))
        .await;
    let by_port = alice.put(&add, json!({"port_id": port2["id"]})).await;
    assert_eq!(by_port.status, StatusCode::OK, "{}", by_port.body);
    assert_eq!(by_port.body["subnet_id"], sub2["id"]);
    // The interface port is the router's now: not deletable through the port API.
    assert_neutron_error(
        &alice.delete(&format!("/v2.0/ports/{}", id(&port2))).await,
        StatusCode::CONFLICT,
        "ServicePortInUse",
    );
    // A subnet with a router interface cannot go; the router cannot go while it has ports.
    assert_neutron_error(
        &alice.delete(&format!("/v2.0/subnets/{}", id(&sub))).await,
        StatusCode::CONFLICT,
        "SubnetInUse",
    );
    assert_neutron_error(
        &alice.delete(&path).await,
        StatusCode::CONFLICT,
        "RouterInUse",
    );

    // Another project sees nothing and can change nothing; it cannot plug into our subnet.
    assert_neutron_error(
        &bob.get(&path).await,
        StatusCode::NOT_FOUND,
        "RouterNotFound",
    );
    assert_neutron_error(
        &bob.put(&path, json!({"router": {"name": "mine"}})).await,
        StatusCode::NOT_FOUND,
        "RouterNotFound",
    );
    assert_neutron_error(
        &bob.delete(&path).await,
        StatusCode::NOT_FOUND,
        "RouterNotFound",
    );
    assert_neutron_error(
        &bob.put(&add, json!({"subnet_id": sub["id"]})).await,
        StatusCode::NOT_FOUND,
        "RouterNotFound",
    );
    let bob_router = bob.create("routers", "router", json!({"name": "b"})).await;
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/routers/{}/add_router_interface", id(&bob_router)),
            json!({"subnet_id": sub2["id"]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "SubnetNotFound",
    );
    let bob_list = bob.get("/v2.0/routers").await;
    assert_eq!(bob_list.body["routers"].as_array().unwrap().len(), 1);

    // Static routes: the nexthop must be on a connected subnet.
    assert_neutron_error(
        &alice
            .put(&path, json!({"router": {"routes": [{"destination": "192.0.2.0/24", "nexthop": "203.0.113.9"}]}}))
            .await,
        StatusCode::BAD_REQUEST,
        "InvalidRoutes",
    );
    let routed = alice
        .put(
            &path,
            json!({"router": {"routes": [{"destination": "192.0.2.0/24", "nexthop": "10.0.0.5"}]}}),
        )
        .await;
    assert_eq!(routed.status, StatusCode::OK, "{}", routed.body);
    assert_eq!(
        routed.body["router"]["routes"],
        json!([{"destination": "192.0.2.0/24", "nexthop": "10.0.0.5"}])
    );

    // Floating IPs: from the external network only; associated through the router.
    assert_neutron_error(
        &alice
            .post(
                "/v2.0/floatingips",
                json!({"floatingip": {"floating_network_id": net["id"]}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    assert_neutron_error(
        &alice
            .post("/v2.0/floatingips", json!({"floatingip": {}}))
            .await,
        StatusCode::BAD_REQUEST,
        "HTTPBadRequest",
    );
    let fip = alice
        .create(
            "floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"]}),
        )
        .await;
    let fid = id(&fip);
    assert_eq!(fip["status"], "DOWN");
    assert_eq!(fip["port_id"], Value::Null);
    assert_eq!(fip["router_id"], Value::Null);
    assert_eq!(fip["floating_ip_address"], "198.51.100.11");
    let vm_port = alice
        .create(
            "ports",
            "port",
            json!({"network_id": net["id"], "device_id": "vm-1", "device_owner": "compute:nova"}),
        )
        .await;
    let fpath = format!("/v2.0/floatingips/{fid}");
    let assoc = alice
        .put(&fpath, json!({"floatingip": {"port_id": vm_port["id"]}}))
        .await;
    assert_eq!(assoc.status, StatusCode::OK, "{}", assoc.body);
    let f = &assoc.body["floatingip"];
    assert_eq!(f["port_id"], vm_port["id"]);
    assert_eq!(f["router_id"], rid.as_str());
    assert_eq!(f["fixed_ip_address"], vm_port["fixed_ips"][0]["ip_address"]);
    assert_eq!(f["port_details"]["device_id"], "vm-1");
    assert_eq!(f["port_details"]["network_id"], net["id"]);
    // One floating IP per fixed address.
    let second = alice
        .create(
            "floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"]}),
        )
        .await;
    assert_neutron_error(
        &alice
            .put(
                &format!("/v2.0/floatingips/{}", id(&second)),
                json!({"floatingip": {"port_id": vm_port["id"]}}),
            )
            .await,
        StatusCode::CONFLICT,
        "FloatingIPPortAlreadyAssociated",
    );
    // No route to the external network from an unrouted subnet: 404 as Neutron.
    let lonely_net = alice.network("lonely").await;
    alice.subnet(&lonely_net, "10.9.0.0/24", json!({})).await;
    let lonely = alice
        .create("ports", "port", json!({"network_id": lonely_net["id"]}))
        .await;
    assert_neutron_error(
        &alice
            .put(
                &format!("/v2.0/floatingips/{}", id(&second)),
                json!({"floatingip": {"port_id": lonely["id"]}}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "ExternalGatewayForFloatingIPNotFound",
    );
    // A fixed address the port does not have.
    assert_neutron_error(
        &alice
            .put(
                &format!("/v2.0/floatingips/{}", id(&second)),
                json!({"floatingip": {"port_id": vm_port["id"], "fixed_ip_address": "10.0.0.250"}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    // Refused changes changed nothing.
    let unchanged = alice
        .get(&format!("/v2.0/floatingips/{}", id(&second)))
        .await;
    assert_eq!(unchanged.body["floatingip"]["port_id"], Value::Null);
    // Another project can neither see nor use ours, nor point its own at our port.
    assert_neutron_error(
        &bob.get(&fpath).await,
        StatusCode::NOT_FOUND,
        "FloatingIPNotFound",
    );
    assert_neutron_error(
        &bob.put(&fpath, json!({"floatingip": {"port_id": null}}))
            .await,
        StatusCode::NOT_FOUND,
        "FloatingIPNotFound",
    );
    let bob_fip = bob
        .create(
            "floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"]}),
        )
        .await;
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/floatingips/{}", id(&bob_fip)),
            json!({"floatingip": {"port_id": vm_port["id"]}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "PortNotFound",
    );
    assert_eq!(
        bob.get("/v2.0/floatingips").await.body["floatingips"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Filters work on floating IPs like on every collection.
    let by_port = alice
        .get(&format!("/v2.0/floatingips?port_id={}", id(&vm_port)))
        .await;
    assert_eq!(by_port.body["floatingips"].as_array().unwrap().len(), 1);

    // The gateway and the interface stay while a floating IP needs them.
    assert_neutron_error(
        &alice
            .put(&path, json!({"router": {"external_gateway_info": {}}}))
            .await,
        StatusCode::CONFLICT,
        "RouterExternalGatewayInUseByFloatingIp",
    );
    assert_neutron_error(
        &alice.put(&remove, json!({"subnet_id": sub["id"]})).await,
        StatusCode::CONFLICT,
        "RouterInterfaceInUseByFloatingIP",
    );

    // Deleting the port lets go of its floating IP.
    let del = alice.delete(&format!("/v2.0/ports/{}", id(&vm_port))).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT, "{}", del.body);
    let after = alice.get(&fpath).await;
    assert_eq!(after.body["floatingip"]["port_id"], Value::Null);
    assert_eq!(after.body["floatingip"]["router_id"], Value::Null);

    // Quotas include routers and floating IPs.
    let quota = alice
        .get(&format!("/v2.0/quotas/{}/details", t.alice_project))
        .await;
    assert_eq!(quota.body["quota"]["router"]["used"], 1, "{}", quota.body);
    assert_eq!(
        quota.body["quota"]["floatingip"]["used"], 2,
        "{}",
        quota.body
    );
    admin
        .put(
            &format!("/v2.0/quotas/{}", t.alice_project),
            json!({"quota": {"floatingip": 2}}),
        )
        .await;
    assert_neutron_error(
        &alice
            .post(
                "/v2.0/floatingips",
                json!({"floatingip": {"floating_network_id": public["id"]}}),
            )
            .await,
        StatusCode::CONFLICT,
        "OverQuota",
    );

    // Tear down: floating IPs, interfaces (404 for one not there), gateway, router.
    for f in [&fid, &id(&second)] {
        let r = alice.delete(&format!("/v2.0/floatingips/{f}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    assert_neutron_error(
        &alice
            .put(&remove, json!({"subnet_id": overlapping["id"]}))
            .await,
        StatusCode::NOT_FOUND,
        "RouterInterfaceNotFoundForSubnet",
    );
    for body in [
        json!({"subnet_id": sub["id"]}),
        json!({"port_id": port2["id"]}),
    ] {
        let r = alice.put(&remove, body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let cleared = alice
        .put(&path, json!({"router": {"external_gateway_info": {}}}))
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["router"]["external_gateway_info"], Value::Null);
    let r = alice.delete(&path).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Nothing of the router is left on the networks: they can be deleted.
    let ports = admin.get(&format!("/v2.0/ports?device_id={rid}")).await;
    assert_eq!(ports.body["ports"], json!([]), "{}", ports.body);
    let r = alice.delete(&format!("/v2.0/subnets/{}", id(&sub))).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

/// Issue 16: a member plugged their own network into another project's router by pointing
/// their router port's `device_id` at it (`openstack port set --device <router> <port>`).
/// The port API refuses that (and every other way to claim a router or a service owner),
/// and a port that only claims a router — as an admin can still write — is no interface of
/// it: not for floating IPs, not for the namespace the agent builds, not for removal.
#[tokio::test]
async fn a_port_never_joins_another_projects_router() {
    let cloud = Cloud::start_with(|c| {
        c.network
            .physical_interfaces
            .insert("physnet1".into(), "lo".into());
    })
    .await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
    );
    let (public, _) = external(&admin).await;

    // Alice, the victim: a router with a gateway and an interface on her subnet.
    let anet = alice.network("victim").await;
    let asub = alice.subnet(&anet, "10.0.0.0/24", json!({})).await;
    let arouter = alice
        .create(
            "routers",
            "router",
            json!({"name": "victim", "external_gateway_info": {"network_id": public["id"]}}),
        )
        .await;
    let arid = id(&arouter);
    let added = alice
        .put(
            &format!("/v2.0/routers/{arid}/add_router_interface"),
            json!({"subnet_id": asub["id"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let alice_iface = added.body["port_id"].as_str().unwrap().to_owned();
    let host =
        admin.get(&format!("/v2.0/ports/{alice_iface}")).await.body["port"]["binding:host_id"]
            .as_str()
            .unwrap()
            .to_owned();

    // Bob, in his own project: network, subnet, router, a port added to his router.
    let bnet = bob.network("attacker").await;
    let bsub = bob.subnet(&bnet, "10.66.0.0/24", json!({})).await;
    let brouter = bob
        .create("routers", "router", json!({"name": "mine"}))
        .await;
    let brid = id(&brouter);
    let bport = bob
        .create("ports", "port", json!({"network_id": bnet["id"]}))
        .await;
    let r = bob
        .put(
            &format!("/v2.0/routers/{brid}/add_router_interface"),
            json!({"port_id": bport["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bport_path = format!("/v2.0/ports/{}", id(&bport));

    // The attack: his router's port pointed at Alice's router. And no other change of what
    // a router's port is or holds, by him or by an admin.
    for (who, attrs) in [
        (&bob, json!({"device_id": arid})),
        (
            &bob,
            json!({"device_id": arid, "device_owner": "network:router_interface"}),
        ),
        (&bob, json!({"device_owner": ""})),
        (&bob, json!({"device_id": "", "device_owner": ""})),
        (&bob, json!({"device_owner": "compute:nova"})),
        (&bob, json!({"fixed_ips": [{"subnet_id": bsub["id"]}]})),
        (&bob, json!({"port_security_enabled": true})),
        (&admin, json!({"device_id": arid})),
    ] {
        assert_neutron_error(
            &who.put(&bport_path, json!({"port": attrs})).await,
            StatusCode::CONFLICT,
            "ServicePortInUse",
        );
    }
    let renamed = bob
        .put(&bport_path, json!({"port": {"name": "still mine"}}))
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["port"]["device_id"], brid.as_str());

    // A plain port of his named after Alice's router: Neutron's DeviceIDNotOwnedByTenant,
    // whatever its owner, on create and on update.
    let plain = bob
        .create("ports", "port", json!({"network_id": bnet["id"]}))
        .await;
    let plain_path = format!("/v2.0/ports/{}", id(&plain));
    for attrs in [
        json!({"device_id": arid}),
        json!({"device_id": arid, "device_owner": "compute:nova"}),
    ] {
        assert_neutron_error(
            &bob.put(&plain_path, json!({"port": attrs.clone()})).await,
            StatusCode::CONFLICT,
            "DeviceIDNotOwnedByTenant",
        );
        let mut create = attrs;
        create["network_id"] = bnet["id"].clone();
        assert_neutron_error(
            &bob.post("/v2.0/ports", json!({"port": create})).await,
            StatusCode::CONFLICT,
            "DeviceIDNotOwnedByTenant",
        );
    }
    // Routers', floating IPs' and DHCP's owners are the service's, even on his own network.
    for owner in [
        "network:router_interface",
        "network:router_gateway",
        "network:router_interface_distributed",
        "network:floatingip",
        "network:dhcp",
    ] {
        assert_neutron_error(
            &bob.post(
                "/v2.0/ports",
                json!({"port": {"network_id": bnet["id"], "device_owner": owner}}),
            )
            .await,
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
        );
        assert_neutron_error(
            &bob.put(&plain_path, json!({"port": {"device_owner": owner}}))
                .await,
            StatusCode::FORBIDDEN,
            "PolicyNotAuthorized",
        );
    }
    // His own router is his to name (Neutron allows that).
    let own = bob
        .put(&plain_path, json!({"port": {"device_id": brid}}))
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);

    // An admin can still write a port that claims Alice's router, on Bob's subnet. It is no
    // interface of her router: Bob's floating IP does not route through it...
    let forged = admin
        .create(
            "ports",
            "port",
            json!({"network_id": bnet["id"], "device_id": arid,
                   "device_owner": "network:router_interface", "binding:host_id": host}),
        )
        .await;
    let vm = bob
        .create("ports", "port", json!({"network_id": bnet["id"]}))
        .await;
    assert_neutron_error(
        &bob.post(
            "/v2.0/floatingips",
            json!({"floatingip": {"floating_network_id": public["id"], "port_id": vm["id"]}}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "ExternalGatewayForFloatingIPNotFound",
    );
    // ...the agent's desired state for the host puts only Alice's own interface (and her
    // gateway) into her router's namespace...
    let pool = cloud.database().await.unwrap();
    let state = onestack_network::desired::for_host(&pool, &host)
        .await
        .unwrap();
    pool.close().await;
    let plan = state
        .routers
        .iter()
        .find(|p| p.router.id == arid)
        .expect("Alice's router is built on the host");
    let interfaces: Vec<&str> = plan.interfaces.iter().map(|(p, _)| p.id.as_str()).collect();
    assert_eq!(interfaces, vec![alice_iface.as_str()]);
    let mine = state.routers.iter().find(|p| p.router.id == brid).unwrap();
    let interfaces: Vec<&str> = mine.interfaces.iter().map(|(p, _)| p.id.as_str()).collect();
    assert_eq!(interfaces, vec![id(&bport).as_str()]);
    // ...it cannot be removed as one, and it does not keep her router from going.
    assert_neutron_error(
        &alice
            .put(
                &format!("/v2.0/routers/{arid}/remove_router_interface"),
                json!({"port_id": forged["id"]}),
            )
            .await,
        StatusCode::NOT_FOUND,
        "RouterInterfaceNotFound",
    );
    let r = alice
        .put(
            &format!("/v2.0/routers/{arid}/remove_router_interface"),
            json!({"subnet_id": asub["id"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = alice.delete(&format!("/v2.0/routers/{arid}")).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

/// Nova shows a server's floating address under `addresses` (type `floating`, after the
/// fixed address that carries it) and in `/ips`, from association to disassociation.
#[tokio::test]
async fn a_servers_floating_address_shows_in_its_addresses() {
    let cloud = l3_cloud().await;
    let env = crate::compute::env(&cloud).await;
    let (admin_token, alice_token) = (
        cloud.admin_token().await,
        cloud.token("alice", "pw-alice", "alice").await,
    );
    let (admin, alice) = (
        Neutron::new(&cloud, &admin_token),
        Neutron::new(&cloud, &alice_token),
    );
    let (public, _) = external(&admin).await;
    let net = alice.network("web").await;
    let subnet = alice
        .subnet(&net, "10.0.5.0/24", json!({"enable_dhcp": false}))
        .await;
    let router = alice
        .create(
            "routers",
            "router",
            json!({"name": "r", "external_gateway_info": {"network_id": public["id"]}}),
        )
        .await;
    let added = alice
        .put(
            &format!("/v2.0/routers/{}/add_router_interface", id(&router)),
            json!({"subnet_id": subnet["id"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let image = env.alice.image("fip-image", json!({})).await;
    let server = env
        .alice
        .boot_active("web1", &image, json!({"networks": [{"uuid": id(&net)}]}))
        .await;
    let ports = alice.get(&format!("/v2.0/ports?device_id={server}")).await;
    let port = &ports.body["ports"][0];
    let fixed = port["fixed_ips"][0]["ip_address"]
        .as_str()
        .unwrap()
        .to_owned();
    let fip = alice
        .create(
            "floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"], "port_id": port["id"]}),
        )
        .await;
    let floating = fip["floating_ip_address"].as_str().unwrap().to_owned();

    let shown = env.alice.server(&server).await;
    assert_eq!(
        shown["addresses"]["web"],
        json!([
            {"addr": fixed, "version": 4, "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
             "OS-EXT-IPS:type": "fixed"},
            {"addr": floating, "version": 4, "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
             "OS-EXT-IPS:type": "floating"},
        ]),
        "{shown}"
    );
    let listed = env.alice.get("/servers/detail").await;
    assert_eq!(
        listed.body["servers"][0]["addresses"], shown["addresses"],
        "{}",
        listed.body
    );
    let ips = env.alice.get(&format!("/servers/{server}/ips")).await;
    assert_eq!(
        ips.body["addresses"]["web"],
        json!([{"addr": fixed, "version": 4}, {"addr": floating, "version": 4}]),
        "{}",
        ips.body
    );

    let cleared = alice
        .put(
            &format!("/v2.0/floatingips/{}", id(&fip)),
            json!({"floatingip": {"port_id": null}}),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    let shown = env.alice.server(&server).await;
    assert_eq!(
        shown["addresses"]["web"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );
}

/// An external network is visible to every project, but only its owner (the admin) puts
/// ports on it: a member's port there would put a guest straight on the outside. Neutron
/// answers as if the network did not exist; Nova's interface attach gets no port either.
#[tokio::test]
async fn a_member_gets_no_port_on_an_external_network() {
    let cloud = l3_cloud().await;
    let env = crate::compute::env(&cloud).await;
    let (admin_token, alice_token) = (
        cloud.admin_token().await,
        cloud.token("alice", "pw-alice", "alice").await,
    );
    let (admin, alice) = (
        Neutron::new(&cloud, &admin_token),
        Neutron::new(&cloud, &alice_token),
    );
    let (public, _) = external(&admin).await;
    assert_eq!(
        alice
            .get(&format!("/v2.0/networks/{}", id(&public)))
            .await
            .status,
        StatusCode::OK,
        "the external network is visible"
    );
    let refused = alice
        .post("/v2.0/ports", json!({"port": {"network_id": public["id"]}}))
        .await;
    assert_neutron_error(&refused, StatusCode::NOT_FOUND, "HTTPNotFound");

    let net = alice.network("own").await;
    alice
        .subnet(&net, "10.0.6.0/24", json!({"enable_dhcp": false}))
        .await;
    let image = env.alice.image("ext-image", json!({})).await;
    let server = env
        .alice
        .boot_active("vm", &image, json!({"networks": [{"uuid": id(&net)}]}))
        .await;
    let attach = env
        .alice
        .post(
            &format!("/servers/{server}/os-interface"),
            json!({"interfaceAttachment": {"net_id": id(&public)}}),
        )
        .await;
    assert!(
        attach.status.is_client_error(),
        "attached to the external network: {} {}",
        attach.status,
        attach.body
    );
    let ports = admin
        .get(&format!("/v2.0/ports?network_id={}", id(&public)))
        .await;
    assert_eq!(ports.body["ports"], json!([]), "{}", ports.body);
    // The owner still can.
    let own = admin
        .post("/v2.0/ports", json!({"port": {"network_id": public["id"]}}))
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
}
