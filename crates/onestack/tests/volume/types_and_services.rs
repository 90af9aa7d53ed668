//! Private volume types shared with projects (`os-volume-type-access`), snapshot metadata,
//! and what admins see of the service itself (`os-services`, the scheduler's pools).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{available, call, get, post, wait_for_reply};
use crate::common::Cloud;
use crate::compute;

fn names(body: &Value) -> Vec<String> {
    body["volume_types"]
        .as_array()
        .map(|types| {
            types
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn private_types_are_shared_with_projects() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let private = post(
        &env.admin,
        "/types",
        json!({"volume_type": {"name": "hidden", "os-volume-type-access:is_public": false}}),
    )
    .await;
    assert_eq!(private.status, StatusCode::OK, "{}", private.body);
    let hidden = private.id("volume_type");
    let access = format!("/types/{hidden}/os-volume-type-access");
    let action = format!("/types/{hidden}/action");
    let share = |project: &str| json!({"addProjectAccess": {"project": project}});

    // Unshared, a project neither sees nor uses it (404, as for a type that is not there).
    let unseen = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": "hidden"}}),
    )
    .await;
    assert_eq!(unseen.status, StatusCode::NOT_FOUND, "{}", unseen.body);
    assert_eq!(
        get(&env.admin, &access).await.body["volume_type_access"],
        json!([])
    );

    // Shared with alice's project: she sees and uses it; bob does not.
    let refused = post(&env.alice, &action, share(&env.alice_project)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let shared = post(&env.admin, &action, share(&env.alice_project)).await;
    assert_eq!(shared.status, StatusCode::ACCEPTED, "{}", shared.body);
    let twice = post(&env.admin, &action, share(&env.alice_project)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT, "{}", twice.body);
    assert_eq!(
        get(&env.admin, &access).await.body["volume_type_access"],
        json!([{"volume_type_id": hidden, "project_id": env.alice_project}])
    );
    assert!(names(&get(&env.alice, "/types").await.body).contains(&"hidden".to_owned()));
    assert!(!names(&get(&env.bob, "/types").await.body).contains(&"hidden".to_owned()));
    assert_eq!(
        get(&env.bob, &format!("/types/{hidden}")).await.status,
        StatusCode::NOT_FOUND
    );
    let made = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": "hidden"}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    available(&env.alice, &made.id("volume")).await;
    let bobs = post(
        &env.bob,
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": "hidden"}}),
    )
    .await;
    assert_eq!(bobs.status, StatusCode::NOT_FOUND, "{}", bobs.body);

    // An admin's listing: public types by default, private ones or all on request.
    let public = names(&get(&env.admin, "/types").await.body);
    assert!(!public.contains(&"hidden".to_owned()), "{public:?}");
    let private_only = names(&get(&env.admin, "/types?is_public=false").await.body);
    assert_eq!(private_only, ["hidden"]);
    let all = names(&get(&env.admin, "/types?is_public=none").await.body);
    assert!(all.contains(&"hidden".to_owned()) && all.contains(&"__DEFAULT__".to_owned()));
    let bad = get(&env.admin, "/types?is_public=maybe").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);

    // Unshared again; a public type has no access list.
    let unshare = json!({"removeProjectAccess": {"project": env.alice_project}});
    let removed = post(&env.admin, &action, unshare.clone()).await;
    assert_eq!(removed.status, StatusCode::ACCEPTED, "{}", removed.body);
    let gone = post(&env.admin, &action, unshare).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    assert!(!names(&get(&env.alice, "/types").await.body).contains(&"hidden".to_owned()));
    let default = get(&env.admin, "/types/default").await.id("volume_type");
    let public_list = get(
        &env.admin,
        &format!("/types/{default}/os-volume-type-access"),
    )
    .await;
    assert_eq!(
        public_list.status,
        StatusCode::NOT_FOUND,
        "{}",
        public_list.body
    );
    let public_share = post(
        &env.admin,
        &format!("/types/{default}/action"),
        share(&env.alice_project),
    )
    .await;
    assert_eq!(
        public_share.status,
        StatusCode::BAD_REQUEST,
        "{}",
        public_share.body
    );
    for bad in [
        json!({"addProjectAccess": {}}),
        json!({"bogus": {"project": "p"}}),
        json!([]),
    ] {
        let reply = post(&env.admin, &action, bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn snapshots_keep_metadata_of_their_own() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let volume = post(&env.alice, "/volumes", json!({"volume": {"size": 1}}))
        .await
        .id("volume");
    available(&env.alice, &volume).await;
    let snapshot = post(
        &env.alice,
        "/snapshots",
        json!({"snapshot": {"volume_id": volume, "metadata": {"a": "1"}}}),
    )
    .await
    .id("snapshot");
    let path = format!("/snapshots/{snapshot}/metadata");
    wait_for_reply(
        &env.alice,
        &format!("/snapshots/{snapshot}"),
        "available",
        |r| r.body["snapshot"]["status"] == "available",
    )
    .await;
    assert_eq!(
        get(&env.alice, &path).await.body,
        json!({"metadata": {"a": "1"}})
    );
    let merged = post(&env.alice, &path, json!({"metadata": {"b": "2"}})).await;
    assert_eq!(merged.body, json!({"metadata": {"a": "1", "b": "2"}}));
    let replaced = call(
        &env.alice,
        Method::PUT,
        &path,
        None,
        Some(json!({"metadata": {"c": "3"}})),
    )
    .await;
    assert_eq!(replaced.body, json!({"metadata": {"c": "3"}}));
    let item = call(
        &env.alice,
        Method::PUT,
        &format!("{path}/d"),
        None,
        Some(json!({"meta": {"d": "4"}})),
    )
    .await;
    assert_eq!(item.body, json!({"meta": {"d": "4"}}));
    assert_eq!(
        get(&env.alice, &format!("{path}/d")).await.body,
        json!({"meta": {"d": "4"}})
    );
    let shown = get(&env.alice, &format!("/snapshots/{snapshot}")).await;
    assert_eq!(
        shown.body["snapshot"]["metadata"],
        json!({"c": "3", "d": "4"})
    );
    let deleted = call(&env.alice, Method::DELETE, &format!("{path}/c"), None, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let missing = call(&env.alice, Method::DELETE, &format!("{path}/c"), None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    // Bad input and another project change nothing.
    let mismatch = call(
        &env.alice,
        Method::PUT,
        &format!("{path}/x"),
        None,
        Some(json!({"meta": {"y": "1"}})),
    )
    .await;
    assert_eq!(
        mismatch.status,
        StatusCode::BAD_REQUEST,
        "{}",
        mismatch.body
    );
    let not_strings = post(&env.alice, &path, json!({"metadata": {"n": 1}})).await;
    assert_eq!(
        not_strings.status,
        StatusCode::BAD_REQUEST,
        "{}",
        not_strings.body
    );
    let bobs = post(&env.bob, &path, json!({"metadata": {"evil": "1"}})).await;
    assert_eq!(bobs.status, StatusCode::NOT_FOUND, "{}", bobs.body);
    assert_eq!(get(&env.bob, &path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&env.alice, &path).await.body,
        json!({"metadata": {"d": "4"}})
    );
}

#[tokio::test]
async fn admins_see_the_services_and_the_pool() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let volume = post(&env.alice, "/volumes", json!({"volume": {"size": 3}}))
        .await
        .id("volume");
    available(&env.alice, &volume).await;
    // The agent reports after each pass: the volume's pass is followed by a report.
    let services = wait_for_reply(&env.admin, "/os-services", "the services up", |r| {
        r.body["services"]
            .as_array()
            .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["state"] == "up"))
    })
    .await;
    let binaries: Vec<&str> = services.body["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["binary"].as_str())
        .collect();
    assert_eq!(binaries, ["cinder-volume", "cinder-backup"]);
    assert_eq!(services.body["services"][0]["zone"], "nova");
    assert!(services.body["services"][0]["updated_at"].is_string());

    let pools = get(&env.admin, "/scheduler-stats/get_pools?detail=true").await;
    assert_eq!(pools.status, StatusCode::OK, "{}", pools.body);
    let pool = &pools.body["pools"][0];
    assert!(
        pool["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("@file#file")),
        "{pool}"
    );
    let caps = &pool["capabilities"];
    assert!(
        caps["total_capacity_gb"].as_f64().is_some_and(|t| t > 0.0),
        "{caps}"
    );
    assert!(caps["free_capacity_gb"].as_f64() <= caps["total_capacity_gb"].as_f64());
    assert_eq!(caps["allocated_capacity_gb"], 3);
    let names_only = get(&env.admin, "/scheduler-stats/get_pools").await;
    assert!(names_only.body["pools"][0].get("capabilities").is_none());

    // The backend's capabilities, by the volume service's host.
    let host = services.body["services"][0]["host"]
        .as_str()
        .unwrap()
        .to_owned();
    let caps = get(&env.admin, &format!("/capabilities/{host}")).await;
    assert_eq!(caps.status, StatusCode::OK, "{}", caps.body);
    assert_eq!(caps.body["volume_backend_name"], "file");
    assert_eq!(caps.body["properties"]["multiattach"]["type"], "boolean");
    let nowhere = get(&env.admin, "/capabilities/elsewhere@lvm").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND, "{}", nowhere.body);

    let capabilities = format!("/capabilities/{host}");
    for path in [
        "/os-services",
        "/scheduler-stats/get_pools",
        capabilities.as_str(),
    ] {
        let member = get(&env.alice, path).await;
        assert_eq!(
            member.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            member.body
        );
    }
}
