//! The metadata service at 169.254.169.254 through the whole stack: servers on the fake
//! compute driver, their ports plugged into namespaces that stand in for guests, and the
//! agent serving metadata in the router namespace and in the DHCP namespace of a network
//! without a router. Each guest reads its own server's data and never another's, even on a
//! network two projects share, and even when it claims the other guest's address.
//!
//! Root is required: without it this test fails, unless `ONESTACK_TEST_SKIP=root` says
//! skipping it is meant.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::super::{Neutron, id};
use super::{AGENT, Guest, HostGuard, RouterGuard, netns_exists, root_or_skip, wait_active};
use crate::common::Cloud;
use crate::compute::{self, Client};

/// What a guest got from the metadata service.
#[derive(Debug, PartialEq)]
enum Answer {
    Body(String),
    Status(u16),
    /// No HTTP answer at all (dropped, refused or timed out).
    Nothing,
}

/// GETs (or POSTs `post`) `path` from inside the guest with busybox wget, bounded by
/// `timeout` (busybox's own -T crashes on Debian 12).
async fn ask(guest: &Guest, path: &str, post: Option<&str>) -> Answer {
    let url = format!("http://169.254.169.254{path}");
    let mut args = vec![
        "netns", "exec", &guest.ns, "timeout", "3", "busybox", "wget", "-q", "-O", "-",
    ];
    if let Some(data) = post {
        args.extend(["--post-data", data]);
    }
    args.push(&url);
    let out = tokio::process::Command::new("ip")
        .args(&args)
        .output()
        .await
        .expect("ip netns exec runs");
    if out.status.success() {
        return Answer::Body(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // "wget: server returned error: HTTP/1.1 404 Not Found"
    err.split("HTTP/1.1 ")
        .nth(1)
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .map_or(Answer::Nothing, Answer::Status)
}

async fn get(guest: &Guest, path: &str) -> Answer {
    ask(guest, path, None).await
}

/// Asks until an answer other than silence comes (the agent is still building), for 15 s.
async fn first_answer(guest: &Guest, path: &str) -> Answer {
    let start = Instant::now();
    loop {
        let answer = get(guest, path).await;
        if answer != Answer::Nothing || start.elapsed() > Duration::from_secs(15) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn json_of(answer: &Answer) -> Value {
    match answer {
        Answer::Body(text) => serde_json::from_str(text).expect("JSON from the metadata service"),
        other => panic!("expected a body, got {other:?}"),
    }
}

/// A port for `project` that the agent plugs as a veth (its peer becomes the guest) once
/// it is bound to a host: by the server that takes it, or now when `host` is given.
async fn guest_port(
    admin: &Neutron<'_>,
    network: &Value,
    project: &str,
    host: Option<&str>,
) -> Value {
    let mut attrs = json!({"network_id": network["id"], "project_id": project,
                           "binding:profile": {"interface": "veth"}});
    if let Some(host) = host {
        attrs["binding:host_id"] = json!(host);
    }
    admin.create("ports", "port", attrs).await
}

/// Boots a server on the fake driver with `port` as its only NIC.
async fn boot_on(client: &Client<'_>, name: &str, port: &Value, extra: Value) -> String {
    let image = client.image(&format!("{name}-image"), json!({})).await;
    let mut attrs = json!({"networks": [{"port": port["id"]}]});
    if let (Some(a), Some(e)) = (attrs.as_object_mut(), extra.as_object()) {
        a.extend(e.clone());
    }
    client.boot_active(name, &image, attrs).await
}

fn ip_of(port: &Value) -> String {
    port["fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("a fixed address")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_guest_reads_its_own_metadata_and_no_one_elses() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let host = format!("dp-md-{}", std::process::id());
    let cloud = Cloud::start_with(|c| {
        c.network.agent = true;
        c.network.host = host.clone();
        c.network.resync_seconds = 1;
    })
    .await;
    let env = compute::env(&cloud).await;
    let admin_token = cloud.admin_token().await;
    let admin = Neutron::new(&cloud, &admin_token);
    let mut guard = HostGuard { ids: Vec::new() };

    // A network both projects share, routed by the admin's router: metadata through the
    // router namespace.
    let shared = admin
        .create(
            "networks",
            "network",
            json!({"name": "md-shared", "shared": true}),
        )
        .await;
    guard.ids.push(id(&shared));
    let shared_subnet = admin
        .subnet(&shared, "10.249.1.0/24", json!({"enable_dhcp": false}))
        .await;
    let router = admin
        .create("routers", "router", json!({"name": "md-router"}))
        .await;
    let rid = id(&router);
    let _router_guard = RouterGuard(rid.clone());
    let added = admin
        .put(
            &format!("/v2.0/routers/{rid}/add_router_interface"),
            json!({"subnet_id": shared_subnet["id"]}),
        )
        .await;
    assert_eq!(added.status, reqwest::StatusCode::OK, "{}", added.body);
    guard
        .ids
        .push(added.body["port_id"].as_str().unwrap().into());
    // A network of alice's with DHCP and no router: metadata through the DHCP namespace.
    let alice_net = Neutron::new(&cloud, &cloud.token("alice", "pw-alice", "alice").await);
    let isolated = alice_net.network("md-isolated").await;
    guard.ids.push(id(&isolated));
    alice_net
        .subnet(&isolated, "10.249.2.0/24", json!({"enable_dhcp": true}))
        .await;

    let alice_port = guest_port(&admin, &shared, &env.alice_project, None).await;
    let bob_port = guest_port(&admin, &shared, &env.bob_project, None).await;
    let iso_port = guest_port(&admin, &isolated, &env.alice_project, None).await;
    // A port on the shared network that no server holds.
    let stray_port = guest_port(&admin, &shared, &env.bob_project, Some(&host)).await;
    for p in [&alice_port, &bob_port, &iso_port, &stray_port] {
        guard.ids.push(id(p));
    }
    let user_data = "#!/bin/sh\necho alice\n";
    let user_data_b64 = "IyEvYmluL3NoCmVjaG8gYWxpY2UK";
    let alice_id = boot_on(
        &env.alice,
        "md-alice",
        &alice_port,
        json!({"user_data": user_data_b64,
               "metadata": {"role": "web"}}),
    )
    .await;
    let bob_id = boot_on(&env.bob, "md-bob", &bob_port, json!({})).await;
    let iso_id = boot_on(&env.alice, "md-iso", &iso_port, json!({})).await;
    wait_active(&admin, &[&alice_port, &bob_port, &iso_port, &stray_port]).await;

    let plug = |port: &Value, tag: &str| {
        let guest = Guest::plug(port, tag, Some(&format!("{}/24", ip_of(port))));
        guest.exec_ok(&["ip", "route", "add", "default", "via", "10.249.1.1"]);
        guest
    };
    let alice = plug(&alice_port, "md-a");
    let bob = plug(&bob_port, "md-b");
    let stray = plug(&stray_port, "md-s");
    let iso = Guest::plug(&iso_port, "md-i", Some(&format!("{}/24", ip_of(&iso_port))));
    let dhcp = admin
        .get(&format!(
            "/v2.0/ports?network_id={}&device_owner=network:dhcp",
            id(&isolated)
        ))
        .await;
    let dhcp_ip = ip_of(&dhcp.body["ports"][0]);
    iso.exec_ok(&["ip", "route", "add", "169.254.169.254/32", "via", &dhcp_ip]);
    assert!(netns_exists(&format!("osrtr-{rid}")));

    // Alice's guest reads alice's server: the OpenStack tree, then the EC2 tree.
    let meta = json_of(&first_answer(&alice, "/openstack/latest/meta_data.json").await);
    assert_eq!(meta["uuid"], alice_id.as_str(), "{meta}");
    assert_eq!(meta["name"], "md-alice");
    assert_eq!(meta["project_id"], env.alice_project.as_str());
    assert_eq!(meta["meta"]["role"], "web");
    assert_eq!(
        get(&alice, "/openstack/latest/user_data").await,
        Answer::Body(user_data.into())
    );
    let network_data = json_of(&get(&alice, "/openstack/latest/network_data.json").await);
    assert_eq!(
        network_data["links"][0]["ethernet_mac_address"],
        alice_port["mac_address"]
    );
    assert_eq!(
        network_data["networks"][0]["ip_address"],
        ip_of(&alice_port)
    );
    assert_eq!(
        get(&alice, "/latest/meta-data/local-ipv4").await,
        Answer::Body(ip_of(&alice_port))
    );
    assert_eq!(
        get(&alice, "/latest/user-data").await,
        Answer::Body(user_data.into())
    );
    assert!(
        matches!(get(&alice, "/").await, Answer::Body(b) if b.ends_with("latest")),
        "the root lists the EC2 versions"
    );
    assert_eq!(
        get(&alice, "/openstack/latest/nothing").await,
        Answer::Status(404)
    );
    assert_eq!(
        ask(&alice, "/openstack/latest/password", Some("x")).await,
        Answer::Status(405),
        "the service is read-only"
    );

    // Bob's guest, on the same network behind the same router, reads bob's server.
    let meta = json_of(&first_answer(&bob, "/openstack/latest/meta_data.json").await);
    assert_eq!(meta["uuid"], bob_id.as_str(), "{meta}");
    assert_eq!(get(&bob, "/latest/user-data").await, Answer::Status(404));
    // A port no server holds learns nothing.
    assert_eq!(
        first_answer(&stray, "/openstack/latest/meta_data.json").await,
        Answer::Status(404)
    );
    // Bob claiming alice's address is stopped by his port's anti-spoofing: no answer, and
    // above all never alice's data.
    let bob_ip = format!("{}/24", ip_of(&bob_port));
    let alice_ip = format!("{}/24", ip_of(&alice_port));
    bob.exec_ok(&["ip", "addr", "del", &bob_ip, "dev", &bob.dev]);
    bob.exec_ok(&["ip", "addr", "add", &alice_ip, "dev", &bob.dev]);
    bob.exec_ok(&["ip", "route", "replace", "default", "via", "10.249.1.1"]);
    let spoofed = get(&bob, "/openstack/latest/meta_data.json").await;
    assert_eq!(spoofed, Answer::Nothing, "a forged source gets no answer");
    bob.exec_ok(&["ip", "addr", "del", &alice_ip, "dev", &bob.dev]);
    bob.exec_ok(&["ip", "addr", "add", &bob_ip, "dev", &bob.dev]);

    // The network without a router: the DHCP namespace serves it.
    let meta = json_of(&first_answer(&iso, "/openstack/latest/meta_data.json").await);
    assert_eq!(meta["uuid"], iso_id.as_str(), "{meta}");

    // A server deleted: its port's address learns nothing any more.
    env.alice.delete(&format!("/servers/{alice_id}")).await;
    env.alice.wait_gone(&alice_id).await;
    let start = Instant::now();
    loop {
        let answer = get(&alice, "/openstack/latest/meta_data.json").await;
        assert!(
            !matches!(&answer, Answer::Body(b) if b.contains(&alice_id)),
            "a deleted server's data"
        );
        if answer != Answer::Nothing || start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }

    // Everything through the API: the router's namespace goes with its listener.
    for server in [&bob_id, &iso_id] {
        let client = if *server == bob_id {
            &env.bob
        } else {
            &env.alice
        };
        client.delete(&format!("/servers/{server}")).await;
        client.wait_gone(server).await;
    }
    for p in [&alice_port, &bob_port, &iso_port, &stray_port] {
        admin.delete(&format!("/v2.0/ports/{}", id(p))).await;
    }
    let removed = admin
        .put(
            &format!("/v2.0/routers/{rid}/remove_router_interface"),
            json!({"subnet_id": shared_subnet["id"]}),
        )
        .await;
    assert_eq!(removed.status, reqwest::StatusCode::OK, "{}", removed.body);
    admin.delete(&format!("/v2.0/routers/{rid}")).await;
    admin
        .delete(&format!("/v2.0/networks/{}", id(&shared)))
        .await;
    admin
        .delete(&format!("/v2.0/networks/{}", id(&isolated)))
        .await;
    let router_ns = format!("osrtr-{rid}");
    let dhcp_ns = format!("osdhcp-{}", id(&isolated));
    let start = Instant::now();
    while netns_exists(&router_ns) || netns_exists(&dhcp_ns) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the router and DHCP namespaces outlived their resources"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop((alice, bob, stray, iso));
}
