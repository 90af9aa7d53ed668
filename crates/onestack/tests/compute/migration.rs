//! Cold migration between a controller and a joined host (fake driver, the agent protocol
//! in between): the old host hands the disk over through the controller and keeps its copy
//! until the move is confirmed; a revert restarts that copy. Only admins migrate; a move to
//! the same or an unknown host, a bad body or a host that is down is refused.

use std::time::Duration;

use onestack_agent::control::client::{ControlClient, ControlError};
use onestack_virt::Driver;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::joining::{join_token, joined_host_as, service, wait_state};
use super::{Client, env};
use crate::common::{Cloud, test_config};

const HOST: &str = "host-m";

/// What a hypervisor says it carries: (running guests, memory used, reserved included).
async fn carried(admin: &Client<'_>, host: &str) -> (u64, u64) {
    let listed = admin.get("/os-hypervisors/detail").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let h = listed.body["hypervisors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hypervisor_hostname"] == host)
        .cloned()
        .unwrap_or_else(|| panic!("no hypervisor {host}"));
    (
        h["running_vms"].as_u64().unwrap(),
        h["memory_mb_used"].as_u64().unwrap(),
    )
}

/// Joins HOST (fake driver, its agent in this process) to the cloud and waits until it is
/// up; returns its credential and its agent's task.
async fn join_fake_host(
    cloud: &Cloud,
    admin: &Client<'_>,
) -> (String, tokio::task::JoinHandle<Result<(), ControlError>>) {
    let token = join_token(cloud, Duration::from_secs(60)).await;
    let joined = ControlClient::new(&cloud.url)
        .join(&token, HOST)
        .await
        .expect("the host joins");
    let agent = joined_host_as(cloud, HOST, "192.0.2.7", &joined.credential);
    let running = tokio::spawn(async move { agent.run(Driver::fake()).await });
    wait_state(admin, HOST, "up", Duration::from_secs(10)).await;
    (joined.credential, running)
}

/// The names of the server's instance actions, newest first.
async fn action_names(admin: &Client<'_>, id: &str) -> Vec<String> {
    let actions = admin
        .get(&format!("/servers/{id}/os-instance-actions"))
        .await;
    actions.body["instanceActions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_server_migrates_to_another_host_and_back_confirmed_or_reverted() {
    let cloud = Cloud::start_with(|c| {
        c.compute.report_interval = 1;
        c.compute.service_down_time = 3;
    })
    .await;
    let e = env(&cloud).await;
    let admin = &e.admin;
    let controller = test_config(&cloud.data_dir).network.host_name();
    let (_, running) = join_fake_host(&cloud, admin).await;

    // What each host's hypervisor shows used with no server (the host's reserved memory).
    let idle = (
        carried(admin, &controller).await.1,
        carried(admin, HOST).await.1,
    );
    let image = admin.image("cirros", json!({"visibility": "public"})).await;
    let id = e
        .alice
        .boot_active("mover", &image, json!({"networks": "none"}))
        .await;
    // Wherever the scheduler put it, it moves between the two hosts.
    let first = admin.server(&id).await["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_owned();
    let (second, idle_first, idle_second) = if first == HOST {
        (controller.clone(), idle.1, idle.0)
    } else {
        (HOST.to_owned(), idle.0, idle.1)
    };
    let migrate = |body: Value, version: &'static str| {
        let path = format!("/servers/{id}/action");
        async move {
            admin
                .at(version)
                .post(&path, json!({ "migrate": body }))
                .await
        }
    };
    let act = |body: Value| {
        let path = format!("/servers/{id}/action");
        async move { admin.post(&path, body).await }
    };

    // Admins only; a same, unknown or malformed target is refused and changes nothing.
    let by_member = e
        .alice
        .post(&format!("/servers/{id}/action"), json!({"migrate": null}))
        .await;
    assert_eq!(
        by_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_member.body
    );
    for (body, version, status) in [
        (json!({"host": first}), "2.56", StatusCode::BAD_REQUEST),
        (json!({"host": "nowhere"}), "2.56", StatusCode::BAD_REQUEST),
        (json!({"host": 5}), "2.56", StatusCode::BAD_REQUEST),
        (json!({"host": ""}), "2.56", StatusCode::BAD_REQUEST),
        (json!({"colour": "red"}), "2.56", StatusCode::BAD_REQUEST),
        (json!("somewhere"), "2.56", StatusCode::BAD_REQUEST),
    ] {
        let refused = migrate(body.clone(), version).await;
        assert_eq!(
            refused.status, status,
            "{body} at {version}: {}",
            refused.body
        );
    }
    let shown = admin.server(&id).await;
    assert_eq!(shown["OS-EXT-SRV-ATTR:host"], first.as_str(), "{shown}");
    assert_eq!(shown["status"], "ACTIVE", "{shown}");

    // Before 2.56 the body says nothing more: the scheduler picks the other host.
    let asked = migrate(json!({"host": first}), "2.55").await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let moved = admin.wait_status(&id, "VERIFY_RESIZE").await;
    assert_eq!(moved["OS-EXT-SRV-ATTR:host"], second.as_str(), "{moved}");
    assert_eq!(moved["OS-EXT-STS:power_state"], 1, "{moved}");
    // Until confirmed, the host it left keeps its copy and the room for it.
    assert_eq!(carried(admin, &first).await, (0, idle_first + 512));
    assert_eq!(carried(admin, &second).await, (1, idle_second + 512));
    let confirmed = act(json!({"confirmResize": null})).await;
    assert_eq!(
        confirmed.status,
        StatusCode::NO_CONTENT,
        "{}",
        confirmed.body
    );
    let settled = admin.wait_status(&id, "ACTIVE").await;
    assert_eq!(settled["OS-EXT-SRV-ATTR:host"], second.as_str());
    assert_eq!(carried(admin, &first).await, (0, idle_first));

    // Back to the first host by name (2.56), then reverted: it runs on the second host
    // again, and the first lets go of it.
    let asked = migrate(json!({"host": first}), "2.56").await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let moved = admin.wait_status(&id, "VERIFY_RESIZE").await;
    assert_eq!(moved["OS-EXT-SRV-ATTR:host"], first.as_str(), "{moved}");
    let again = migrate(Value::Null, "2.56").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let reverted = act(json!({"revertResize": null})).await;
    assert_eq!(reverted.status, StatusCode::ACCEPTED, "{}", reverted.body);
    let back = admin.wait_status(&id, "ACTIVE").await;
    assert_eq!(back["OS-EXT-SRV-ATTR:host"], second.as_str(), "{back}");
    assert_eq!(back["OS-EXT-STS:power_state"], 1, "{back}");
    assert_eq!(carried(admin, &first).await, (0, idle_first));
    assert_eq!(carried(admin, &second).await, (1, idle_second + 512));

    // A stopped server moves stopped.
    let stopped = act(json!({"os-stop": null})).await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.body);
    admin.wait_status(&id, "SHUTOFF").await;
    let asked = migrate(Value::Null, "2.1").await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let moved = admin.wait_status(&id, "VERIFY_RESIZE").await;
    assert_eq!(moved["OS-EXT-SRV-ATTR:host"], first.as_str(), "{moved}");
    assert_eq!(moved["OS-EXT-STS:power_state"], 4, "{moved}");
    let confirmed = act(json!({"confirmResize": null})).await;
    assert_eq!(
        confirmed.status,
        StatusCode::NO_CONTENT,
        "{}",
        confirmed.body
    );
    admin.wait_status(&id, "SHUTOFF").await;

    // Each move shows in the server's actions.
    let names = action_names(admin, &id).await;
    assert_eq!(
        names.iter().filter(|a| *a == "migrate").count(),
        3,
        "{names:?}"
    );
    assert!(
        ["confirmResize", "revertResize"]
            .iter()
            .all(|action| names.iter().any(|n| n == action)),
        "{names:?}"
    );

    // A host that is down cannot hand a server over.
    let stranded = admin
        .at("2.37")
        .boot_active(
            "stranded",
            &image,
            json!({"networks": "none", "availability_zone": format!("nova:{HOST}")}),
        )
        .await;
    running.abort();
    wait_state(admin, HOST, "down", Duration::from_secs(6)).await;
    let refused = admin
        .post(
            &format!("/servers/{stranded}/action"),
            json!({"migrate": null}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.to_string().contains("Evacuate"),
        "says what to do instead: {}",
        refused.body
    );
    assert!(service(admin, HOST).await.is_some());
}

/// Live migration (fake driver): the new host listens, the old one sends, and the server is
/// placed on the new host without ever stopping; only admins ask, for a running or paused
/// server, with Nova's body at each microversion.
#[tokio::test]
async fn a_server_live_migrates_to_another_host_and_back() {
    let cloud = Cloud::start_with(|c| {
        c.compute.report_interval = 1;
        c.compute.service_down_time = 3;
        // Where the other host's QEMU would reach this one's (the fake listens nowhere).
        c.network.local_ip = "192.0.2.1".into();
    })
    .await;
    let e = env(&cloud).await;
    let admin = &e.admin;
    let controller = test_config(&cloud.data_dir).network.host_name();
    let (credential, running) = join_fake_host(&cloud, admin).await;

    let image = admin.image("cirros", json!({"visibility": "public"})).await;
    let id = e
        .alice
        .boot_active("walker", &image, json!({"networks": "none"}))
        .await;
    // Wherever the scheduler put it, it moves between the two hosts.
    let first = admin.server(&id).await["OS-EXT-SRV-ATTR:host"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = if first == HOST {
        controller.clone()
    } else {
        HOST.to_owned()
    };
    let live = |body: Value, version: &'static str| {
        let path = format!("/servers/{id}/action");
        async move {
            admin
                .at(version)
                .post(&path, json!({ "os-migrateLive": body }))
                .await
        }
    };

    let by_member = e
        .alice
        .post(
            &format!("/servers/{id}/action"),
            json!({"os-migrateLive": {"host": null, "block_migration": false, "disk_over_commit": false}}),
        )
        .await;
    assert_eq!(
        by_member.status,
        StatusCode::FORBIDDEN,
        "{}",
        by_member.body
    );
    for (body, version) in [
        (json!({"host": first, "block_migration": "auto"}), "2.30"),
        (
            json!({"host": "nowhere", "block_migration": "auto"}),
            "2.30",
        ),
        (json!({"host": null}), "2.30"),
        (json!({"block_migration": true}), "2.30"),
        (json!({"host": null, "block_migration": "auto"}), "2.24"),
        (json!({"host": null, "block_migration": false}), "2.24"),
        (
            json!({"host": null, "block_migration": "sometimes"}),
            "2.30",
        ),
        (json!({"host": "", "block_migration": true}), "2.30"),
        (
            json!({"host": null, "block_migration": true, "force": "x"}),
            "2.30",
        ),
        (
            json!({"host": null, "block_migration": true, "force": true}),
            "2.68",
        ),
        (
            json!({"host": null, "block_migration": true, "colour": 1}),
            "2.30",
        ),
        (json!("elsewhere"), "2.30"),
    ] {
        let refused = live(body.clone(), version).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body} at {version}: {}",
            refused.body
        );
    }
    let shown = admin.server(&id).await;
    assert_eq!(shown["OS-EXT-SRV-ATTR:host"], first.as_str(), "{shown}");
    assert_eq!(shown["status"], "ACTIVE", "{shown}");

    // The scheduler's pick (the other host), with the body the CLI sends before 2.25.
    let asked = live(
        json!({"host": null, "block_migration": false, "disk_over_commit": false}),
        "2.1",
    )
    .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let moved = admin.wait_host(&id, &second).await;
    assert_eq!(moved["status"], "ACTIVE", "{moved}");
    assert_eq!(moved["OS-EXT-STS:power_state"], 1, "{moved}");
    assert_eq!(moved["OS-EXT-STS:task_state"], Value::Null, "{moved}");

    // A paused server moves paused, by name (2.30 with force, which changes nothing).
    let paused = admin
        .post(&format!("/servers/{id}/action"), json!({"pause": null}))
        .await;
    assert_eq!(paused.status, StatusCode::ACCEPTED, "{}", paused.body);
    admin.wait_status(&id, "PAUSED").await;
    let asked = live(
        json!({"host": first, "block_migration": "auto", "force": false}),
        "2.30",
    )
    .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let back = admin.wait_host(&id, &first).await;
    assert_eq!(back["status"], "PAUSED", "{back}");

    // A stopped server does not move live.
    let unpaused = admin
        .post(&format!("/servers/{id}/action"), json!({"unpause": null}))
        .await;
    assert_eq!(unpaused.status, StatusCode::ACCEPTED, "{}", unpaused.body);
    admin.wait_status(&id, "ACTIVE").await;
    let stopped = admin
        .post(&format!("/servers/{id}/action"), json!({"os-stop": null}))
        .await;
    assert_eq!(stopped.status, StatusCode::ACCEPTED, "{}", stopped.body);
    admin.wait_status(&id, "SHUTOFF").await;
    let refused = live(json!({"host": null, "block_migration": "auto"}), "2.30").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);

    // A host's word on a live migration counts only for one under way, to or from that
    // host, and only for the host its credential is.
    let http = reqwest::Client::new();
    let step = |host: &str, body: Value| {
        let url = format!(
            "{}/agent/v1/hosts/{host}/servers/{id}/live-migration",
            cloud.url
        );
        http.put(url).bearer_auth(&credential).json(&body).send()
    };
    let sent = json!({"migration_id": onestack_db::ids::uuid(), "step": "sent"});
    let on_host = if first == HOST {
        first.as_str()
    } else {
        second.as_str()
    };
    let answer = step(on_host, sent.clone()).await.unwrap();
    assert!(
        matches!(
            answer.status(),
            StatusCode::CONFLICT | StatusCode::NOT_FOUND
        ),
        "no live migration under way: {}",
        answer.status()
    );
    let answer = step(&controller, sent).await.unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::FORBIDDEN,
        "another host's word"
    );
    let shown = admin.server(&id).await;
    assert_eq!(shown["status"], "SHUTOFF", "{shown}");

    // os-resetState ends any move: here a cold one awaiting its confirm. The server stays
    // where it is placed, and the host it left lets go of its room.
    let ram = admin.at("2.47").get(&format!("/servers/{id}")).await.body["server"]["flavor"]["ram"]
        .as_u64()
        .unwrap();
    let leaving = shown["OS-EXT-SRV-ATTR:host"].as_str().unwrap().to_owned();
    let held_before = carried(admin, &leaving).await.1;
    let asked = admin
        .post(&format!("/servers/{id}/action"), json!({"migrate": null}))
        .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let moved = admin.wait_status(&id, "VERIFY_RESIZE").await;
    assert_ne!(moved["OS-EXT-SRV-ATTR:host"], leaving.as_str(), "{moved}");
    assert_eq!(carried(admin, &leaving).await.1, held_before);
    let reset = admin
        .post(
            &format!("/servers/{id}/action"),
            json!({"os-resetState": {"state": "active"}}),
        )
        .await;
    assert_eq!(reset.status, StatusCode::ACCEPTED, "{}", reset.body);
    assert_eq!(carried(admin, &leaving).await.1, held_before - ram);

    let names = action_names(admin, &id).await;
    assert_eq!(
        names.iter().filter(|a| *a == "live-migration").count(),
        2,
        "{names:?}"
    );
    running.abort();
}
