//! Servers that boot from volumes, as Nova treats them: `createImage` snapshots their
//! volumes into an image without data, a server boots from that image onto new volumes,
//! rebuild keeps the volume's own image, rescue needs 2.87 and a stable-rescue image,
//! resize leaves the root volume alone. Servers run on the in-memory driver.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{call, get, wait_for_reply};
use crate::compute::{self, Client, assert_nova_error};

/// Boots `name` from a new 1 GiB volume made from `image`, with a blank data volume.
async fn boot_from_volume(client: &Client<'_>, name: &str, image: &str) -> String {
    let bdm = json!([
        {"source_type": "image", "destination_type": "volume", "uuid": image,
         "boot_index": 0, "volume_size": 1, "delete_on_termination": true},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
         "boot_index": -1, "delete_on_termination": true},
    ]);
    let made = client
        .post(
            "/servers",
            json!({"server": {"name": name, "flavorRef": "1", "block_device_mapping_v2": bdm}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let id = made.body["server"]["id"].as_str().unwrap().to_owned();
    client.wait_status(&id, "ACTIVE").await;
    id
}

async fn attachments(client: &Client<'_>, server: &str) -> Vec<Value> {
    let reply = client
        .at("2.79")
        .get(&format!("/servers/{server}/os-volume_attachments"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["volumeAttachments"].as_array().unwrap().clone()
}

async fn glance_image(client: &Client<'_>, id: &str) -> Value {
    let reply = client
        .send(Method::GET, &format!("/image/v2/images/{id}"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn count(client: &Client<'_>, what: &str) -> usize {
    get(client, &format!("/{what}")).await.body[what]
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_volume_backed_server_snapshots_into_volume_snapshots_and_boots_again() {
    let cloud = crate::common::Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let image = alice.image("bfv-snap-img", json!({})).await;
    let server = boot_from_volume(alice, "bfv", &image).await;
    let volumes = attachments(alice, &server).await;
    assert_eq!(volumes.len(), 2);

    // createImage: an image id at once; the server is not busy meanwhile.
    let made = alice
        .at("2.45")
        .action(
            &server,
            json!({"createImage": {"name": "bfv-snap", "metadata": {"k": "v"}}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let snap_image = made.body["image_id"].as_str().unwrap().to_owned();
    let shown = alice.server(&server).await;
    assert_eq!(shown["OS-EXT-STS:task_state"], Value::Null, "{shown}");

    // The image has no data and maps a snapshot of each volume, as Nova writes it.
    let meta = glance_image(alice, &snap_image).await;
    assert_eq!(meta["status"], "active", "{meta}");
    assert_eq!(meta["size"], 0, "{meta}");
    assert_eq!(meta["disk_format"], "raw", "{meta}");
    assert_eq!(meta["bdm_v2"], "True", "{meta}");
    assert_eq!(meta["root_device_name"], "/dev/vda", "{meta}");
    assert_eq!(meta["image_type"], "snapshot", "{meta}");
    assert_eq!(meta["instance_uuid"], server.as_str(), "{meta}");
    assert_eq!(meta["k"], "v", "{meta}");
    let mapping: Vec<Value> =
        serde_json::from_str(meta["block_device_mapping"].as_str().unwrap()).unwrap();
    assert_eq!(mapping.len(), 2, "{mapping:?}");
    assert_eq!(mapping[0]["source_type"], "snapshot");
    assert_eq!(mapping[0]["destination_type"], "volume");
    assert_eq!(mapping[0]["boot_index"], 0);
    assert_eq!(mapping[0]["device_name"], "/dev/vda");
    assert_eq!(mapping[0]["volume_size"], 1);
    assert!(mapping[0]["volume_id"].is_null() && mapping[0]["image_id"].is_null());
    let root_snapshot = mapping[0]["snapshot_id"].as_str().unwrap().to_owned();
    for entry in &mapping {
        let id = entry["snapshot_id"].as_str().unwrap();
        let done = wait_for_reply(alice, &format!("/snapshots/{id}"), "available", |r| {
            r.body["snapshot"]["status"] == "available"
        })
        .await;
        assert_eq!(done.body["snapshot"]["name"], "snapshot for bfv-snap");
    }
    let actions = alice
        .get(&format!("/servers/{server}/os-instance-actions"))
        .await;
    assert!(
        actions.body["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "createImage"),
        "{}",
        actions.body
    );

    // Booting that image makes new volumes from the snapshots and boots from the first.
    let again = alice.boot_active("from-snap", &snap_image, json!({})).await;
    let shown = alice.server(&again).await;
    assert_eq!(shown["image"]["id"], snap_image.as_str(), "{shown}");
    let new_volumes = attachments(alice, &again).await;
    assert_eq!(new_volumes.len(), 2, "{new_volumes:?}");
    assert_eq!(new_volumes[0]["device"], "/dev/vda");
    let new_root = new_volumes[0]["volumeId"].as_str().unwrap();
    let root = get(alice, &format!("/volumes/{new_root}")).await;
    assert_eq!(root.body["volume"]["snapshot_id"], root_snapshot.as_str());
    assert_eq!(root.body["volume"]["status"], "in-use");

    // Bob does not see alice's image, and cannot point one of his own at her snapshots.
    let bobs = env
        .bob
        .create_server("bob-from-snap", &snap_image, json!({}))
        .await;
    assert_nova_error(&bobs, StatusCode::BAD_REQUEST, "badRequest");
    let crafted = env
        .bob
        .image(
            "crafted",
            json!({"bdm_v2": "True", "block_device_mapping": meta["block_device_mapping"]}),
        )
        .await;
    let before = count(&env.bob, "volumes").await;
    let refused = env.bob.create_server("stolen", &crafted, json!({})).await;
    assert_nova_error(&refused, StatusCode::BAD_REQUEST, "badRequest");
    assert_eq!(count(&env.bob, "volumes").await, before);
    // A mapping that is not one is refused before anything is made.
    let broken = env
        .bob
        .image(
            "broken",
            json!({"bdm_v2": "True", "block_device_mapping": "[{\"destination_type\": \"volume\"}]"}),
        )
        .await;
    let refused = env.bob.create_server("broken", &broken, json!({})).await;
    assert_nova_error(&refused, StatusCode::BAD_REQUEST, "badRequest");
    assert_eq!(count(&env.bob, "volumes").await, before);

    // Over the snapshot quota: 403, and no snapshot is left behind.
    let snapshots = count(alice, "snapshots").await;
    let quota = call(
        &env.admin,
        Method::PUT,
        &format!("/os-quota-sets/{}", env.alice_project),
        None,
        Some(json!({"quota_set": {"snapshots": snapshots + 1}})),
    )
    .await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
    let over = alice
        .action(&server, json!({"createImage": {"name": "too-many"}}))
        .await;
    assert_nova_error(&over, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(count(alice, "snapshots").await, snapshots);
}

#[tokio::test]
async fn a_volume_backed_server_rebuilds_rescues_and_resizes_as_nova_does() {
    let cloud = crate::common::Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let image = alice.image("bfv-own-img", json!({})).await;
    let other = alice.image("bfv-other-img", json!({})).await;
    let server = boot_from_volume(alice, "bfv", &image).await;

    // Rebuild: only with the image its boot volume was made from; the volume stays.
    let root = attachments(alice, &server).await[0]["volumeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = alice
        .action(&server, json!({"rebuild": {"imageRef": other}}))
        .await;
    assert_nova_error(&refused, StatusCode::BAD_REQUEST, "badRequest");
    assert!(
        refused.body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("Unable to rebuild with a different image for a volume-backed server"),
        "{}",
        refused.body
    );
    let rebuilt = alice
        .action(
            &server,
            json!({"rebuild": {"imageRef": image, "name": "bfv-rebuilt"}}),
        )
        .await;
    assert_eq!(rebuilt.status, StatusCode::ACCEPTED, "{}", rebuilt.body);
    let shown = alice.wait_idle(&server).await;
    assert_eq!(shown["status"], "ACTIVE", "{shown}");
    assert_eq!(shown["name"], "bfv-rebuilt");
    assert_eq!(
        attachments(alice, &server).await[0]["volumeId"],
        root.as_str()
    );

    // Rescue: refused below 2.87, and at 2.87 without a stable-rescue image.
    let rescue = |image: &str| json!({"rescue": {"rescue_image_ref": image}});
    let old = alice.at("2.86").action(&server, rescue(&image)).await;
    assert_nova_error(&old, StatusCode::BAD_REQUEST, "badRequest");
    let plain = alice.at("2.87").action(&server, rescue(&image)).await;
    assert_nova_error(&plain, StatusCode::BAD_REQUEST, "badRequest");
    let stable = alice
        .image(
            "stable-rescue",
            json!({"hw_rescue_bus": "virtio", "hw_rescue_device": "disk"}),
        )
        .await;
    let rescued = alice.at("2.87").action(&server, rescue(&stable)).await;
    assert_eq!(rescued.status, StatusCode::OK, "{}", rescued.body);
    alice.wait_status(&server, "RESCUE").await;
    let back = alice.action(&server, json!({"unrescue": null})).await;
    assert_eq!(back.status, StatusCode::ACCEPTED, "{}", back.body);
    alice.wait_status(&server, "ACTIVE").await;
    // A snapshot of a volume-backed server cannot rescue anything.
    let made = alice
        .at("2.45")
        .action(&server, json!({"createImage": {"name": "bfv-snap"}}))
        .await;
    let snap_image = made.body["image_id"].as_str().unwrap().to_owned();
    let from_snap = alice.at("2.87").action(&server, rescue(&snap_image)).await;
    assert_nova_error(&from_snap, StatusCode::BAD_REQUEST, "badRequest");

    // Resize: a flavor without a disk fits a volume-backed server, not an image-backed one.
    let flavor = env
        .admin
        .post(
            "/flavors",
            json!({"flavor": {"name": "no-disk", "ram": 512, "vcpus": 1, "disk": 0}}),
        )
        .await;
    assert_eq!(flavor.status, StatusCode::OK, "{}", flavor.body);
    let flavor = flavor.body["flavor"]["id"].as_str().unwrap().to_owned();
    let resized = alice
        .action(&server, json!({"resize": {"flavorRef": flavor}}))
        .await;
    assert_eq!(resized.status, StatusCode::ACCEPTED, "{}", resized.body);
    alice.wait_status(&server, "VERIFY_RESIZE").await;
    let confirmed = alice.action(&server, json!({"confirmResize": null})).await;
    assert_eq!(
        confirmed.status,
        StatusCode::NO_CONTENT,
        "{}",
        confirmed.body
    );
    let on_image = alice.boot_active("on-image", &image, json!({})).await;
    let refused = alice
        .action(&on_image, json!({"resize": {"flavorRef": flavor}}))
        .await;
    assert_nova_error(&refused, StatusCode::BAD_REQUEST, "badRequest");
}
