//! Issue 16 on the host: a member pointed their router port's `device_id` at another
//! project's router, and the agent put the member's address into the victim's router
//! namespace. Now the API refuses, and a port that merely claims a router (as an admin can
//! still write) never gets into that router's namespace: it stays as its owner built it.
//!
//! Root is required: without it this test fails, unless `ONESTACK_TEST_SKIP=root` says
//! skipping it is meant.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::super::{Neutron, assert_neutron_error, id, tenants};
use super::{
    AGENT, HostGuard, RouterGuard, eventually, netns_exists, root_or_skip, run, wait_passes,
};
use crate::common::Cloud;

/// Every (interface, address) inside a namespace, link-local addresses and `lo` (where the
/// router keeps the metadata address, added in the same pass as its interfaces) left out.
fn addresses(ns: &str) -> BTreeSet<(String, String)> {
    let out = run("ip", &["-n", ns, "-j", "addr", "show"]);
    let links: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut set = BTreeSet::new();
    for link in links.as_array().into_iter().flatten() {
        let name = link["ifname"].as_str().unwrap_or_default().to_owned();
        if name == "lo" {
            continue;
        }
        for a in link["addr_info"].as_array().into_iter().flatten() {
            if a["scope"] == "link" || a["scope"] == "host" {
                continue;
            }
            let local = a["local"].as_str().unwrap_or_default();
            set.insert((name.clone(), format!("{local}/{}", a["prefixlen"])));
        }
    }
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_projects_port_never_enters_a_router_namespace() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let host = format!("dp-rtr-iso-{}", std::process::id());
    let cloud = Cloud::start_with(|c| {
        c.network.agent = true;
        c.network.host = host.clone();
        c.network.resync_seconds = 1;
    })
    .await;
    let t = tenants(&cloud).await;
    let (admin, alice, bob) = (
        Neutron::new(&cloud, &t.admin),
        Neutron::new(&cloud, &t.alice),
        Neutron::new(&cloud, &t.bob),
    );
    let mut guard = HostGuard { ids: Vec::new() };

    // Alice, the victim: a router on her subnet, built on the host.
    let anet = alice.network("victim").await;
    guard.ids.push(id(&anet));
    let asub = alice
        .subnet(&anet, "10.254.1.0/24", json!({"enable_dhcp": false}))
        .await;
    let arouter = alice
        .create("routers", "router", json!({"name": "victim"}))
        .await;
    let arid = id(&arouter);
    let _alice_guard = RouterGuard(arid.clone());
    let added = alice
        .put(
            &format!("/v2.0/routers/{arid}/add_router_interface"),
            json!({"subnet_id": asub["id"]}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    guard
        .ids
        .push(added.body["port_id"].as_str().unwrap().to_owned());
    let victim_ns = format!("osrtr-{arid}");
    eventually("the victim's router namespace", || {
        addresses(&victim_ns)
            .iter()
            .any(|(_, a)| a == "10.254.1.1/24")
    });
    let before = addresses(&victim_ns);

    // Bob: his own network, router and a port added to it, which the agent builds.
    let bnet = bob.network("attacker").await;
    guard.ids.push(id(&bnet));
    bob.subnet(&bnet, "10.254.66.0/24", json!({"enable_dhcp": false}))
        .await;
    let brouter = bob
        .create("routers", "router", json!({"name": "mine"}))
        .await;
    let brid = id(&brouter);
    let _bob_guard = RouterGuard(brid.clone());
    let bport = bob
        .create("ports", "port", json!({"network_id": bnet["id"]}))
        .await;
    guard.ids.push(id(&bport));
    let battach = bob
        .put(
            &format!("/v2.0/routers/{brid}/add_router_interface"),
            json!({"port_id": bport["id"]}),
        )
        .await;
    assert_eq!(battach.status, StatusCode::OK, "{}", battach.body);
    let bob_address = format!(
        "{}/24",
        bport["fixed_ips"][0]["ip_address"].as_str().unwrap()
    );
    let bob_ns = format!("osrtr-{brid}");
    eventually("Bob's router namespace", || {
        addresses(&bob_ns).iter().any(|(_, a)| *a == bob_address)
    });

    // The attack is refused; an admin's port claiming Alice's router is written but is no
    // interface of it.
    assert_neutron_error(
        &bob.put(
            &format!("/v2.0/ports/{}", id(&bport)),
            json!({"port": {"device_id": arid}}),
        )
        .await,
        StatusCode::CONFLICT,
        "ServicePortInUse",
    );
    let forged = admin
        .create(
            "ports",
            "port",
            json!({"network_id": bnet["id"], "device_id": arid,
                   "device_owner": "network:router_interface", "binding:host_id": host}),
        )
        .await;
    guard.ids.push(id(&forged));

    // Several agent passes later Alice's namespace is as it was, Bob's still has his port.
    wait_passes(&cloud, &host, 3).await;
    let after = addresses(&victim_ns);
    assert_eq!(after, before, "the victim's router namespace is unchanged");
    assert!(
        !after.iter().any(|(_, a)| a.starts_with("10.254.66.")),
        "{after:?}"
    );
    assert!(
        addresses(&bob_ns).iter().any(|(_, a)| *a == bob_address),
        "Bob's own router keeps his port"
    );

    // Clean up through the API: both namespaces go.
    admin.delete(&format!("/v2.0/ports/{}", id(&forged))).await;
    for (api, rid, body) in [
        (&alice, &arid, json!({"subnet_id": asub["id"]})),
        (&bob, &brid, json!({"port_id": bport["id"]})),
    ] {
        let r = api
            .put(
                &format!("/v2.0/routers/{rid}/remove_router_interface"),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = api.delete(&format!("/v2.0/routers/{rid}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }
    alice.delete(&format!("/v2.0/networks/{}", id(&anet))).await;
    bob.delete(&format!("/v2.0/networks/{}", id(&bnet))).await;
    eventually("both router namespaces to go", || {
        !netns_exists(&victim_ns) && !netns_exists(&bob_ns)
    });
}
