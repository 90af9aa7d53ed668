//! Two controllers on one database (two API processes with caches and pools of their own,
//! as on two hosts): boots racing from both onto one nearly full host never overcommit it,
//! and (on PostgreSQL) a token revoked or a user disabled through one is refused by the
//! other at once.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::Cloud;
use crate::compute::{Client, env};

/// The one host's vCPUs (allocation ratio 1), and how many of them are taken first.
const HOST_VCPUS: u64 = 4;
const TAKEN_FIRST: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boots_from_two_controllers_never_overcommit_one_host() {
    let cloud = Cloud::start_with(|c| {
        c.compute.vcpus = HOST_VCPUS;
        c.compute.cpu_allocation_ratio = 1.0;
    })
    .await;
    let e = env(&cloud).await;
    let (admin, alice) = (&e.admin, &e.alice);
    let unlimited = admin
        .put(
            &format!("/os-quota-sets/{}", e.alice_project),
            json!({"quota_set": {"instances": -1, "cores": -1, "ram": -1}}),
        )
        .await;
    assert_eq!(unlimited.status, StatusCode::OK, "{}", unlimited.body);
    let image = alice.image("cirros", json!({})).await;
    for i in 0..TAKEN_FIRST {
        alice
            .boot_active(&format!("first-{i}"), &image, json!({"networks": "none"}))
            .await;
    }

    let second = cloud.second_controller().await;
    let (_, token) = alice.parts();
    let alice_there = Client::new(&second, token).at("2.37");
    let alice_here = alice.at("2.37");
    let body = json!({"server": {"name": "race", "imageRef": image, "flavorRef": "1",
                                 "networks": "none"}});
    let replies = join_all((0..16).map(|i| {
        let client = if i % 2 == 0 {
            &alice_here
        } else {
            &alice_there
        };
        client.send(Method::POST, "/compute/v2.1/servers", Some(body.clone()))
    }))
    .await;
    let mut placed = 0;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        let id = reply.body["server"]["id"].as_str().unwrap();
        let server = alice.wait_for(id, "built or refused", |s| {
            s["status"] == "ACTIVE" || s["status"] == "ERROR"
        });
        if server.await["status"] == "ACTIVE" {
            placed += 1;
        }
    }
    let room = HOST_VCPUS as usize - TAKEN_FIRST;
    assert_eq!(placed, room, "exactly the free vCPUs were taken");
    for answering in [admin.clone(), Client::new(&second, admin.parts().1)] {
        let hypervisors = answering.get("/os-hypervisors/detail").await;
        assert_eq!(hypervisors.status, StatusCode::OK, "{}", hypervisors.body);
        assert_eq!(
            hypervisors.body["hypervisors"][0]["vcpus_used"],
            json!(HOST_VCPUS),
            "{}",
            hypervisors.body
        );
    }
}

/// Controllers share a database only on PostgreSQL (a SQLite database belongs to one
/// process, whose cache every write clears): this runs in `make test`'s PostgreSQL pass.
#[tokio::test]
async fn a_token_revoked_through_one_controller_is_refused_by_the_other() {
    let cloud = Cloud::start().await;
    if !cloud.on_postgres() {
        eprintln!("two controllers share a database only on PostgreSQL: nothing to check here");
        return;
    }
    let admin = cloud.admin_token().await;
    cloud.tenant(&admin, "alice", "pw-alice", "member").await;
    let (_, bob) = cloud.tenant(&admin, "bob", "pw-bob", "member").await;
    let second = cloud.second_controller().await;
    let alice_token = cloud.token("alice", "pw-alice", "alice").await;
    let bob_token = cloud.token("bob", "pw-bob", "bob").await;
    // Both tokens are good there, and now in its cache.
    for token in [&alice_token, &bob_token] {
        let reply = Client::new(&second, token).get("/servers").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    let revoked = cloud
        .subject(Method::DELETE, Some(&admin), &alice_token)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    let disabled = cloud
        .patch(
            &format!("/users/{bob}"),
            &admin,
            json!({"user": {"enabled": false}}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);

    for token in [&alice_token, &bob_token] {
        let reply = Client::new(&second, token).get("/servers").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
}
