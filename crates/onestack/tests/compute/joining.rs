//! Hosts joining the cloud over the agent protocol: a join token is single-use and
//! expires; a joined host reports its capacity and shows in `os-services` and
//! `os-hypervisors`, speaks only for itself, builds the servers without ports placed on it
//! (and reaches only those), turns `down` when it stops reporting, and is refused once its
//! service is deleted.

use std::time::Duration;

use onestack_agent::control::client::{ControlClient, ControlError};
use onestack_agent::control::joined::JoinedHost;
use onestack_virt::Driver;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Client, env};
use crate::common::{Cloud, test_config};

/// The joined host's name.
const HOST: &str = "host-2";

pub(super) async fn join_token(cloud: &Cloud, ttl: Duration) -> String {
    onestack::join::issue_token(&test_config(&cloud.data_dir), ttl)
        .await
        .expect("a join token is issued")
        .token
}

fn refused_with(result: Result<impl std::fmt::Debug, ControlError>, status: u16) {
    match result {
        Err(ControlError::Refused { status: s, .. }) if s == status => {}
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

/// The compute service of `host` as an admin lists it (2.53: uuid ids).
pub(super) async fn service(admin: &Client<'_>, host: &str) -> Option<Value> {
    let listed = admin.at("2.53").get("/os-services").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.body["services"]
        .as_array()?
        .iter()
        .find(|s| s["host"] == host)
        .cloned()
}

pub(super) async fn wait_state(
    admin: &Client<'_>,
    host: &str,
    state: &str,
    within: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(s) = service(admin, host).await
            && s["state"] == state
        {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{host} not {state} within {within:?}: {:?}",
            service(admin, host).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn joined_host(cloud: &Cloud, credential: &str) -> JoinedHost {
    joined_host_as(cloud, HOST, "192.0.2.2", credential)
}

/// A joined host named `host` (reporting 8 vCPUs every second) with its guests in the
/// cloud's data directory, for the agent to run in this process.
pub(super) fn joined_host_as(
    cloud: &Cloud,
    host: &str,
    local_ip: &str,
    credential: &str,
) -> JoinedHost {
    let mut compute = test_config(&cloud.data_dir).compute;
    compute.report_interval = 1;
    compute.vcpus = 8;
    JoinedHost {
        client: ControlClient::new(&cloud.url).with_credential(credential),
        host: host.into(),
        compute,
        instances_dir: cloud.data_dir.join(host),
        work_dir: cloud.data_dir.join(host),
        local_ip: local_ip.into(),
        // Not root's business here: the data-plane tests run a joined host's network agent.
        network: None,
        plugs_ports: Default::default(),
    }
}

#[tokio::test]
async fn a_joined_host_reports_speaks_for_itself_and_leaves_when_deleted() {
    let cloud = Cloud::start_with(|c| {
        c.compute.report_interval = 1;
        c.compute.service_down_time = 3;
    })
    .await;
    let e = env(&cloud).await;
    let admin = &e.admin;
    let controller = test_config(&cloud.data_dir).network.host_name();
    let protocol = ControlClient::new(&cloud.url);

    // Tokens: a bad name leaves the token good; an expired or used one is refused alike.
    let token = join_token(&cloud, Duration::from_secs(60)).await;
    refused_with(protocol.join(&token, "../etc").await, 400);
    refused_with(protocol.join(&token, &controller).await, 409);
    let joined = protocol.join(&token, HOST).await.expect("host-2 joins");
    assert_eq!(joined.host, HOST);
    refused_with(protocol.join(&token, "host-3").await, 401);
    let expired = join_token(&cloud, Duration::ZERO).await;
    refused_with(protocol.join(&expired, "host-3").await, 401);
    refused_with(protocol.join("0011.2233", "host-3").await, 401);

    // The joined host reports, and shows as a compute service and a hypervisor.
    let agent = joined_host(&cloud, &joined.credential);
    let running = tokio::spawn(async move { agent.run(Driver::fake()).await });
    let up = wait_state(admin, HOST, "up", Duration::from_secs(10)).await;
    assert_eq!(up["status"], "enabled");
    // A token is no key to a running host: its name is taken while it is up.
    let another = join_token(&cloud, Duration::from_secs(60)).await;
    refused_with(protocol.join(&another, HOST).await, 409);
    let hypervisors = admin.get("/os-hypervisors/detail").await;
    let listed = hypervisors.body["hypervisors"].as_array().unwrap().clone();
    let h2 = listed
        .iter()
        .find(|h| h["hypervisor_hostname"] == HOST)
        .unwrap_or_else(|| panic!("{HOST} in {listed:?}"));
    assert_eq!(h2["vcpus"], 8, "{h2}");
    assert!(h2["memory_mb"].as_u64().unwrap() > 0, "{h2}");
    assert_eq!(h2["host_ip"], "192.0.2.2", "{h2}");

    // A host speaks only for itself; a made-up credential for nobody.
    let http = reqwest::Client::new();
    let report = json!({"zone": "nova", "vcpus": 1, "memory_mb": 1, "disk_gb": 1,
        "cpu_ratio": 1.0, "ram_ratio": 1.0, "disk_ratio": 1.0, "reserved_memory_mb": 0,
        "hypervisor_type": "fake", "hypervisor_version": 1, "host_ip": ""});
    for (credential, host, status) in [
        (
            joined.credential.as_str(),
            controller.as_str(),
            StatusCode::FORBIDDEN,
        ),
        (&"0".repeat(64), HOST, StatusCode::UNAUTHORIZED),
        ("", HOST, StatusCode::UNAUTHORIZED),
    ] {
        let answer = http
            .put(format!("{}/agent/v1/hosts/{host}/report", cloud.url))
            .bearer_auth(credential)
            .json(&report)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{credential} for {host}");
    }
    assert_eq!(
        service(admin, &controller).await.unwrap()["state"],
        "up",
        "the controller's host is as it was"
    );

    // With the controller's host disabled, a server without ports goes to the joined host,
    // whose agent builds it over the protocol; one with ports fits nowhere (the joined
    // host has no network agent to plug them).
    let image = e.alice.image("cirros", json!({})).await;
    let placed = e
        .alice
        .boot_active("here", &image, json!({"networks": "none"}))
        .await;
    assert_eq!(
        admin.server(&placed).await["OS-EXT-SRV-ATTR:host"],
        controller.as_str()
    );
    let controller_service = service(admin, &controller).await.unwrap();
    let path = format!(
        "/os-services/{}",
        controller_service["id"].as_str().unwrap()
    );
    let disabled = admin
        .at("2.53")
        .put(&path, json!({"status": "disabled"}))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    let faraway = e
        .alice
        .boot_active("faraway", &image, json!({"networks": "none"}))
        .await;
    assert_eq!(admin.server(&faraway).await["OS-EXT-SRV-ATTR:host"], HOST);
    // Its console log comes from the joined host, asked through the agent's long poll.
    let console = e
        .alice
        .action(&faraway, json!({"os-getConsoleOutput": {"length": 5}}))
        .await;
    assert_eq!(console.status, StatusCode::OK, "{}", console.body);
    assert!(
        console.body["output"]
            .as_str()
            .is_some_and(|o| o.contains(&format!("instance {faraway}"))),
        "{}",
        console.body
    );
    let stopped = e.alice.action(&faraway, json!({"os-stop": null})).await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.body);
    e.alice.wait_status(&faraway, "SHUTOFF").await;
    let network = e.alice.network("wired", "10.79.0.0/24").await;
    let server = e
        .alice
        .boot("nowhere", &image, json!({"networks": [{"uuid": network}]}))
        .await;
    let failed = e.alice.wait_status(&server, "ERROR").await;
    assert!(
        failed["fault"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("No valid host")),
        "{failed}"
    );
    let attached = e
        .alice
        .post(
            &format!("/servers/{faraway}/os-interface"),
            json!({"interfaceAttachment": {"net_id": network}}),
        )
        .await;
    assert_eq!(attached.status, StatusCode::CONFLICT, "{}", attached.body);

    // A host reaches only its own servers and the images they use, and writes back only
    // what a host decides.
    let host_api = |path: &str| format!("{}/agent/v1/hosts/{HOST}/{path}", cloud.url);
    let as_host = |request: reqwest::RequestBuilder| request.bearer_auth(&joined.credential);
    for (path, status) in [
        (format!("servers/{placed}"), StatusCode::NOT_FOUND),
        (format!("servers/{faraway}"), StatusCode::OK),
        (
            format!("servers/{placed}/config-drive"),
            StatusCode::NOT_FOUND,
        ),
        (format!("images/{image}"), StatusCode::OK),
        (
            format!("images/{}", onestack_db::ids::uuid()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let answer = as_host(http.get(host_api(&path))).send().await.unwrap();
        assert_eq!(answer.status(), status, "GET {path}");
    }
    let other_image = e.bob.image("bobs", json!({})).await;
    let answer = as_host(http.get(host_api(&format!("images/{other_image}/file"))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::NOT_FOUND,
        "an image no server of its uses"
    );
    let answer = as_host(http.put(host_api(&format!("images/{image}/file"))))
        .body(vec![0u8; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::NOT_FOUND,
        "no snapshot is being taken"
    );
    let record: Value = as_host(http.get(host_api(&format!("servers/{faraway}"))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut forged = record.clone();
    forged["server"]["task_state"] = json!("deleting");
    let answer = as_host(http.put(host_api(&format!("servers/{faraway}"))))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::BAD_REQUEST,
        "a host starts no task"
    );
    let mut renamed = record.clone();
    renamed["server"]["name"] = json!("taken");
    renamed["server"]["project_id"] = json!("someone-else");
    let answer = as_host(http.put(host_api(&format!("servers/{faraway}"))))
        .json(&renamed)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let kept = e.alice.server(&faraway).await;
    assert_eq!(kept["name"], "faraway", "{kept}");
    let event = json!({"request_id": "req-00000000-0000-4000-8000-000000000000",
        "event": "compute_stop_instance", "started": 0, "ok": true});
    let answer = as_host(http.post(host_api(&format!("servers/{faraway}/events"))))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::CONFLICT,
        "only the latest action"
    );

    // An image's kernel must be public or its owner's: a host is never handed another
    // project's private image, and the server fails to build.
    let kernel_elsewhere = e
        .alice
        .image("with-kernel", json!({"kernel_id": other_image}))
        .await;
    let borrowed = e
        .alice
        .boot("borrowed", &kernel_elsewhere, json!({"networks": "none"}))
        .await;
    e.alice.wait_status(&borrowed, "ERROR").await;
    let answer = as_host(http.get(host_api(&format!("images/{other_image}/file"))))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND, "bob's kernel");
    let deleted = e.alice.delete(&format!("/servers/{borrowed}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    e.alice.wait_gone(&borrowed).await;

    let purged = as_host(http.delete(host_api(&format!("servers/{faraway}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        purged.status(),
        StatusCode::CONFLICT,
        "only a deleted server is purged"
    );
    let deleted = e.alice.delete(&format!("/servers/{faraway}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    e.alice.wait_gone(&faraway).await;

    // Silent, it turns down within service_down_time; its server keeps its last state,
    // and deleting it needs no host (Nova's local delete).
    let stranded = e
        .alice
        .boot_active("stranded", &image, json!({"networks": "none"}))
        .await;
    let evacuee = e
        .alice
        .boot_active("evacuee", &image, json!({"networks": "none"}))
        .await;
    let evacuate = |body: Value, version: &'static str| {
        let path = format!("/servers/{evacuee}/action");
        async move {
            admin
                .at(version)
                .post(&path, json!({ "evacuate": body }))
                .await
        }
    };
    let in_use = evacuate(json!({}), "2.90").await;
    assert_eq!(in_use.status, StatusCode::BAD_REQUEST, "{}", in_use.body);
    assert!(
        in_use.body.to_string().contains("still in use"),
        "{}",
        in_use.body
    );
    running.abort();
    wait_state(admin, HOST, "down", Duration::from_secs(6)).await;
    assert_eq!(e.alice.server(&stranded).await["status"], "ACTIVE");

    // Evacuation (admins only) rebuilds a server of the down host on another host.
    let by_member = e
        .alice
        .at("2.90")
        .post(
            &format!("/servers/{evacuee}/action"),
            json!({"evacuate": {}}),
        )
        .await;
    assert_eq!(
        by_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_member.body
    );
    for (body, version, status) in [
        (json!({}), "2.1", StatusCode::BAD_REQUEST),
        (
            json!({"onSharedStorage": true}),
            "2.1",
            StatusCode::BAD_REQUEST,
        ),
        (json!({"host": 5}), "2.90", StatusCode::BAD_REQUEST),
        (json!({"colour": "red"}), "2.90", StatusCode::BAD_REQUEST),
        (json!({"host": HOST}), "2.90", StatusCode::BAD_REQUEST),
        (json!({"host": "nowhere"}), "2.90", StatusCode::NOT_FOUND),
        // The controller's host is disabled: no other host takes it.
        (json!({}), "2.90", StatusCode::BAD_REQUEST),
    ] {
        let refused = evacuate(body.clone(), version).await;
        assert_eq!(
            refused.status, status,
            "{body} at {version}: {}",
            refused.body
        );
    }
    let shown = admin.server(&evacuee).await;
    assert_eq!(shown["OS-EXT-SRV-ATTR:host"], HOST, "unchanged: {shown}");
    assert_eq!(shown["status"], "ACTIVE");
    let enabled = admin
        .at("2.53")
        .put(&path, json!({"status": "enabled"}))
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    let moved = evacuate(json!({"host": controller}), "2.90").await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body, Value::Null, "no body from 2.14");
    e.alice.wait_status(&evacuee, "ACTIVE").await;
    let shown = admin.server(&evacuee).await;
    assert_eq!(
        shown["OS-EXT-SRV-ATTR:host"],
        controller.as_str(),
        "{shown}"
    );
    let actions = admin
        .get(&format!("/servers/{evacuee}/os-instance-actions"))
        .await;
    assert!(
        actions.body["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "evacuate"),
        "{}",
        actions.body
    );
    let deleted = e.alice.delete(&format!("/servers/{evacuee}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    e.alice.wait_gone(&evacuee).await;
    let disabled = admin
        .at("2.53")
        .put(&path, json!({"status": "disabled"}))
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    let console = e
        .alice
        .action(&stranded, json!({"os-getConsoleOutput": {}}))
        .await;
    assert_eq!(console.status, StatusCode::CONFLICT, "{}", console.body);
    let deleted = e.alice.delete(&format!("/servers/{stranded}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = e.alice.get(&format!("/servers/{stranded}")).await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "gone at once: {}",
        gone.body
    );

    // Deleting its service: only admins; a host with servers on it is refused.
    let h2_path = format!("/os-services/{}", up["id"].as_str().unwrap());
    let by_member = e.alice.at("2.53").delete(&h2_path).await;
    assert_eq!(
        by_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_member.body
    );
    let busy = admin.at("2.53").delete(&path).await;
    assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.body);
    let deleted = admin.at("2.53").delete(&h2_path).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(service(admin, HOST).await.is_none());
    let again = admin.at("2.53").delete(&h2_path).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);
    let malformed = admin.at("2.53").delete("/os-services/not-a-uuid").await;
    assert_eq!(
        malformed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        malformed.body
    );

    // Its agent is refused from then on, and stops saying why.
    let ended = tokio::time::timeout(
        Duration::from_secs(10),
        joined_host(&cloud, &joined.credential).run(Driver::fake()),
    )
    .await
    .expect("the agent stops once refused");
    refused_with(ended, 401);
    assert!(
        service(admin, HOST).await.is_none(),
        "no report brought it back"
    );
}

/// The status a host's network agent may report: refused (a 404) unless it carries `id`.
fn refused_report(result: Result<(), onestack_agent::network::Error>, status: u16) {
    match result {
        Err(onestack_agent::network::Error::Control(ControlError::Refused {
            status: s, ..
        })) if s == status => {}
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

/// A joined host's network agent, over the protocol: it learns only the networks it has
/// ports on (without the other ports of the network), reports only what it carries, and
/// its heartbeat puts it in the network agent list with its tunnel address.
#[tokio::test]
async fn a_joined_hosts_network_agent_learns_and_reports_only_its_own_ports() {
    use onestack_agent::control::remote_network::RemoteNetwork;
    use onestack_agent::network::controller::NetworkController;
    use onestack_network::desired::Reported;

    let cloud = Cloud::start().await;
    let admin_token = cloud.admin_token().await;
    let neutron = crate::network::Neutron::new(&cloud, &admin_token);
    let token = join_token(&cloud, Duration::from_secs(60)).await;
    let protocol = ControlClient::new(&cloud.url);
    let joined = protocol.join(&token, HOST).await.expect("host-2 joins");
    let client = ControlClient::new(&cloud.url).with_credential(&joined.credential);
    let remote = RemoteNetwork::new(client.clone(), HOST);

    let first = remote
        .wait_for_change(None, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        Some(first.cloud.clone()),
        crate::common::cloud_id(&cloud.data_dir)
    );
    assert!(remote.desired().await.unwrap().networks.is_empty());

    let mine = neutron.network("mine").await;
    neutron.subnet(&mine, "10.9.1.0/24", json!({})).await;
    let theirs = neutron.network("theirs").await;
    let port = |network: &Value, host: &str| {
        let attrs = json!({"network_id": network["id"], "binding:host_id": host});
        let neutron = &neutron;
        async move { neutron.create("ports", "port", attrs).await }
    };
    let here = port(&mine, HOST).await;
    let elsewhere = port(&mine, "").await;
    let other_net = port(&theirs, "").await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();

    // Only its network, only its port; the network's other ports are not its business.
    let state = remote.desired().await.unwrap();
    assert_eq!(state.networks.len(), 1, "{state:?}");
    let plan = &state.networks[0];
    assert_eq!(plan.network.id, id(&mine));
    let local: Vec<&str> = plan.local_ports.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(local, vec![id(&here).as_str()]);
    assert!(
        plan.all_ports.is_empty() && plan.dhcp_port.is_none(),
        "{plan:?}"
    );

    // A change wakes its wait.
    let seen = remote
        .wait_for_change(None, Duration::ZERO)
        .await
        .unwrap()
        .generation;
    let waiting = {
        let remote = RemoteNetwork::new(client.clone(), HOST);
        tokio::spawn(async move {
            remote
                .wait_for_change(Some(seen), Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    neutron
        .put(
            &format!("/v2.0/ports/{}", id(&here)),
            json!({"port": {"name": "renamed"}}),
        )
        .await;
    let woke = waiting.await.unwrap().unwrap();
    assert!(woke.generation > seen);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Its own port's status it reports; another's, or a floating IP it does not carry, not.
    remote
        .report_status(Reported::Port, &id(&here), true)
        .await
        .unwrap();
    let shown = neutron.get(&format!("/v2.0/ports/{}", id(&here))).await;
    assert_eq!(shown.body["port"]["status"], "ACTIVE");
    // (The controller answers 404; the agent takes that as "moved away meanwhile".)
    let refused = reqwest::Client::new()
        .put(format!(
            "{}/agent/v1/hosts/{HOST}/network/status",
            cloud.url
        ))
        .bearer_auth(&joined.credential)
        .json(&json!({"what": "port", "id": id(&elsewhere), "up": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    for other in [&elsewhere, &other_net] {
        remote
            .report_status(Reported::Port, &id(other), true)
            .await
            .unwrap();
        let status = neutron.get(&format!("/v2.0/ports/{}", id(other))).await;
        assert_eq!(status.body["port"]["status"], "DOWN", "{}", status.body);
    }
    remote
        .report_status(Reported::FloatingIp, &id(&elsewhere), true)
        .await
        .unwrap();

    // It speaks for itself only.
    let impostor = RemoteNetwork::new(client.clone(), "host-3");
    refused_report(impostor.desired().await.map(drop), 403);
    refused_report(impostor.heartbeat(Some("192.0.2.7")).await, 403);

    // Its tunnel address must be its own: not another host's, not loopback or multicast.
    let pool = cloud.database().await.unwrap();
    let now = onestack_db::now_micros();
    onestack_network::desired::heartbeat(&pool, "host-9", Some("192.0.2.9"), now)
        .await
        .unwrap();
    pool.close().await;
    for taken in ["192.0.2.9", "127.0.0.1", "0.0.0.0", "239.1.1.1"] {
        refused_report(remote.heartbeat(Some(taken)).await, 400);
    }

    // Its heartbeat lists it among the network agents, with its tunnel address.
    remote.heartbeat(Some("192.0.2.2")).await.unwrap();
    let agents = neutron
        .get("/v2.0/agents?agent_type=Linux%20bridge%20agent")
        .await;
    let agent = agents.body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["host"] == HOST)
        .unwrap_or_else(|| panic!("{HOST} in {}", agents.body))
        .clone();
    assert_eq!(agent["alive"], true, "{agent}");
    assert_eq!(
        agent["configurations"]["tunneling_ip"], "192.0.2.2",
        "{agent}"
    );
}
