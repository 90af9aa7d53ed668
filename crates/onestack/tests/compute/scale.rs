//! Fifty hosts and a thousand servers on the fake driver (the scale test). Every
//! host is a joined agent in this process with its own credential, talking to the
//! controller over the agent protocol on real HTTP, as `onestack join` does. What scale
//! could break is checked: every server placed and built, no host given more than it has
//! while boots run eight at a time (claims in the write transaction), the free-RAM weigher
//! spreading them evenly, and the admin views (hypervisors, the server list in pages) whole.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use onestack_agent::control::client::ControlClient;
use onestack_virt::Driver;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::joining::{join_token, joined_host_as};
use super::{Client, env};
use crate::common::Cloud;

const HOSTS: usize = 50;
const SERVERS: usize = 1000;
/// Boots in flight at once.
const AT_ONCE: usize = 8;
/// Each host: 24 vCPUs and 16 GiB at ratio 1, so 24 servers of the flavor below by CPU and
/// 32 by RAM; 1,200 in all for 1,000.
const HOST_VCPUS: u64 = 24;
const HOST_RAM_MB: u64 = 16 * 1024;
const FLAVOR_RAM_MB: u64 = 512;
/// How long the thousand get to turn ACTIVE once asked for.
const BUILD_WAIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_hosts_take_a_thousand_servers_evenly_and_none_overcommitted() {
    let cloud = Cloud::start_with(|c| {
        c.compute.quota_instances = -1;
        c.compute.quota_cores = -1;
        c.compute.quota_ram = -1;
        c.compute.report_interval = 5;
    })
    .await;
    let e = env(&cloud).await;
    let admin = &e.admin;
    // The controller's own host takes none: the fifty joined ones are measured.
    let services = admin.at("2.53").get("/os-services").await;
    let controller = services.body["services"][0]["id"].as_str().unwrap();
    let disabled = admin
        .at("2.53")
        .put(
            &format!("/os-services/{controller}"),
            json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);

    let hosts: Vec<String> = (0..HOSTS).map(|i| format!("scale-{i:02}")).collect();
    let protocol = ControlClient::new(&cloud.url);
    let mut agents = Vec::new();
    for (i, name) in hosts.iter().enumerate() {
        let token = join_token(&cloud, Duration::from_secs(60)).await;
        let joined = protocol.join(&token, name).await.expect("a host joins");
        let mut agent = joined_host_as(
            &cloud,
            name,
            &format!("192.0.2.{}", i + 10),
            &joined.credential,
        );
        agent.compute.report_interval = 5;
        agent.compute.vcpus = HOST_VCPUS;
        agent.compute.memory_mb = HOST_RAM_MB;
        agent.compute.disk_gb = 1000;
        agent.compute.reserved_host_memory_mb = 0;
        agent.compute.cpu_allocation_ratio = 1.0;
        agent.compute.ram_allocation_ratio = 1.0;
        agent.compute.disk_allocation_ratio = 1.0;
        agents.push(tokio::spawn(async move { agent.run(Driver::fake()).await }));
    }
    let joined_by = Instant::now() + Duration::from_secs(30);
    while up_hosts(admin, &hosts).await < HOSTS {
        assert!(
            Instant::now() < joined_by,
            "not all {HOSTS} hosts up in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let flavor = admin
        .post(
            "/flavors",
            json!({"flavor": {"name": "scale", "id": "scale", "ram": FLAVOR_RAM_MB,
                "vcpus": 1, "disk": 1}}),
        )
        .await;
    assert_eq!(flavor.status, StatusCode::OK, "{}", flavor.body);
    let image = admin.image("scale", json!({})).await;

    // A thousand boots, eight at a time, each timed from request to 202.
    let started = Instant::now();
    let boots = futures_util::stream::iter(0..SERVERS)
        .map(|i| {
            let image = image.clone();
            async move {
                let asked = Instant::now();
                let reply = admin
                    .create_server(
                        &format!("s{i:04}"),
                        &image,
                        json!({"flavorRef": "scale", "networks": "none"}),
                    )
                    .await;
                (reply, asked.elapsed())
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let asked_all = started.elapsed();
    let mut latencies = Vec::new();
    for (reply, took) in &boots {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        latencies.push(*took);
    }
    latencies.sort();
    let built_by = Instant::now() + BUILD_WAIT;
    let mut servers = all_servers(admin).await;
    while servers.iter().filter(|s| s["status"] == "ACTIVE").count() < SERVERS {
        let stuck: Vec<_> = servers
            .iter()
            .filter(|s| s["status"] != "ACTIVE")
            .map(|s| format!("{} {}", s["name"], s["status"]))
            .take(5)
            .collect();
        assert!(
            Instant::now() < built_by,
            "not all ACTIVE within {BUILD_WAIT:?}, e.g. {stuck:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        servers = all_servers(admin).await;
    }
    let all_active = started.elapsed();
    println!(
        "{SERVERS} boots on {HOSTS} hosts, {AT_ONCE} at a time: POST /servers p50 {:?}, p99 {:?}, max {:?}; all asked in {asked_all:?}, all ACTIVE in {all_active:?}",
        latencies[SERVERS / 2],
        latencies[SERVERS * 99 / 100],
        latencies[SERVERS - 1]
    );

    // Each server once, on one of the fifty, and the fifty evenly loaded.
    assert_eq!(servers.len(), SERVERS);
    let ids: HashSet<&str> = servers.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids.len(), SERVERS, "a server listed twice across pages");
    let mut per_host: HashMap<&str, usize> = HashMap::new();
    for s in &servers {
        let host = s["OS-EXT-SRV-ATTR:host"].as_str().unwrap_or_default();
        assert!(hosts.iter().any(|h| h == host), "{} on {host:?}", s["name"]);
        *per_host.entry(host).or_default() += 1;
    }
    let (fewest, most) = (
        hosts
            .iter()
            .map(|h| per_host.get(h.as_str()).copied().unwrap_or(0))
            .min()
            .unwrap(),
        per_host.values().copied().max().unwrap(),
    );
    assert!(
        most - fewest <= 1,
        "free-RAM weighing spreads {SERVERS} over {HOSTS} equal hosts to within one: {fewest}..{most}"
    );

    // What each hypervisor says it carries matches, and none is over what it has.
    let hypervisors = admin.get("/os-hypervisors/detail").await;
    assert_eq!(hypervisors.status, StatusCode::OK, "{}", hypervisors.body);
    for h in hypervisors.body["hypervisors"].as_array().unwrap() {
        let name = h["hypervisor_hostname"].as_str().unwrap();
        if !hosts.iter().any(|x| x == name) {
            continue;
        }
        let running = per_host.get(name).copied().unwrap_or(0) as u64;
        assert_eq!(h["running_vms"], running, "{h}");
        assert_eq!(h["vcpus_used"], running, "{h}");
        assert_eq!(h["memory_mb_used"], running * FLAVOR_RAM_MB, "{h}");
        assert!(h["vcpus_used"].as_u64() <= h["vcpus"].as_u64(), "{h}");
        assert!(
            h["memory_mb_used"].as_u64() <= h["memory_mb"].as_u64(),
            "{h}"
        );
    }
    for agent in agents {
        agent.abort();
    }
}

/// How many of `hosts` the compute service list shows up.
async fn up_hosts(admin: &Client<'_>, hosts: &[String]) -> usize {
    let listed = admin.get("/os-services").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "up" && hosts.iter().any(|h| *h == s["host"]))
        .count()
}

/// Every server of every project, read as a client pages: 250 at a time, following `next`.
async fn all_servers(admin: &Client<'_>) -> Vec<Value> {
    let mut servers = Vec::new();
    let mut path = "/servers/detail?all_tenants=1&limit=250".to_owned();
    loop {
        let page = admin.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        servers.extend(page.body["servers"].as_array().unwrap().iter().cloned());
        let next = page.body["servers_links"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["rel"] == "next"))
            .and_then(|l| l["href"].as_str());
        match next {
            Some(href) => {
                let at = href
                    .find("/servers/detail")
                    .expect("a next link to the list");
                path = href[at..].to_owned();
            }
            None => return servers,
        }
    }
}
