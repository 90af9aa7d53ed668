//! Two hosts, one tenant network: the controller (this test's cloud, in the test's own
//! network namespace) and a host that joined it (`onestack join`, in a namespace of its
//! own with an underlay veth to the controller). The joined host's agent learns its ports
//! over the agent protocol, builds them, and reports them up; a stand-in guest on each host
//! reaches the other through VXLAN (forwarding entries from the port bindings, no
//! multicast), and the one on the joined host gets its address from the controller's DHCP.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{AGENT, Guest, HostGuard, dhcp_lease, eventually, wait_active};
use crate::common::{Cloud, KillOnDrop, Underlay, root_or_skip, run, test_config};
use crate::network::Neutron;

const CONTROLLER_IP: &str = Underlay::CONTROLLER_IP;
const HOST_IP: &str = Underlay::HOST_IP;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_on_two_hosts_reach_each_other_over_vxlan() {
    if !root_or_skip() {
        return;
    }
    let _turn = AGENT.lock().await;
    let pid = std::process::id();
    let controller_host = format!("dp-ctl-{pid}");
    let joined_host = format!("dp-h2-{pid}");
    let underlay = Underlay::new();
    let host_ns = &underlay.host;
    let cloud = Cloud::start_with(|c| {
        c.network.agent = true;
        c.network.host = controller_host.clone();
        c.network.local_ip = CONTROLLER_IP.into();
        c.server.listen = format!("{CONTROLLER_IP}:0").parse().unwrap();
    })
    .await;

    // The host joins from its namespace, with the fake hypervisor (stand-in guests here).
    let token = onestack::join::issue_token(&test_config(&cloud.data_dir), Duration::from_secs(60))
        .await
        .unwrap()
        .token;
    let host_dir = tempfile::tempdir().unwrap();
    let joined = Command::new("ip")
        .args(["netns", "exec", &host_ns.ns, env!("CARGO_BIN_EXE_onestack")])
        .args([
            "join",
            &cloud.url,
            "--token",
            &token,
            "--name",
            &joined_host,
        ])
        .arg("--data-dir")
        .arg(host_dir.path())
        .env("ONESTACK_COMPUTE__DRIVER", "fake")
        .env("ONESTACK_NETWORK__LOCAL_IP", HOST_IP)
        .env("ONESTACK_NETWORK__RESYNC_SECONDS", "2")
        .env_remove("ONESTACK_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("onestack join starts");
    let _joined = KillOnDrop(joined);

    let token = cloud.admin_token().await;
    let api = Neutron::new(&cloud, &token);
    let net = api.network("hosts").await;
    let mut guard = HostGuard {
        ids: vec![net["id"].as_str().unwrap().into()],
    };
    api.subnet(&net, "10.251.3.0/24", json!({})).await;
    let group = api
        .create(
            "security-groups",
            "security_group",
            json!({"name": "hosts"}),
        )
        .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    api.create(
        "security-group-rules",
        "security_group_rule",
        json!({"security_group_id": gid, "direction": "ingress", "protocol": "icmp"}),
    )
    .await;
    let port = |host: &str, name: &str| {
        let attrs = json!({"network_id": net["id"], "name": name, "security_groups": [gid],
            "binding:host_id": host, "binding:profile": {"interface": "veth"}});
        let api = &api;
        async move { api.create("ports", "port", attrs).await }
    };
    let here = port(&controller_host, "here").await;
    let there = port(&joined_host, "there").await;
    let other = port(&joined_host, "other").await;
    for p in [&here, &there, &other] {
        guard.ids.push(p["id"].as_str().unwrap().to_owned());
    }
    // ACTIVE: the joined host built its ports and said so over the protocol.
    wait_active(&api, &[&here, &there, &other]).await;

    let ip = |p: &Value| p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_owned();
    let g_here = Guest::plug(&here, "here", Some(&format!("{}/24", ip(&here))));
    let g_there = Guest::plug_from(
        Some(host_ns),
        &there,
        "there",
        Some(&format!("{}/24", ip(&there))),
    );
    let g_other = Guest::plug_from(Some(host_ns), &other, "other", None);

    // Across the hosts, both ways, through VXLAN over the underlay.
    let took = eventually(
        "the guest on the controller to reach the joined host's",
        || g_here.pings(&ip(&there)),
    );
    assert!(took < Duration::from_secs(5), "reached in {took:?}");
    assert!(g_there.pings(&ip(&here)), "and back");
    // The controller's DHCP server answers a guest on the other host with its own address.
    assert_eq!(dhcp_lease(&g_other), Some(ip(&other)));
    // The controller's VXLAN knows the joined host's ports by their binding.
    let vxlan = format!("osvx-{}", &net["id"].as_str().unwrap()[..10]);
    let fdb = String::from_utf8_lossy(&run("bridge", &["fdb", "show", "dev", &vxlan]).stdout)
        .into_owned();
    let mac = there["mac_address"].as_str().unwrap();
    assert!(
        fdb.lines()
            .any(|l| l.starts_with(mac) && l.contains(&format!("dst {HOST_IP}"))),
        "{vxlan}'s forwarding entries: {fdb}"
    );

    // Unbound from the joined host, its port's device goes from there (the stand-in guest
    // still holds the other end).
    let unbound = api
        .put(
            &format!("/v2.0/ports/{}", other["id"].as_str().unwrap()),
            json!({"port": {"binding:host_id": ""}}),
        )
        .await;
    assert_eq!(unbound.status, reqwest::StatusCode::OK, "{}", unbound.body);
    let gone = format!("ostp-{}", &other["id"].as_str().unwrap()[..10]);
    eventually("the joined host to remove the unbound port", || {
        !String::from_utf8_lossy(&host_ns.exec(&["ip", "-br", "link"]).stdout).contains(&gone)
    });
    drop((g_here, g_there, g_other));
    // The guard stays armed: the controller's own bridge for the network goes with it when
    // the cloud stops before its agent's next pass.
    for p in [&here, &there, &other] {
        api.delete(&format!("/v2.0/ports/{}", p["id"].as_str().unwrap()))
            .await;
    }
    let deleted = api
        .delete(&format!("/v2.0/networks/{}", net["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        deleted.status,
        reqwest::StatusCode::NO_CONTENT,
        "{}",
        deleted.body
    );
    let net_id = net["id"].as_str().unwrap()[..10].to_owned();
    eventually(
        "the joined host to remove the network's bridge and VXLAN",
        || !String::from_utf8_lossy(&host_ns.exec(&["ip", "-br", "link"]).stdout).contains(&net_id),
    );
}
