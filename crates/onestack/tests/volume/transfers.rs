//! Volume transfers: a project offers a volume, another takes it with the key (snapshots
//! along), a wrong key or a full quota takes nothing, and a withdrawn offer gives the volume
//! back.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{available, call, get, post, snapshot_available};
use crate::common::Cloud;
use crate::compute;

#[tokio::test]
async fn volumes_move_between_projects_with_the_key() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let (alice, bob) = (&env.alice, &env.bob);
    let volume = post(
        alice,
        "/volumes",
        json!({"volume": {"size": 1, "name": "gift"}}),
    )
    .await
    .id("volume");
    available(alice, &volume).await;
    let snapshot = post(
        alice,
        "/snapshots",
        json!({"snapshot": {"volume_id": volume}}),
    )
    .await
    .id("snapshot");
    snapshot_available(alice, &snapshot).await;

    // Snapshots left behind would be alice's data on bob's volume.
    let without = call(
        alice,
        Method::POST,
        "/volume-transfers",
        Some("3.55"),
        Some(json!({"transfer": {"volume_id": volume, "no_snapshots": true}})),
    )
    .await;
    assert_eq!(without.status, StatusCode::BAD_REQUEST, "{}", without.body);
    let offered = post(
        alice,
        "/os-volume-transfer",
        json!({"transfer": {"volume_id": volume, "name": "to-bob"}}),
    )
    .await;
    assert_eq!(offered.status, StatusCode::ACCEPTED, "{}", offered.body);
    let transfer = offered.id("transfer");
    let key = offered.body["transfer"]["auth_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 16);
    let shown = get(alice, &format!("/volumes/{volume}")).await;
    assert_eq!(shown.body["volume"]["status"], "awaiting-transfer");
    let listed = get(alice, "/os-volume-transfer/detail").await;
    assert_eq!(listed.body["transfers"][0]["id"], transfer.as_str());
    assert!(listed.body["transfers"][0].get("auth_key").is_none());
    // The offer is the giver's to see; the volume cannot be deleted meanwhile.
    let peek = get(bob, &format!("/os-volume-transfer/{transfer}")).await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND, "{}", peek.body);
    let gone = call(
        alice,
        Method::DELETE,
        &format!("/volumes/{volume}"),
        None,
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::BAD_REQUEST, "{}", gone.body);

    // A wrong key, or a quota that cannot hold it: nothing moves.
    let accept = format!("/os-volume-transfer/{transfer}/accept");
    let wrong = post(
        bob,
        &accept,
        json!({"accept": {"auth_key": "0000000000000000"}}),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    let quota = format!("/os-quota-sets/{}", env.bob_project);
    let set = |limit: i64| json!({"quota_set": {"volumes": limit}});
    let full = call(&env.admin, Method::PUT, &quota, None, Some(set(0))).await;
    assert_eq!(full.status, StatusCode::OK, "{}", full.body);
    let refused = post(bob, &accept, json!({"accept": {"auth_key": key}})).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        refused.body
    );
    assert_eq!(
        get(alice, &format!("/volumes/{volume}")).await.body["volume"]["status"],
        "awaiting-transfer"
    );
    call(&env.admin, Method::PUT, &quota, None, Some(set(10))).await;

    // The key: the volume and its snapshot are bob's now.
    let taken = post(bob, &accept, json!({"accept": {"auth_key": key}})).await;
    assert_eq!(taken.status, StatusCode::ACCEPTED, "{}", taken.body);
    assert_eq!(taken.body["transfer"]["volume_id"], volume.as_str());
    let mine = available(bob, &volume).await;
    assert_eq!(mine["user_id"], env.bob_user.as_str());
    assert_eq!(
        get(alice, &format!("/volumes/{volume}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(bob, &format!("/snapshots/{snapshot}")).await.status,
        StatusCode::OK
    );
    let again = post(bob, &accept, json!({"accept": {"auth_key": key}})).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.body);

    // A withdrawn offer gives the volume back; a volume that is not available is not offered.
    let offered = post(
        bob,
        "/volume-transfers",
        json!({"transfer": {"volume_id": volume}}),
    )
    .await;
    assert_eq!(offered.status, StatusCode::ACCEPTED, "{}", offered.body);
    let second = post(
        bob,
        "/volume-transfers",
        json!({"transfer": {"volume_id": volume}}),
    )
    .await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.body);
    let withdrawn = call(
        bob,
        Method::DELETE,
        &format!("/volume-transfers/{}", offered.id("transfer")),
        None,
        None,
    )
    .await;
    assert_eq!(withdrawn.status, StatusCode::ACCEPTED, "{}", withdrawn.body);
    available(bob, &volume).await;
    let foreign = post(
        alice,
        "/os-volume-transfer",
        json!({"transfer": {"volume_id": volume}}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
}
