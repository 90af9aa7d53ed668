//! Host aggregates (`os-aggregates`): admin-only CRUD and actions with Nova's answers, and
//! an aggregate's availability zone becoming its hosts' zone for the scheduler, the zone
//! listing and the services, never moving a host that has servers.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Client, assert_nova_error, env};
use crate::common::{Cloud, test_config};

async fn action(admin: &Client<'_>, id: i64, body: Value) -> crate::common::Reply {
    admin
        .post(&format!("/os-aggregates/{id}/action"), body)
        .await
}

#[tokio::test]
async fn aggregates_group_hosts_and_make_zones() {
    let cloud = Cloud::start().await;
    let e = env(&cloud).await;
    let (admin, alice) = (&e.admin.at("2.41"), &e.alice);
    let host = test_config(&cloud.data_dir).network.host_name();

    let created = admin
        .post(
            "/os-aggregates",
            json!({"aggregate": {"name": "rack-1", "availability_zone": "az-1"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let agg = &created.body["aggregate"];
    assert_eq!(agg["name"], "rack-1");
    assert_eq!(agg["availability_zone"], "az-1");
    assert!(
        agg.get("hosts").is_none() && agg.get("metadata").is_none(),
        "{agg}"
    );
    assert!(agg["uuid"].is_string());
    let id = agg["id"].as_i64().unwrap();

    // Refusals: a taken name, bad bodies, members, unknown ids and hosts.
    let taken = admin
        .post("/os-aggregates", json!({"aggregate": {"name": "rack-1"}}))
        .await;
    assert_nova_error(&taken, StatusCode::CONFLICT, "conflictingRequest");
    for bad in [
        json!({"aggregate": {}}),
        json!({"aggregate": {"name": ""}}),
        json!({"aggregate": {"name": " x"}}),
        json!({"aggregate": {"name": "x", "extra": 1}}),
        json!({"aggregate": {"name": 5}}),
    ] {
        let reply = admin.post("/os-aggregates", bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }
    assert_eq!(
        alice.get("/os-aggregates").await.status,
        StatusCode::FORBIDDEN
    );
    let unknown = admin.get("/os-aggregates/999").await;
    assert_nova_error(&unknown, StatusCode::NOT_FOUND, "itemNotFound");
    let no_host = action(admin, id, json!({"add_host": {"host": "nowhere"}})).await;
    assert_nova_error(&no_host, StatusCode::NOT_FOUND, "itemNotFound");
    for bad in [
        json!({"add_host": {}}),
        json!({"add_host": {"host": host, "x": 1}}),
        json!({"add_host": {"host": host}, "remove_host": {"host": host}}),
        json!({"set_metadata": {"metadata": {"k": 5}}}),
        json!({"dance": {}}),
    ] {
        let reply = action(admin, id, bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }

    // The host joins the aggregate, and its zone with it.
    let added = action(admin, id, json!({"add_host": {"host": host}})).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.body["aggregate"]["hosts"], json!([host]));
    let again = action(admin, id, json!({"add_host": {"host": host}})).await;
    assert_nova_error(&again, StatusCode::CONFLICT, "conflictingRequest");
    let zones = alice.get("/os-availability-zone").await;
    assert_eq!(
        zones.body["availabilityZoneInfo"][0]["zoneName"], "az-1",
        "{}",
        zones.body
    );
    let services = admin.get("/os-services").await;
    assert_eq!(services.body["services"][0]["zone"], "az-1");

    // A second zone for the same host is refused.
    let other = admin
        .post(
            "/os-aggregates",
            json!({"aggregate": {"name": "rack-2", "availability_zone": "az-2"}}),
        )
        .await;
    let other_id = other.body["aggregate"]["id"].as_i64().unwrap();
    let two_zones = action(admin, other_id, json!({"add_host": {"host": host}})).await;
    assert_nova_error(&two_zones, StatusCode::CONFLICT, "conflictingRequest");

    // Servers land in the zone they ask for; a zone without hosts is refused.
    let image = alice.image("cirros", json!({})).await;
    let elsewhere = alice
        .create_server(
            "x",
            &image,
            json!({"networks": "none", "availability_zone": "az-2"}),
        )
        .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::BAD_REQUEST,
        "{}",
        elsewhere.body
    );
    let placed = alice
        .boot_active(
            "in-az-1",
            &image,
            json!({"networks": "none", "availability_zone": "az-1"}),
        )
        .await;
    assert_eq!(
        alice.server(&placed).await["OS-EXT-AZ:availability_zone"],
        "az-1"
    );

    // A host with servers never changes zone; metadata without a zone is fine.
    let moved = action(
        admin,
        id,
        json!({"set_metadata": {"metadata": {"availability_zone": "az-9", "ssd": "yes"}}}),
    )
    .await;
    assert_nova_error(&moved, StatusCode::CONFLICT, "conflictingRequest");
    let tagged = action(
        admin,
        id,
        json!({"set_metadata": {"metadata": {"ssd": "yes"}}}),
    )
    .await;
    assert_eq!(tagged.status, StatusCode::OK, "{}", tagged.body);
    assert_eq!(
        tagged.body["aggregate"]["metadata"],
        json!({"availability_zone": "az-1", "ssd": "yes"})
    );
    let removed_key = action(
        admin,
        id,
        json!({"set_metadata": {"metadata": {"ssd": null}}}),
    )
    .await;
    assert_eq!(
        removed_key.body["aggregate"]["metadata"],
        json!({"availability_zone": "az-1"})
    );
    let busy = action(admin, id, json!({"remove_host": {"host": host}})).await;
    assert_nova_error(&busy, StatusCode::CONFLICT, "conflictingRequest");

    // Without servers the host leaves, and is back in its own zone.
    assert_eq!(
        alice.delete(&format!("/servers/{placed}")).await.status,
        StatusCode::NO_CONTENT
    );
    alice.wait_gone(&placed).await;
    let not_empty = admin.delete(&format!("/os-aggregates/{id}")).await;
    assert_nova_error(&not_empty, StatusCode::BAD_REQUEST, "badRequest");
    let removed = action(admin, id, json!({"remove_host": {"host": host}})).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let not_member = action(admin, id, json!({"remove_host": {"host": host}})).await;
    assert_nova_error(&not_member, StatusCode::NOT_FOUND, "itemNotFound");
    let services = admin.get("/os-services").await;
    assert_eq!(services.body["services"][0]["zone"], "nova");

    let renamed = admin
        .put(
            &format!("/os-aggregates/{id}"),
            json!({"aggregate": {"name": "rack-1b"}}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["aggregate"]["name"], "rack-1b");
    let empty_update = admin
        .put(&format!("/os-aggregates/{id}"), json!({"aggregate": {}}))
        .await;
    assert_eq!(empty_update.status, StatusCode::BAD_REQUEST);
    let listed = admin.get("/os-aggregates").await;
    assert_eq!(listed.body["aggregates"].as_array().unwrap().len(), 2);
    let deleted = admin.delete(&format!("/os-aggregates/{id}")).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        admin.get(&format!("/os-aggregates/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}
