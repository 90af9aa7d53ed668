//! Volume backups: whole and incremental copies in the backup store, restored into new
//! volumes and over existing ones with the bytes of their point in time, deleted in the
//! order incremental backups allow; and what the API refuses.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::Path;

use super::{available, backing_of, call, file_of, get, post, wait_for_reply};
use crate::common::Cloud;
use crate::compute::{self, Client};

async fn backup_status(client: &Client<'_>, id: &str, status: &str) -> Value {
    let path = format!("/backups/{id}");
    wait_for_reply(client, &path, status, |r| {
        r.body["backup"]["status"] == status
    })
    .await
    .body["backup"]
        .clone()
}

/// Writes `pattern` over the 64 KiB at `offset` of a volume's file.
fn write_pattern(file: &Path, pattern: u8, offset: u64) {
    crate::common::run_ok(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            &format!("write -P {pattern} {offset} 64k"),
            file.to_str().unwrap(),
        ],
    );
}

/// Whether the 64 KiB at `offset` of a volume's file all hold `pattern`.
fn holds(file: &Path, pattern: u8, offset: u64) -> bool {
    let out = crate::common::run(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-r",
            "-c",
            &format!("read -P {pattern} {offset} 64k"),
            file.to_str().unwrap(),
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success() && !said.contains("verification failed")
}

/// The bytes of data a qcow2 holds in its own layer (not read through its backing file).
fn own_data_bytes(file: &Path) -> u64 {
    let out = crate::common::run(
        "qemu-img",
        &[
            "map",
            "-U",
            "--output=json",
            "-f",
            "qcow2",
            file.to_str().unwrap(),
        ],
    );
    let extents: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    extents
        .iter()
        .filter(|e| e["depth"] == 0 && e["data"] == true)
        .map(|e| e["length"].as_u64().unwrap())
        .sum()
}

async fn back_up(client: &Client<'_>, volume: &str, incremental: bool) -> String {
    let made = post(
        client,
        "/backups",
        json!({"backup": {"volume_id": volume, "incremental": incremental, "name": "b"}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    assert_eq!(made.body["backup"]["name"], "b");
    let id = made.id("backup");
    backup_status(client, &id, "available").await;
    available(client, volume).await;
    id
}

#[tokio::test]
async fn backups_keep_points_in_time_whole_and_incremental() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let volume = post(
        alice,
        "/volumes",
        json!({"volume": {"size": 1, "name": "db"}}),
    )
    .await
    .id("volume");
    available(alice, &volume).await;
    let file = file_of(&cloud, &volume);
    write_pattern(&file, 0xa1, 0);

    // A whole backup, then an incremental one holding only what changed since.
    let full = back_up(alice, &volume, false).await;
    write_pattern(&file, 0xb2, 1 << 20);
    let incremental = back_up(alice, &volume, true).await;
    let store = cloud.data_dir.join("backups");
    let backup_file = |id: &str| store.join(format!("backup-{id}"));
    assert_eq!(
        backing_of(&backup_file(&incremental)).as_deref(),
        backup_file(&full).to_str()
    );
    // It holds the one cluster that changed, nothing of what its parent has.
    assert_eq!(own_data_bytes(&backup_file(&incremental)), 64 << 10);
    let shown = get(alice, &format!("/backups/{incremental}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let detail = &shown.body["backup"];
    assert_eq!(detail["is_incremental"], true);
    assert_eq!(detail["volume_id"], volume.as_str());
    assert_eq!(detail["size"], 1);
    assert!(
        detail.get("metadata").is_none(),
        "3.43 key at 3.0: {detail}"
    );
    let full_shown = get(alice, &format!("/backups/{full}")).await;
    assert_eq!(full_shown.body["backup"]["has_dependent_backups"], true);
    let listed = get(alice, "/backups/detail").await;
    assert_eq!(listed.body["backups"].as_array().unwrap().len(), 2);
    assert_eq!(listed.body["backups"][0]["id"], incremental.as_str());

    // Restored into a new volume: both patterns, as at the incremental backup.
    write_pattern(&file, 0xc3, 2 << 20);
    let restored = post(
        alice,
        &format!("/backups/{incremental}/restore"),
        json!({"restore": {"name": "copy"}}),
    )
    .await;
    assert_eq!(restored.status, StatusCode::ACCEPTED, "{}", restored.body);
    assert_eq!(restored.body["restore"]["backup_id"], incremental.as_str());
    assert_eq!(restored.body["restore"]["volume_name"], "copy");
    let copy = restored.body["restore"]["volume_id"]
        .as_str()
        .unwrap()
        .to_owned();
    available(alice, &copy).await;
    backup_status(alice, &incremental, "available").await;
    let copy_file = file_of(&cloud, &copy);
    assert!(holds(&copy_file, 0xa1, 0) && holds(&copy_file, 0xb2, 1 << 20));
    assert!(
        !holds(&copy_file, 0xc3, 2 << 20),
        "written after the backup"
    );

    // Restored over the volume itself: back to the whole backup's point in time.
    let over = post(
        alice,
        &format!("/backups/{full}/restore"),
        json!({"restore": {"volume_id": volume}}),
    )
    .await;
    assert_eq!(over.status, StatusCode::ACCEPTED, "{}", over.body);
    assert_eq!(over.body["restore"]["volume_id"], volume.as_str());
    available(alice, &volume).await;
    assert!(holds(&file, 0xa1, 0));
    assert!(!holds(&file, 0xb2, 1 << 20) && !holds(&file, 0xc3, 2 << 20));

    // The whole backup goes only after the incremental one on it.
    let early = call(
        alice,
        Method::DELETE,
        &format!("/backups/{full}"),
        None,
        None,
    )
    .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{}", early.body);
    for id in [&incremental, &full] {
        let gone = call(alice, Method::DELETE, &format!("/backups/{id}"), None, None).await;
        assert_eq!(gone.status, StatusCode::ACCEPTED, "{}", gone.body);
        wait_for_reply(alice, &format!("/backups/{id}"), "deleted", |r| {
            r.status == StatusCode::NOT_FOUND
        })
        .await;
        assert!(!backup_file(id).exists());
    }
}

#[tokio::test]
async fn backups_refuse_what_cannot_be_done() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let volume = post(alice, "/volumes", json!({"volume": {"size": 2}}))
        .await
        .id("volume");
    available(alice, &volume).await;
    let small = post(alice, "/volumes", json!({"volume": {"size": 1}}))
        .await
        .id("volume");
    available(alice, &small).await;
    for (body, why) in [
        (
            json!({"backup": {"volume_id": volume, "incremental": true}}),
            "no backup to build on",
        ),
        (json!({"backup": {}}), "no volume"),
        (
            json!({"backup": {"volume_id": volume, "bogus": 1}}),
            "unknown attribute",
        ),
        (
            json!({"backup": {"volume_id": volume, "incremental": "maybe"}}),
            "not a boolean",
        ),
    ] {
        let reply = post(alice, "/backups", body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            reply.body
        );
    }
    let missing = post(
        alice,
        "/backups",
        json!({"backup": {"volume_id": "5a1c7e2e-0000-4000-8000-00000000a11e"}}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    let backup = back_up(alice, &volume, false).await;
    let too_small = post(
        alice,
        &format!("/backups/{backup}/restore"),
        json!({"restore": {"volume_id": small}}),
    )
    .await;
    assert_eq!(
        too_small.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_small.body
    );
    available(alice, &small).await;

    // Another project sees nothing and restores nothing, nor onto another's volume.
    for (method, path, body) in [
        (Method::GET, format!("/backups/{backup}"), None),
        (Method::DELETE, format!("/backups/{backup}"), None),
        (
            Method::POST,
            format!("/backups/{backup}/restore"),
            Some(json!({"restore": {}})),
        ),
    ] {
        let reply = call(&env.bob, method.clone(), &path, None, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
    }
    let bobs = post(&env.bob, "/volumes", json!({"volume": {"size": 2}}))
        .await
        .id("volume");
    available(&env.bob, &bobs).await;
    let onto = post(
        alice,
        &format!("/backups/{backup}/restore"),
        json!({"restore": {"volume_id": bobs}}),
    )
    .await;
    assert_eq!(onto.status, StatusCode::NOT_FOUND, "{}", onto.body);
    assert_eq!(get(&env.bob, "/backups").await.body["backups"], json!([]));

    // Members cannot reset or force; updates need 3.9; the quota counts backups.
    let reset = post(
        alice,
        &format!("/backups/{backup}/action"),
        json!({"os-reset_status": {"status": "error"}}),
    )
    .await;
    assert_eq!(reset.status, StatusCode::FORBIDDEN, "{}", reset.body);
    let rename = json!({"backup": {"name": "renamed"}});
    let old = call(
        alice,
        Method::PUT,
        &format!("/backups/{backup}"),
        None,
        Some(rename.clone()),
    )
    .await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "{}", old.body);
    let renamed = call(
        alice,
        Method::PUT,
        &format!("/backups/{backup}"),
        Some("3.9"),
        Some(rename),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["backup"]["name"], "renamed");
    let quota = call(
        &env.admin,
        Method::PUT,
        &format!("/os-quota-sets/{}", env.alice_project),
        None,
        Some(json!({"quota_set": {"backups": 1}})),
    )
    .await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
    let over = post(alice, "/backups", json!({"backup": {"volume_id": volume}})).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.body);
    available(alice, &volume).await;
    let usage = get(
        alice,
        &format!("/os-quota-sets/{}?usage=true", env.alice_project),
    )
    .await;
    assert_eq!(
        usage.body["quota_set"]["backups"]["in_use"], 1,
        "{}",
        usage.body
    );
    assert_eq!(usage.body["quota_set"]["backup_gigabytes"]["in_use"], 2);
}
