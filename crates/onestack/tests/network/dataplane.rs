//! The data plane through the whole stack: ports created with the API, plugged in by the
//! agent, and namespaces with the veth peers standing in for guests. Needs root (CI runs as
//! root): fails without it, unless the run opts out (`ONESTACK_TEST_SKIP=root`). Only ever
//! sends traffic to addresses it created (10.251.x.x).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Neutron;
use crate::common::{Cloud, KillOnDrop, Namespace, Uplink, root_or_skip, run, run_ok};

mod hosts;
mod metadata;
mod router_isolation;

/// A namespace holding a port's veth peer: a stand-in guest. Deleted on drop.
type Guest = Namespace;

impl Guest {
    /// Moves the port's peer device into a new namespace, with the port's MAC and, when
    /// `address` is given, its address.
    fn plug(port: &Value, tag: &str, address: Option<&str>) -> Guest {
        Self::plug_from(None, port, tag, address)
    }

    /// [`Self::plug`] for a peer the agent made in namespace `host` (a joined host's).
    fn plug_from(
        host: Option<&Namespace>,
        port: &Value,
        tag: &str,
        address: Option<&str>,
    ) -> Guest {
        let id = port["id"].as_str().unwrap();
        let dev = format!("osvp-{}", &id[..10]);
        let ns = format!("ostest-{}-{tag}", std::process::id());
        run_ok("ip", &["netns", "add", &ns]);
        let guest = Guest { ns, dev };
        let move_peer = ["ip", "link", "set", &guest.dev, "netns", &guest.ns];
        match host {
            Some(host) => host.exec_ok(&move_peer),
            None => run_ok(move_peer[0], &move_peer[1..]),
        }
        let mac = port["mac_address"].as_str().unwrap();
        guest.exec_ok(&["ip", "link", "set", &guest.dev, "address", mac]);
        guest.exec_ok(&["ip", "link", "set", "lo", "up"]);
        guest.exec_ok(&["ip", "link", "set", &guest.dev, "up"]);
        if let Some(address) = address {
            guest.exec_ok(&["ip", "addr", "add", address, "dev", &guest.dev]);
        }
        guest
    }

    fn pings(&self, address: &str) -> bool {
        self.exec(&["busybox", "ping", "-c", "1", "-W", "1", address])
            .status
            .success()
    }

    /// Whether a TCP connection to `address:port` is answered.
    fn connects(&self, address: &str, port: u16) -> bool {
        let out = self.exec(&["busybox", "nc", "-w", "1", address, &port.to_string()]);
        String::from_utf8_lossy(&out.stdout).contains("hello")
    }
}

/// The name of `cloud`'s security-group tables.
fn cloud_table(cloud: &Cloud) -> String {
    crate::common::cloud_table(&cloud.data_dir).expect("the cloud has an id")
}

/// Removes whatever the agent built for these networks and ports, should the test fail
/// before the API deletes did.
struct HostGuard {
    ids: Vec<String>,
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let links = String::from_utf8_lossy(&run("ip", &["-br", "link"]).stdout).into_owned();
        for line in links.lines() {
            let name = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .split('@')
                .next()
                .unwrap_or("");
            if self
                .ids
                .iter()
                .any(|id| name.starts_with("os") && name.ends_with(&id[..10]))
            {
                let _ = run("ip", &["link", "del", name]);
            }
        }
        for id in &self.ids {
            let _ = run("pkill", &["-f", &format!("dnsmasq.*{id}")]);
            let _ = run("ip", &["netns", "del", &format!("osdhcp-{id}")]);
        }
    }
}

/// Tests that run the agent take turns: it owns every `os…` device on the host.
static AGENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn eventually(what: &str, check: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Waits until the agent reports the ports plugged in (status ACTIVE).
async fn wait_active(api: &Neutron<'_>, ports: &[&Value]) {
    let start = Instant::now();
    for port in ports {
        let path = format!("/v2.0/ports/{}", port["id"].as_str().unwrap());
        while api.get(&path).await.body["port"]["status"] != "ACTIVE" {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "port {path} never became ACTIVE"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The lease `udhcpc` obtains on the guest's device, if any.
fn dhcp_lease(guest: &Guest) -> Option<String> {
    let out = guest.exec(&[
        "busybox",
        "udhcpc",
        "-i",
        &guest.dev,
        "-n",
        "-q",
        "-f",
        "-t",
        "3",
        "-T",
        "1",
        "-s",
        "/bin/true",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.split("lease of ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_security_groups_dhcp_and_cleanup_on_the_host() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let host = format!("dp-host-{}", std::process::id());
    let cloud = Cloud::start_with(|c| {
        c.network.agent = true;
        c.network.host = host.clone();
    })
    .await;
    let token = cloud.admin_token().await;
    let api = Neutron::new(&cloud, &token);
    let net_a = api.network("dp-a").await;
    let net_b = api.network("dp-b").await;
    let mut guard = HostGuard {
        ids: vec![
            net_a["id"].as_str().unwrap().into(),
            net_b["id"].as_str().unwrap().into(),
        ],
    };
    api.subnet(&net_a, "10.251.1.0/24", json!({})).await;
    api.subnet(&net_b, "10.251.2.0/24", json!({"enable_dhcp": false}))
        .await;
    let group = api
        .create("security-groups", "security_group", json!({"name": "dp"}))
        .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    api.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": gid, "direction": "ingress", "protocol": "icmp"}),
    )
    .await;
    let api = &api;
    let port = |network: &Value, name: &str| {
        let attrs = json!({"network_id": network["id"], "name": name, "security_groups": [gid],
            "binding:host_id": host, "binding:profile": {"interface": "veth"}});
        async move { api.create("ports", "port", attrs).await }
    };
    let a1 = port(&net_a, "a1").await;
    let a2 = port(&net_a, "a2").await;
    let a3 = port(&net_a, "a3").await;
    let b1 = port(&net_b, "b1").await;
    for p in [&a1, &a2, &a3, &b1] {
        guard.ids.push(p["id"].as_str().unwrap().to_owned());
    }
    wait_active(api, &[&a1, &a2, &a3, &b1]).await;
    let ip = |p: &Value| p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned();
    let g1 = Guest::plug(&a1, "a1", Some(&format!("{}/24", ip(&a1))));
    let g2 = Guest::plug(&a2, "a2", Some(&format!("{}/24", ip(&a2))));
    let g3 = Guest::plug(&a3, "a3", None);
    let gb = Guest::plug(&b1, "b1", Some(&format!("{}/24", ip(&b1))));

    // One network: reachable (ICMP is allowed). Two networks: not, even on one subnet range.
    assert!(
        g1.pings(&ip(&a2)),
        "two ports on one network reach each other"
    );
    gb.exec_ok(&["ip", "addr", "add", "10.251.1.250/24", "dev", &gb.dev]);
    assert!(
        !gb.pings(&ip(&a2)),
        "another network does not reach this one"
    );

    // DHCP answers the network's ports with their own address; a network without DHCP is silent.
    assert_eq!(
        dhcp_lease(&g3),
        Some(ip(&a3)),
        "udhcpc gets the port's address"
    );
    let gb2_port = port(&net_b, "b2").await;
    guard.ids.push(gb2_port["id"].as_str().unwrap().to_owned());
    wait_active(api, &[&gb2_port]).await;
    let gb2 = Guest::plug(&gb2_port, "b2", None);
    assert_eq!(
        dhcp_lease(&gb2),
        None,
        "nothing answers without enable_dhcp"
    );

    // A TCP listener on a2: closed until a rule opens it, closed again when it goes.
    let listener = Command::new("ip")
        .args([
            "netns",
            "exec",
            &g2.ns,
            "busybox",
            "nc",
            "-ll",
            "-p",
            "8080",
            "-e",
            "/bin/echo",
            "hello",
        ])
        .spawn()
        .unwrap();
    let _kill = KillOnDrop(listener);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!g1.connects(&ip(&a2), 8080), "no rule, no connection");
    let rule = api
        .create("security-group-rules", "security_group_rule", json!({"security_group_id": gid, "direction": "ingress", "protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080}))
        .await;
    let took = eventually("the rule to take effect", || g1.connects(&ip(&a2), 8080));
    assert!(took < Duration::from_secs(3), "rule applied in {took:?}");
    let deleted = api
        .delete(&format!(
            "/v2.0/security-group-rules/{}",
            rule["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(deleted.status, reqwest::StatusCode::NO_CONTENT);
    eventually("the rule to go", || !g1.connects(&ip(&a2), 8080));

    // Anti-spoofing: a source address that is not the port's is dropped.
    g1.exec_ok(&["ip", "addr", "add", "10.251.1.200/24", "dev", &g1.dev]);
    let spoofed = g1.exec(&[
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "1",
        "-I",
        "10.251.1.200",
        &ip(&a2),
    ]);
    assert!(
        !spoofed.status.success(),
        "a spoofed source address is dropped"
    );
    assert!(g1.pings(&ip(&a2)), "the real address still works");

    // Delete everything through the API: the host is left with nothing of it.
    drop((g1, g2, g3, gb, gb2));
    for p in [&a1, &a2, &a3, &b1, &gb2_port] {
        api.delete(&format!("/v2.0/ports/{}", p["id"].as_str().unwrap()))
            .await;
    }
    for n in [&net_a, &net_b] {
        let reply = api
            .delete(&format!("/v2.0/networks/{}", n["id"].as_str().unwrap()))
            .await;
        assert_eq!(
            reply.status,
            reqwest::StatusCode::NO_CONTENT,
            "{}",
            reply.body
        );
    }
    let ids = guard.ids.clone();
    let table = cloud_table(&cloud);
    eventually("every device, namespace and chain to go", || {
        let links = String::from_utf8_lossy(&run("ip", &["-br", "link"]).stdout).into_owned();
        let namespaces =
            String::from_utf8_lossy(&run("ip", &["netns", "list"]).stdout).into_owned();
        let rules =
            String::from_utf8_lossy(&run("nft", &["list", "table", "bridge", &table]).stdout)
                .into_owned();
        ids.iter().all(|id| {
            !links.contains(&id[..10])
                && !namespaces.contains(id.as_str())
                && !rules.contains(&id[..10])
        })
    });
    guard.ids.clear();
    eventually("the firewall tables to go with the last port", || {
        !run("nft", &["list", "table", "inet", &table])
            .status
            .success()
    });
}

/// A veth pair standing in for a host's provider uplink: `uplink` stays in the host (the
/// agent enslaves it), its peer sits in a namespace playing the physical network.
/// Creates a provider network on physnet1 with one /24 subnet and one bound veth port, waits for
/// the agent, and plugs the port into a guest namespace with its address.
async fn provider_port(
    api: &Neutron<'_>,
    host: &str,
    guard: &mut HostGuard,
    attrs: Value,
    third_octet: u8,
) -> (Value, Guest) {
    let network = api.create("networks", "network", attrs).await;
    guard.ids.push(network["id"].as_str().unwrap().into());
    let prefix = format!("10.251.{third_octet}");
    api.subnet(
        &network,
        &format!("{prefix}.0/24"),
        json!({"enable_dhcp": false, "gateway_ip": format!("{prefix}.1"),
        "allocation_pools": [{"start": format!("{prefix}.10"), "end": format!("{prefix}.20")}]}),
    )
    .await;
    let port = api
        .create("ports", "port", json!({"network_id": network["id"], "binding:host_id": host, "binding:profile": {"interface": "veth"}}))
        .await;
    guard.ids.push(port["id"].as_str().unwrap().into());
    wait_active(api, &[&port]).await;
    let ip = port["fixed_ips"][0]["ip_address"].as_str().unwrap();
    let guest = Guest::plug(&port, &format!("p{third_octet}"), Some(&format!("{ip}/24")));
    (network, guest)
}

/// Deletes the guard's ports and networks (pushed as network, port pairs) through the API
/// and waits for the agent to remove their devices.
async fn delete_provider(api: &Neutron<'_>, guard: &mut HostGuard) {
    for id in guard.ids.iter().skip(1).step_by(2) {
        api.delete(&format!("/v2.0/ports/{id}")).await;
    }
    for id in guard.ids.iter().step_by(2) {
        api.delete(&format!("/v2.0/networks/{id}")).await;
    }
    let ids = guard.ids.clone();
    eventually("the provider networks' devices to go", || {
        let links = String::from_utf8_lossy(&run("ip", &["-br", "link"]).stdout).into_owned();
        ids.iter().all(|id| !links.contains(&id[..10]))
    });
    guard.ids.clear();
}

async fn provider_cloud(up: &Uplink, host: &str) -> Cloud {
    let uplink = up.uplink.clone();
    let host = host.to_owned();
    Cloud::start_with(|c| {
        c.network.agent = true;
        c.network.host = host;
        c.network
            .physical_interfaces
            .insert("physnet1".into(), uplink);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_provider_network_reaches_the_physical_network() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let up = Uplink::new();
    let host = format!("dp-flat-{}", std::process::id());
    let cloud = provider_cloud(&up, &host).await;
    let token = cloud.admin_token().await;
    let api = &Neutron::new(&cloud, &token);
    up.outside
        .exec_ok(&["ip", "addr", "add", "10.251.9.1/24", "dev", &up.outside.dev]);
    let mut guard = HostGuard { ids: Vec::new() };
    let attrs = json!({"name": "flat", "provider:network_type": "flat", "provider:physical_network": "physnet1"});
    let (network, guest) = provider_port(api, &host, &mut guard, attrs, 9).await;
    assert_eq!(network["mtu"], 1500, "no encapsulation on a flat network");
    assert!(
        guest.pings("10.251.9.1"),
        "a port on a flat network reaches the physical network"
    );
    drop(guest);
    delete_provider(api, &mut guard).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlan_provider_network_reaches_its_vlan() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let up = Uplink::new();
    let probe = run(
        "ip",
        &[
            "link", "add", "link", &up.uplink, "name", "pvprobe", "type", "vlan", "id", "4000",
        ],
    );
    let can_vlan = onestack_testkit::require(
        onestack_testkit::Need::Vlan,
        probe.status.success(),
        "this kernel cannot make VLAN sub-interfaces (no 8021q module)",
    );
    if !can_vlan {
        return;
    }
    let _ = run("ip", &["link", "del", "pvprobe"]);
    let host = format!("dp-vlan-{}", std::process::id());
    let cloud = provider_cloud(&up, &host).await;
    let token = cloud.admin_token().await;
    let api = &Neutron::new(&cloud, &token);
    up.outside
        .exec_ok(&["ip", "addr", "add", "10.251.9.1/24", "dev", &up.outside.dev]);
    up.outside.exec_ok(&[
        "ip",
        "link",
        "add",
        "link",
        &up.outside.dev,
        "name",
        "v100",
        "type",
        "vlan",
        "id",
        "100",
    ]);
    up.outside.exec_ok(&["ip", "link", "set", "v100", "up"]);
    up.outside
        .exec_ok(&["ip", "addr", "add", "10.251.10.1/24", "dev", "v100"]);
    let mut guard = HostGuard { ids: Vec::new() };
    let attrs = json!({"name": "vlan", "provider:network_type": "vlan", "provider:physical_network": "physnet1", "provider:segmentation_id": 100});
    let (_, guest) = provider_port(api, &host, &mut guard, attrs, 10).await;
    assert!(
        guest.pings("10.251.10.1"),
        "a port on VLAN 100 reaches VLAN 100 outside"
    );
    assert!(!guest.pings("10.251.9.1"), "and not the untagged network");
    drop(guest);
    delete_provider(api, &mut guard).await;
}

fn ifindex(name: &str) -> Option<u64> {
    let out = run("ip", &["-j", "link", "show", name]);
    let links: Value = serde_json::from_slice(&out.stdout).ok()?;
    links[0]["ifindex"].as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_readopts_and_a_pass_repairs_drift() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let host = format!("dp-restart-{}", std::process::id());
    let settings = |c: &mut onestack::Config| {
        c.network.agent = true;
        c.network.host = host.clone();
        c.network.resync_seconds = 1;
    };
    let mut cloud = Cloud::start_with(settings).await;
    let token = cloud.admin_token().await;
    let network = Neutron::new(&cloud, &token).network("restart").await;
    let net_id = network["id"].as_str().unwrap().to_owned();
    let mut guard = HostGuard {
        ids: vec![net_id.clone()],
    };
    Neutron::new(&cloud, &token)
        .subnet(&network, "10.251.20.0/24", json!({}))
        .await;
    let port = Neutron::new(&cloud, &token)
        .create("ports", "port", json!({"network_id": net_id, "binding:host_id": host, "binding:profile": {"interface": "veth"}}))
        .await;
    let port_id = port["id"].as_str().unwrap().to_owned();
    guard.ids.push(port_id.clone());
    wait_active(&Neutron::new(&cloud, &token), &[&port]).await;
    let bridge = format!("osbr-{}", &net_id[..10]);
    let tap = format!("ostp-{}", &port_id[..10]);
    let cloud_id = crate::common::cloud_id(&cloud.data_dir).expect("the cloud has an id");
    let pidfile = std::path::Path::new(onestack::RUNTIME_DIR)
        .join(cloud_id)
        .join("network")
        .join(&net_id)
        .join("pid");
    let before = (
        ifindex(&bridge),
        ifindex(&tap),
        std::fs::read_to_string(&pidfile).ok(),
    );
    assert!(
        before.0.is_some() && before.1.is_some() && before.2.is_some(),
        "{before:?}"
    );

    // Stopping onestack leaves the data plane alone: guests keep their network.
    cloud.running.take().unwrap().stop().await.unwrap();
    assert_eq!(ifindex(&tap), before.1, "the tap outlives onestack");
    let pid = before.2.clone().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "dnsmasq outlives onestack"
    );

    // Started again, the agent adopts what is there instead of rebuilding it.
    let mut config = crate::common::test_config(&cloud.data_dir);
    settings(&mut config);
    let running = onestack::start(config).await.unwrap();
    cloud.url = format!("http://{}", running.addr);
    cloud.running = Some(running);
    let api = Neutron::new(&cloud, &token);
    let second = api
        .create("ports", "port", json!({"network_id": net_id, "binding:host_id": host, "binding:profile": {"interface": "veth"}}))
        .await;
    guard.ids.push(second["id"].as_str().unwrap().to_owned());
    wait_active(&api, &[&second]).await;
    let after = (
        ifindex(&bridge),
        ifindex(&tap),
        std::fs::read_to_string(&pidfile).ok(),
    );
    assert_eq!(
        after, before,
        "same bridge, same tap, same dnsmasq after a restart"
    );

    // Drift (a device removed behind our back) is repaired by the next pass.
    run_ok("ip", &["link", "del", &tap]);
    eventually("the tap to be rebuilt", || ifindex(&tap).is_some());

    for p in [&port, &second] {
        api.delete(&format!("/v2.0/ports/{}", p["id"].as_str().unwrap()))
            .await;
    }
    api.delete(&format!("/v2.0/networks/{net_id}")).await;
    let ids = guard.ids.clone();
    eventually("everything to go", || {
        let links = String::from_utf8_lossy(&run("ip", &["-br", "link"]).stdout).into_owned();
        ids.iter().all(|id| !links.contains(&id[..10]))
    });
    guard.ids.clear();
}

/// Deletes a router's namespace should the test fail before the API delete did.
struct RouterGuard(String);

impl Drop for RouterGuard {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &format!("osrtr-{}", self.0)]);
    }
}

/// The walkthrough's data plane: a router between two tenant subnets and an external flat
/// network; SNAT out, a floating IP in (and not the fixed address), and nothing left after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_snat_floating_ip_and_two_subnets() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let up = Uplink::new();
    let host = format!("dp-l3-{}", std::process::id());
    let cloud = provider_cloud(&up, &host).await;
    let token = cloud.admin_token().await;
    let api = &Neutron::new(&cloud, &token);
    up.outside
        .exec_ok(&["ip", "addr", "add", "10.253.0.1/24", "dev", &up.outside.dev]);
    let mut guard = HostGuard { ids: Vec::new() };

    let public = api
        .create(
            "networks",
            "network",
            json!({"name": "public01", "router:external": true,
            "provider:network_type": "flat", "provider:physical_network": "physnet1"}),
        )
        .await;
    guard.ids.push(public["id"].as_str().unwrap().into());
    api.subnet(
        &public,
        "10.253.0.0/24",
        json!({"enable_dhcp": false, "gateway_ip": "10.253.0.1",
               "allocation_pools": [{"start": "10.253.0.10", "end": "10.253.0.20"}]}),
    )
    .await;
    let router = api.create("routers", "router", json!({"name": "r1"})).await;
    let rid = router["id"].as_str().unwrap().to_owned();
    let _router_guard = RouterGuard(rid.clone());
    let set = api
        .put(
            &format!("/v2.0/routers/{rid}"),
            json!({"router": {"external_gateway_info": {"network_id": public["id"]}}}),
        )
        .await;
    assert_eq!(set.status, reqwest::StatusCode::OK, "{}", set.body);

    let mut guests = Vec::new();
    for n in [1u8, 2] {
        let net = api.network(&format!("t{n}")).await;
        guard.ids.push(net["id"].as_str().unwrap().into());
        let sub = api
            .subnet(
                &net,
                &format!("10.252.{n}.0/24"),
                json!({"enable_dhcp": false}),
            )
            .await;
        let added = api
            .put(
                &format!("/v2.0/routers/{rid}/add_router_interface"),
                json!({"subnet_id": sub["id"]}),
            )
            .await;
        assert_eq!(added.status, reqwest::StatusCode::OK, "{}", added.body);
        guard
            .ids
            .push(added.body["port_id"].as_str().unwrap().into());
        let port = api
            .create(
                "ports",
                "port",
                json!({"network_id": net["id"], "binding:host_id": host,
                "binding:profile": {"interface": "veth"}, "port_security_enabled": false}),
            )
            .await;
        guard.ids.push(port["id"].as_str().unwrap().into());
        wait_active(api, &[&port]).await;
        let ip = port["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap()
            .to_owned();
        let guest = Guest::plug(&port, &format!("l3g{n}"), Some(&format!("{ip}/24")));
        guest.exec_ok(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("10.252.{n}.1"),
        ]);
        guests.push((port, ip, guest));
    }
    let ns = format!("osrtr-{rid}");
    eventually("the router namespace", || netns_exists(&ns));

    let (port1, ip1, guest1) = &guests[0];
    let (_, ip2, guest2) = &guests[1];
    eventually("guest 1 to reach the outside host (SNAT)", || {
        guest1.pings("10.253.0.1")
    });
    eventually("the two subnets to reach each other", || {
        guest1.pings(ip2) && guest2.pings(ip1)
    });
    // Without a floating IP the outside host cannot come in, even with a route.
    up.outside
        .exec_ok(&["ip", "route", "add", "10.252.0.0/16", "via", "10.253.0.10"]);
    assert!(
        !up.outside.pings(ip1),
        "the fixed address is not reachable from outside"
    );

    let fip = api
        .create(
            "floatingips",
            "floatingip",
            json!({"floating_network_id": public["id"]}),
        )
        .await;
    let address = fip["floating_ip_address"].as_str().unwrap().to_owned();
    assert!(
        !up.outside.pings(&address),
        "an unassociated floating IP does not answer"
    );
    let fpath = format!("/v2.0/floatingips/{}", fip["id"].as_str().unwrap());
    let assoc = api
        .put(&fpath, json!({"floatingip": {"port_id": port1["id"]}}))
        .await;
    assert_eq!(assoc.status, reqwest::StatusCode::OK, "{}", assoc.body);
    let took = eventually("the floating IP to answer", || up.outside.pings(&address));
    println!("floating IP answering {took:?} after association");
    assert!(!up.outside.pings(ip1), "still not by the fixed address");
    let shown = api.get(&fpath).await;
    assert_eq!(
        shown.body["floatingip"]["status"], "ACTIVE",
        "{}",
        shown.body
    );

    // Disassociate: the address stops answering.
    api.put(&fpath, json!({"floatingip": {"port_id": null}}))
        .await;
    eventually("the floating IP to stop answering", || {
        !up.outside.pings(&address)
    });

    // Delete everything through the API: the namespace and its devices go.
    api.delete(&fpath).await;
    for (port, _, _) in &guests {
        api.delete(&format!("/v2.0/ports/{}", port["id"].as_str().unwrap()))
            .await;
    }
    let ports = api
        .get(&format!(
            "/v2.0/ports?device_id={rid}&device_owner=network:router_interface"
        ))
        .await;
    for p in ports.body["ports"].as_array().unwrap() {
        let r = api
            .put(
                &format!("/v2.0/routers/{rid}/remove_router_interface"),
                json!({"port_id": p["id"]}),
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::OK, "{}", r.body);
    }
    let r = api.delete(&format!("/v2.0/routers/{rid}")).await;
    assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT, "{}", r.body);
    eventually("the router namespace to go", || !netns_exists(&ns));
    drop(guests);
    for id in guard.ids.iter().skip(1) {
        api.delete(&format!("/v2.0/networks/{id}")).await;
    }
    api.delete(&format!(
        "/v2.0/networks/{}",
        public["id"].as_str().unwrap()
    ))
    .await;
    let ids = guard.ids.clone();
    eventually("the router's devices to go", || {
        let links = String::from_utf8_lossy(&run("ip", &["-br", "link"]).stdout).into_owned();
        ids.iter().all(|id| !links.contains(&id[..10]))
    });
}

fn netns_exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

/// When this host's agent of `cloud` last started a pass (microseconds), from its database.
async fn last_pass(cloud: &Cloud, host: &str) -> Option<i64> {
    let pool = cloud.database().await.ok()?;
    let at = sqlx_heartbeat(&pool, host).await;
    pool.close().await;
    at
}

async fn sqlx_heartbeat(pool: &onestack_db::Pool, host: &str) -> Option<i64> {
    use sqlx::Row;
    sqlx::query("SELECT heartbeat_at FROM net_hosts WHERE host = $1")
        .bind(host.to_owned())
        .fetch_optional(pool)
        .await
        .ok()??
        .try_get("heartbeat_at")
        .ok()
}

/// Waits until the agent of `cloud` has started `passes` more passes.
async fn wait_passes(cloud: &Cloud, host: &str, passes: usize) {
    let start = Instant::now();
    let mut seen = last_pass(cloud, host).await;
    let mut count = 0;
    while count < passes {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the agent of {} ran {count} of {passes} passes",
            cloud.url
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = last_pass(cloud, host).await;
        if now != seen {
            count += 1;
            seen = now;
        }
    }
}

fn nft_table_exists(family: &str, table: &str) -> bool {
    run("nft", &["list", "table", family, table])
        .status
        .success()
}

/// Two clouds on one host (a test cloud beside a real one, two CI runs): each agent keeps
/// to what its own cloud made through several passes — same devices (same ifindex), same
/// DHCP server, both rule tables — and both clouds' guests keep their traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clouds_on_one_host_keep_apart() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let host = format!("dp-two-{}", std::process::id());
    let settings = |c: &mut onestack::Config| {
        c.network.agent = true;
        c.network.host = host.clone();
        c.network.resync_seconds = 1;
    };
    // Declared first, dropped last: after the clouds, so no agent rebuilds what it removes.
    let mut guard = HostGuard { ids: Vec::new() };
    // VXLAN ids are the host's: two clouds on one host take them from disjoint ranges.
    let clouds = [
        Cloud::start_with(settings).await,
        Cloud::start_with(|c| {
            settings(c);
            c.network.vni_min = 1_000_001;
            c.network.vni_max = 1_065_535;
        })
        .await,
    ];
    let mut guests = Vec::new();
    let mut devices = Vec::new();
    for (n, cloud) in clouds.iter().enumerate() {
        let token = cloud.admin_token().await;
        let api = Neutron::new(cloud, &token);
        let network = api.network("two").await;
        let net_id = network["id"].as_str().unwrap().to_owned();
        guard.ids.push(net_id.clone());
        // The same range in both clouds: nothing may leak from one to the other.
        api.subnet(&network, "10.251.30.0/24", json!({})).await;
        // The first cloud's guests may reach each other (the default group); the second
        // cloud's may not (a group without ingress rules). Same addresses, same port numbers
        // in both tables: a mark cleared or read by the wrong table shows as a ping that
        // fails in the first cloud or passes in the second.
        let mut attrs = json!({"network_id": net_id, "binding:host_id": host,
            "binding:profile": {"interface": "veth"}});
        if n == 1 {
            let closed = api
                .create(
                    "security-groups",
                    "security_group",
                    json!({"name": "closed"}),
                )
                .await;
            attrs["security_groups"] = json!([closed["id"]]);
        }
        let mut ports = Vec::new();
        for name in ["a", "b"] {
            attrs["name"] = json!(name);
            let port = api.create("ports", "port", attrs.clone()).await;
            guard.ids.push(port["id"].as_str().unwrap().to_owned());
            ports.push(port);
        }
        wait_active(&api, &[&ports[0], &ports[1]]).await;
        let ip = |p: &Value| p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned();
        for (p, tag) in ports.iter().zip(["a", "b"]) {
            let guest = Guest::plug(p, &format!("two{n}{tag}"), Some(&format!("{}/24", ip(p))));
            guests.push((guest, ip(p)));
        }
        devices.push(format!("osbr-{}", &net_id[..10]));
        for p in &ports {
            devices.push(format!("ostp-{}", &p["id"].as_str().unwrap()[..10]));
        }
        devices.push(format!("osdhcp-{net_id}"));
    }
    let snapshot = || -> Vec<(String, Option<u64>)> {
        devices
            .iter()
            .map(|d| {
                let index = if d.starts_with("osdhcp-") {
                    netns_exists(d).then_some(0)
                } else {
                    ifindex(d)
                };
                (d.clone(), index)
            })
            .collect()
    };
    let before = snapshot();
    assert!(before.iter().all(|(_, i)| i.is_some()), "{before:?}");
    let tables: Vec<String> = clouds.iter().map(cloud_table).collect();
    assert_ne!(tables[0], tables[1]);

    for cloud in &clouds {
        wait_passes(cloud, &host, 3).await;
    }
    assert_eq!(
        snapshot(),
        before,
        "no agent removed or rebuilt the other's devices"
    );
    for table in &tables {
        for family in ["bridge", "inet"] {
            assert!(nft_table_exists(family, table), "{family} {table}");
        }
    }
    // Both clouds' rules are loaded at once and each applies to its own bridges only.
    for (n, pair) in guests.chunks(2).enumerate() {
        let (a, _) = &pair[0];
        let (_, b_ip) = &pair[1];
        assert_eq!(a.pings(b_ip), n == 0, "{} reaching {b_ip}", a.ns);
    }

    // One cloud going away takes only its own devices and table with it.
    let [first, second] = clouds;
    let token = first.admin_token().await;
    let api = Neutron::new(&first, &token);
    for id in guard.ids.clone().iter().skip(1).take(2) {
        api.delete(&format!("/v2.0/ports/{id}")).await;
    }
    api.delete(&format!("/v2.0/networks/{}", guard.ids[0]))
        .await;
    let first_devices: Vec<String> = devices[..4].to_vec();
    eventually("the first cloud's devices to go", || {
        first_devices
            .iter()
            .all(|d| ifindex(d).is_none() && !netns_exists(d))
    });
    eventually("the first cloud's table to go", || {
        !nft_table_exists("inet", &tables[0])
    });
    wait_passes(&second, &host, 2).await;
    assert_eq!(
        snapshot()[4..],
        before[4..],
        "the second cloud kept its devices"
    );
    assert!(nft_table_exists("inet", &tables[1]));

    drop(guests);
    let token = second.admin_token().await;
    let api = Neutron::new(&second, &token);
    for id in guard.ids.clone().iter().skip(4) {
        api.delete(&format!("/v2.0/ports/{id}")).await;
    }
    api.delete(&format!("/v2.0/networks/{}", guard.ids[3]))
        .await;
    eventually("the second cloud's table to go", || {
        !nft_table_exists("inet", &tables[1])
    });
    drop(first);
    drop(second);
}
