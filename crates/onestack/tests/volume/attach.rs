//! Volumes attached to servers through Nova's `os-volume_attachments`, as the block storage
//! API sees them: reserved, in use, detached, released with the server. Servers run on the
//! in-memory driver here; `virt`'s tests and the CLI walkthrough plug into real guests.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{available, call, post, wait_for, wait_for_reply};
use crate::common::Cloud;
use crate::compute::{self, Client, assert_nova_error};

async fn in_use(client: &Client<'_>, id: &str) -> Value {
    wait_for(client, id, "in-use", |r| {
        r.body["volume"]["status"] == "in-use"
    })
    .await
}

async fn new_volume(client: &Client<'_>) -> String {
    let id = post(client, "/volumes", json!({"volume": {"size": 1}}))
        .await
        .id("volume");
    available(client, &id).await;
    id
}

async fn volume_now(client: &Client<'_>, id: &str) -> Value {
    let reply = call(
        client,
        reqwest::Method::GET,
        &format!("/volumes/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["volume"].clone()
}

fn attach_body(volume: &str) -> Value {
    json!({"volumeAttachment": {"volumeId": volume}})
}

#[tokio::test]
async fn volumes_attach_to_servers_and_come_back() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let image = alice.image("attach-img", json!({})).await;
    let server = alice.boot_active("vm", &image, json!({})).await;
    let volume = new_volume(alice).await;

    // Attach: 200 with the device the guest will see; the volume goes in use.
    let path = format!("/servers/{server}/os-volume_attachments");
    let attached = alice.at("2.89").post(&path, attach_body(&volume)).await;
    assert_eq!(attached.status, StatusCode::OK, "{}", attached.body);
    let view = &attached.body["volumeAttachment"];
    assert_eq!(view["device"], "/dev/vdb");
    assert_eq!(view["volumeId"], volume.as_str());
    assert_eq!(view["serverId"], server.as_str());
    assert_eq!(view["delete_on_termination"], false);
    assert!(view.get("id").is_none(), "2.89 drops id: {view}");
    let attachment_id = view["attachment_id"].as_str().unwrap().to_owned();
    let shown = in_use(alice, &volume).await;
    let cinder_side = &shown["attachments"][0];
    assert_eq!(cinder_side["server_id"], server.as_str());
    assert_eq!(cinder_side["attachment_id"], attachment_id.as_str());
    assert_eq!(cinder_side["device"], "/dev/vdb");
    assert!(cinder_side["host_name"].is_string(), "{shown}");

    // Nova's views per microversion, and the server's detail.
    let listed = alice.get(&path).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(
        listed.body["volumeAttachments"],
        json!([{"id": volume, "volumeId": volume, "serverId": server, "device": "/dev/vdb"}])
    );
    let one = alice.at("2.79").get(&format!("{path}/{volume}")).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["volumeAttachment"]["tag"], Value::Null);
    assert_eq!(one.body["volumeAttachment"]["delete_on_termination"], false);
    let detail = alice.at("2.3").server(&server).await;
    assert_eq!(
        detail["os-extended-volumes:volumes_attached"],
        json!([{"id": volume, "delete_on_termination": false}])
    );
    let paged = alice.get(&format!("{path}?limit=1&offset=1")).await;
    assert_eq!(paged.body["volumeAttachments"], json!([]));

    // What must be refused changes nothing.
    let again = alice.post(&path, attach_body(&volume)).await;
    assert_nova_error(&again, StatusCode::BAD_REQUEST, "badRequest");
    let other = alice.boot_active("vm2", &image, json!({})).await;
    let taken = alice
        .post(
            &format!("/servers/{other}/os-volume_attachments"),
            attach_body(&volume),
        )
        .await;
    assert_nova_error(&taken, StatusCode::BAD_REQUEST, "badRequest");
    let gone = post(
        alice,
        &format!("/volumes/{volume}/action"),
        json!({"os-force_delete": {}}),
    )
    .await;
    assert_eq!(gone.status, StatusCode::FORBIDDEN, "{}", gone.body);
    let delete = call(
        alice,
        reqwest::Method::DELETE,
        &format!("/volumes/{volume}"),
        None,
        None,
    )
    .await;
    assert_eq!(delete.status, StatusCode::BAD_REQUEST, "{}", delete.body);
    let forced = call(
        &env.admin,
        reqwest::Method::POST,
        &format!("/volumes/{volume}/action"),
        None,
        Some(json!({"os-force_delete": {}})),
    )
    .await;
    assert_eq!(
        forced.status,
        StatusCode::BAD_REQUEST,
        "attached: {}",
        forced.body
    );
    let extend = post(
        alice,
        &format!("/volumes/{volume}/action"),
        json!({"os-extend": {"new_size": 2}}),
    )
    .await;
    assert_eq!(extend.status, StatusCode::BAD_REQUEST, "{}", extend.body);
    assert!(
        extend.body["badRequest"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be 'available'")),
        "{}",
        extend.body
    );

    // 3.42: an attached volume grows under its guest (the server's host resizes the disk),
    // is in use again at its new size, and the server records the action.
    let action = format!("/volumes/{volume}/action");
    let grow = |size: u64| json!({"os-extend": {"new_size": size}});
    let online = call(
        alice,
        reqwest::Method::POST,
        &action,
        Some("3.42"),
        Some(grow(2)),
    )
    .await;
    assert_eq!(online.status, StatusCode::ACCEPTED, "{}", online.body);
    let grown = wait_for(alice, &volume, "grown while in use", |r| {
        r.body["volume"]["size"] == 2 && r.body["volume"]["status"] == "in-use"
    })
    .await;
    assert_eq!(grown["attachments"][0]["server_id"], server.as_str());
    let names = compute::values(
        &alice
            .get(&format!("/servers/{server}/os-instance-actions"))
            .await
            .body,
        "instanceActions",
        "action",
    );
    assert!(names.contains(&"extend_volume".to_owned()), "{names:?}");
    let smaller = call(
        alice,
        reqwest::Method::POST,
        &action,
        Some("3.42"),
        Some(grow(2)),
    )
    .await;
    assert_eq!(smaller.status, StatusCode::BAD_REQUEST, "{}", smaller.body);

    // A snapshot of the in-use volume: refused without `force` below 3.66; with it (or at
    // 3.66) the server's host copies the disk under the guest, and a volume made from the
    // snapshot holds the copy.
    let snap = |force: Option<bool>| match force {
        Some(force) => json!({"snapshot": {"volume_id": volume, "force": force}}),
        None => json!({"snapshot": {"volume_id": volume}}),
    };
    let plain = post(alice, "/snapshots", snap(None)).await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST, "{}", plain.body);
    let no_force = call(
        alice,
        reqwest::Method::POST,
        "/snapshots",
        Some("3.66"),
        Some(snap(Some(false))),
    )
    .await;
    assert_eq!(
        no_force.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_force.body
    );
    let forced = post(alice, "/snapshots", snap(Some(true))).await;
    assert_eq!(forced.status, StatusCode::ACCEPTED, "{}", forced.body);
    let at_66 = call(
        alice,
        reqwest::Method::POST,
        "/snapshots",
        Some("3.66"),
        Some(snap(None)),
    )
    .await;
    assert_eq!(at_66.status, StatusCode::ACCEPTED, "{}", at_66.body);
    for taken in [forced.id("snapshot"), at_66.id("snapshot")] {
        wait_for_reply(alice, &format!("/snapshots/{taken}"), "available", |r| {
            r.body["snapshot"]["status"] == "available"
        })
        .await;
    }
    let from_live = post(
        alice,
        "/volumes",
        json!({"volume": {"size": 2, "snapshot_id": forced.id("snapshot")}}),
    )
    .await;
    assert_eq!(from_live.status, StatusCode::ACCEPTED, "{}", from_live.body);
    available(alice, &from_live.id("volume")).await;
    assert_eq!(volume_now(alice, &volume).await["status"], "in-use");

    // A backup of the in-use volume: refused without `force`; with it, read from a copy
    // the server's host takes, which goes when the backup is done. A snapshot of the
    // in-use volume backs up without `force`.
    let backup = |force: bool| json!({"backup": {"volume_id": volume, "force": force}});
    let unforced = post(alice, "/backups", backup(false)).await;
    assert_eq!(
        unforced.status,
        StatusCode::BAD_REQUEST,
        "{}",
        unforced.body
    );
    let forced_backup = post(alice, "/backups", backup(true)).await;
    assert_eq!(
        forced_backup.status,
        StatusCode::ACCEPTED,
        "{}",
        forced_backup.body
    );
    let of_snapshot = post(
        alice,
        "/backups",
        json!({"backup": {"volume_id": volume, "snapshot_id": forced.id("snapshot")}}),
    )
    .await;
    assert_eq!(
        of_snapshot.status,
        StatusCode::ACCEPTED,
        "{}",
        of_snapshot.body
    );
    for taken in [forced_backup.id("backup"), of_snapshot.id("backup")] {
        wait_for_reply(alice, &format!("/backups/{taken}"), "available", |r| {
            r.body["backup"]["status"] == "available"
        })
        .await;
    }
    let shown = super::get(alice, &format!("/backups/{}", forced_backup.id("backup"))).await;
    assert_eq!(
        shown.body["backup"]["snapshot_id"],
        Value::Null,
        "{}",
        shown.body
    );
    assert_eq!(volume_now(alice, &volume).await["status"], "in-use");
    wait_for_reply(alice, "/snapshots", "without the backup's copy", |r| {
        r.body["snapshots"].as_array().is_some_and(|all| {
            all.len() == 2
                && !all.iter().any(|s| {
                    s["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("backup-snap-"))
                })
        })
    })
    .await;
    for bad in [
        json!({"volumeAttachment": {"volumeId": "not-a-uuid"}}),
        json!({"volumeAttachment": {}}),
        json!({"volumeAttachment": {"volumeId": volume, "bogus": 1}}),
        json!({"volumeAttachment": {"volumeId": volume, "delete_on_termination": true}}),
    ] {
        let reply = alice.post(&path, bad.clone()).await;
        assert_nova_error(&reply, StatusCode::BAD_REQUEST, "badRequest");
    }
    let missing = alice
        .post(&path, attach_body("00000000-0000-4000-8000-000000000000"))
        .await;
    assert_nova_error(&missing, StatusCode::NOT_FOUND, "itemNotFound");
    let not_attached = alice
        .delete(&format!("/servers/{other}/os-volume_attachments/{volume}"))
        .await;
    assert_nova_error(&not_attached, StatusCode::NOT_FOUND, "itemNotFound");

    // Another project sees neither the server's attachments nor the volume.
    let bobs = env.bob.get(&path).await;
    assert_nova_error(&bobs, StatusCode::NOT_FOUND, "itemNotFound");
    let bob_server = env
        .bob
        .boot_active("bob-vm", &env.bob.image("b", json!({})).await, json!({}))
        .await;
    let stolen = env
        .bob
        .post(
            &format!("/servers/{bob_server}/os-volume_attachments"),
            attach_body(&volume),
        )
        .await;
    assert_nova_error(&stolen, StatusCode::NOT_FOUND, "itemNotFound");

    // 2.85: whether the volume goes with the server.
    let update_path = format!("{path}/{volume}");
    let update = json!({"volumeAttachment": {"volumeId": volume, "delete_on_termination": true}});
    let old = alice.at("2.84").put(&update_path, update.clone()).await;
    assert_nova_error(&old, StatusCode::BAD_REQUEST, "badRequest");
    let set = alice.at("2.85").put(&update_path, update).await;
    assert_eq!(set.status, StatusCode::ACCEPTED, "{}", set.body);
    let swap = alice
        .at("2.85")
        .put(&update_path, attach_body(&new_volume(alice).await))
        .await;
    assert_nova_error(&swap, StatusCode::FORBIDDEN, "forbidden");

    // Detach: 202, the volume is available again and can go elsewhere.
    let detached = alice.delete(&update_path).await;
    assert_eq!(detached.status, StatusCode::ACCEPTED, "{}", detached.body);
    let back = available(alice, &volume).await;
    assert_eq!(back["attachments"], json!([]));
    let listed = alice.get(&path).await;
    assert_eq!(listed.body["volumeAttachments"], json!([]));
    let actions = alice
        .get(&format!("/servers/{server}/os-instance-actions"))
        .await;
    let names = compute::values(&actions.body, "instanceActions", "action");
    assert!(
        names.contains(&"attach_volume".to_owned()) && names.contains(&"detach_volume".to_owned()),
        "{names:?}"
    );

    // A stopped server takes it too (at its next start); deleting the server gives it back,
    // or deletes it when it was to go with the server.
    let stop = alice.action(&other, json!({"os-stop": null})).await;
    assert_eq!(stop.status, StatusCode::ACCEPTED, "{}", stop.body);
    alice.wait_status(&other, "SHUTOFF").await;
    let other_path = format!("/servers/{other}/os-volume_attachments");
    let keeper = new_volume(alice).await;
    for (id, goes) in [(&volume, false), (&keeper, true)] {
        let body = json!({"volumeAttachment": {"volumeId": id, "delete_on_termination": goes}});
        let reply = alice.at("2.79").post(&other_path, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        in_use(alice, id).await;
    }
    let devices = compute::values(
        &alice.get(&other_path).await.body,
        "volumeAttachments",
        "device",
    );
    assert_eq!(devices, ["/dev/vdb", "/dev/vdc"]);
    let deleted = alice.delete(&format!("/servers/{other}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    alice.wait_gone(&other).await;
    available(alice, &volume).await;
    wait_for(alice, &keeper, "deleted with its server", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
}

#[tokio::test]
async fn multiattach_types_share_a_volume_and_paused_servers_keep_theirs() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let made = call(
        &env.admin,
        reqwest::Method::POST,
        "/types",
        None,
        Some(
            json!({"volume_type": {"name": "shared", "extra_specs": {"multiattach": "<is> True"}}}),
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let volume = post(
        alice,
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": "shared"}}),
    )
    .await
    .id("volume");
    let shown = available(alice, &volume).await;
    assert_eq!(shown["multiattach"], true);
    let image = alice.image("img", json!({})).await;
    let a = alice.boot_active("a", &image, json!({})).await;
    let b = alice.boot_active("b", &image, json!({})).await;
    for server in [&a, &b] {
        let reply = alice
            .post(
                &format!("/servers/{server}/os-volume_attachments"),
                attach_body(&volume),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        in_use(alice, &volume).await;
    }
    let both = wait_for(alice, &volume, "attached twice", |r| {
        r.body["volume"]["attachments"]
            .as_array()
            .is_some_and(|a| a.len() == 2)
    })
    .await;
    assert_eq!(both["status"], "in-use");
    let grow_both = call(
        alice,
        reqwest::Method::POST,
        &format!("/volumes/{volume}/action"),
        Some("3.42"),
        Some(json!({"os-extend": {"new_size": 2}})),
    )
    .await;
    assert_eq!(
        grow_both.status,
        StatusCode::BAD_REQUEST,
        "{}",
        grow_both.body
    );
    assert_eq!(volume_now(alice, &volume).await["size"], 1);

    // A paused guest cannot answer the unplug request: refused until it runs again.
    let pause = alice.action(&a, json!({"pause": null})).await;
    assert_eq!(pause.status, StatusCode::ACCEPTED, "{}", pause.body);
    alice.wait_status(&a, "PAUSED").await;
    let refused = alice
        .delete(&format!("/servers/{a}/os-volume_attachments/{volume}"))
        .await;
    assert_nova_error(&refused, StatusCode::CONFLICT, "conflictingRequest");

    // One detach leaves the other attachment in use.
    let detached = alice
        .delete(&format!("/servers/{b}/os-volume_attachments/{volume}"))
        .await;
    assert_eq!(detached.status, StatusCode::ACCEPTED, "{}", detached.body);
    let one = wait_for(alice, &volume, "attached once", |r| {
        r.body["volume"]["attachments"]
            .as_array()
            .is_some_and(|a| a.len() == 1)
            && r.body["volume"]["status"] == "in-use"
    })
    .await;
    assert_eq!(one["attachments"][0]["server_id"], a.as_str());
}

#[tokio::test]
async fn servers_boot_from_volumes() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let image = alice.image("bfv-img", json!({})).await;

    // A new volume from the image is the root disk; a blank one is a data disk.
    let bdm = json!([
        {"source_type": "image", "destination_type": "volume", "uuid": image,
         "boot_index": 0, "volume_size": 1, "delete_on_termination": true},
        {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
         "boot_index": -1, "delete_on_termination": "false"},
    ]);
    let made = alice
        .post(
            "/servers",
            json!({"server": {"name": "bfv", "flavorRef": "1", "imageRef": "",
                "block_device_mapping_v2": bdm}}),
        )
        .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let server = made.body["server"]["id"].as_str().unwrap().to_owned();
    let shown = alice.at("2.79").wait_status(&server, "ACTIVE").await;
    assert_eq!(shown["image"], "", "booted from a volume: {shown}");
    let attached = alice
        .at("2.79")
        .get(&format!("/servers/{server}/os-volume_attachments"))
        .await;
    let list = attached.body["volumeAttachments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 2, "{}", attached.body);
    assert_eq!(list[0]["device"], "/dev/vda");
    assert_eq!(list[0]["delete_on_termination"], true);
    assert_eq!(list[1]["device"], "/dev/vdb");
    let root = list[0]["volumeId"].as_str().unwrap().to_owned();
    let data = list[1]["volumeId"].as_str().unwrap().to_owned();
    let root_volume = in_use(alice, &root).await;
    assert_eq!(root_volume["bootable"], "true");
    assert_eq!(
        root_volume["volume_image_metadata"]["image_id"],
        image.as_str()
    );
    in_use(alice, &data).await;

    // Its root stays: no detach (rebuild and the rest: `volume_backed`).
    let detach = alice
        .delete(&format!("/servers/{server}/os-volume_attachments/{root}"))
        .await;
    assert_nova_error(&detach, StatusCode::BAD_REQUEST, "badRequest");

    // Deleting the server deletes the root (delete_on_termination) and frees the data disk.
    let deleted = alice.delete(&format!("/servers/{server}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    alice.wait_gone(&server).await;
    wait_for(alice, &root, "deleted with its server", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    available(alice, &data).await;

    // An existing volume boots only when it is bootable; it outlives the server.
    let existing = |volume: &str| {
        json!({"server": {"name": "from-volume", "flavorRef": "1",
            "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                "uuid": volume, "boot_index": "0"}]}})
    };
    let refused = alice.post("/servers", existing(&data)).await;
    assert_nova_error(&refused, StatusCode::BAD_REQUEST, "badRequest");
    let flag = post(
        alice,
        &format!("/volumes/{data}/action"),
        json!({"os-set_bootable": {"bootable": true}}),
    )
    .await;
    assert_eq!(flag.status, StatusCode::OK, "{}", flag.body);
    let made = alice.post("/servers", existing(&data)).await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let server = made.body["server"]["id"].as_str().unwrap().to_owned();
    alice.wait_status(&server, "ACTIVE").await;
    in_use(alice, &data).await;
    let twice = alice
        .post(
            "/servers",
            json!({"server": {"name": "x", "flavorRef": "1", "min_count": 2,
                "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                    "uuid": data, "boot_index": 0}]}}),
        )
        .await;
    assert_nova_error(&twice, StatusCode::BAD_REQUEST, "badRequest");
    let deleted = alice.delete(&format!("/servers/{server}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    alice.wait_gone(&server).await;
    available(alice, &data).await;

    // Bad mappings change nothing.
    let before = super::get(alice, "/volumes").await.body["volumes"]
        .as_array()
        .unwrap()
        .len();
    for bdm in [
        json!({"source_type": "image", "destination_type": "volume", "uuid": image, "boot_index": 0}),
        json!({"source_type": "volume", "destination_type": "volume", "boot_index": 0}),
        json!({"source_type": "volume", "destination_type": "volume", "uuid": "00000000-0000-4000-8000-000000000000", "boot_index": 0}),
        json!({"source_type": "image", "destination_type": "volume", "uuid": image, "boot_index": 0, "volume_size": -1}),
        json!({"source_type": "image", "destination_type": "volume", "uuid": image, "boot_index": 0, "volume_size": 1, "delete_on_termination": "maybe"}),
    ] {
        let reply = alice
            .post(
                "/servers",
                json!({"server": {"name": "bad", "flavorRef": "1", "block_device_mapping_v2": [bdm]}}),
            )
            .await;
        assert_nova_error(&reply, StatusCode::BAD_REQUEST, "badRequest");
    }
    // Another project's volume is not there for bob.
    let bobs = env.bob.post("/servers", existing(&data)).await;
    assert_nova_error(&bobs, StatusCode::BAD_REQUEST, "badRequest");
    let after = super::get(alice, "/volumes").await.body["volumes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}

#[tokio::test]
async fn the_block_storage_api_attaches_through_compute() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let image = alice.image("img", json!({})).await;
    let server = alice.boot_active("vm", &image, json!({})).await;
    let volume = new_volume(alice).await;
    let at = Some("3.27");

    // The attachments API: made through compute, so Nova's view has it too.
    let old = call(alice, reqwest::Method::GET, "/attachments", None, None).await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "{}", old.body);
    let made = call(
        alice,
        reqwest::Method::POST,
        "/attachments",
        at,
        Some(json!({"attachment": {"volume_uuid": volume, "instance_uuid": server}})),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let attachment = made.id("attachment");
    assert_eq!(made.body["attachment"]["instance"], server.as_str());
    in_use(alice, &volume).await;
    let nova = alice
        .get(&format!("/servers/{server}/os-volume_attachments"))
        .await;
    assert_eq!(
        compute::values(&nova.body, "volumeAttachments", "volumeId"),
        std::slice::from_ref(&volume)
    );
    let listed = call(alice, reqwest::Method::GET, "/attachments/detail", at, None).await;
    assert_eq!(listed.body["attachments"][0]["id"], attachment.as_str());
    assert_eq!(listed.body["attachments"][0]["status"], "attached");
    assert_eq!(listed.body["attachments"][0]["attach_mode"], "rw");
    let path = format!("/attachments/{attachment}");
    let shown = call(alice, reqwest::Method::GET, &path, at, None).await;
    assert_eq!(shown.body["attachment"]["volume_id"], volume.as_str());

    // Another project neither sees nor makes them.
    let bobs = call(&env.bob, reqwest::Method::GET, &path, at, None).await;
    assert_eq!(bobs.status, StatusCode::NOT_FOUND, "{}", bobs.body);
    let stolen = call(
        &env.bob,
        reqwest::Method::POST,
        "/attachments",
        at,
        Some(json!({"attachment": {"volume_uuid": volume, "instance_uuid": server}})),
    )
    .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.body);
    let no_server = call(
        alice,
        reqwest::Method::POST,
        "/attachments",
        at,
        Some(json!({"attachment": {"volume_uuid": volume}})),
    )
    .await;
    assert_eq!(
        no_server.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_server.body
    );

    // Deleting the attachment detaches the disk.
    let deleted = call(alice, reqwest::Method::DELETE, &path, at, None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    available(alice, &volume).await;
    let nova = alice
        .get(&format!("/servers/{server}/os-volume_attachments"))
        .await;
    assert_eq!(nova.body["volumeAttachments"], json!([]));

    // The old actions do the same.
    let action = format!("/volumes/{volume}/action");
    let attach = post(
        alice,
        &action,
        json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}),
    )
    .await;
    assert_eq!(attach.status, StatusCode::ACCEPTED, "{}", attach.body);
    let shown = in_use(alice, &volume).await;
    let attachment = shown["attachments"][0]["attachment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // `in-use` means the server's record lists it attached too: a detach right away works.
    let detach = post(
        alice,
        &action,
        json!({"os-detach": {"attachment_id": attachment}}),
    )
    .await;
    assert_eq!(detach.status, StatusCode::ACCEPTED, "{}", detach.body);
    available(alice, &volume).await;
    let nothing = post(alice, &action, json!({"os-detach": {}})).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST, "{}", nothing.body);
}

/// Sets a volume's status and attachments in the database, as a crash between the two
/// services' writes can leave them.
async fn write_volume_state(cloud: &Cloud, id: &str, status: &str, attachments: Value) {
    let pool = cloud.database().await.unwrap();
    let row: (String,) = sqlx::query_as("SELECT doc FROM vol_volumes WHERE id = $1")
        .bind(id.to_owned())
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut doc: Value = serde_json::from_str(&row.0).unwrap();
    doc["status"] = json!(status);
    doc["attachments"] = attachments;
    sqlx::query(
        "UPDATE vol_volumes SET status = $1, revision = revision + 1, doc = $2 WHERE id = $3",
    )
    .bind(status.to_owned())
    .bind(doc.to_string())
    .bind(id.to_owned())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn a_restart_repairs_what_a_crash_between_the_services_left() {
    let mut cloud = Cloud::start().await;
    let (server, dangling, cut_short, plug_cut) = {
        let env = compute::env(&cloud).await;
        let alice = &env.alice;
        let image = alice.image("img", json!({})).await;
        let server = alice.boot_active("vm", &image, json!({})).await;
        let dangling = new_volume(alice).await;
        let cut_short = new_volume(alice).await;
        let reply = alice
            .post(
                &format!("/servers/{server}/os-volume_attachments"),
                attach_body(&cut_short),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        in_use(alice, &cut_short).await;
        let plug_cut = new_volume(alice).await;
        let reply = alice
            .post(
                &format!("/servers/{server}/os-volume_attachments"),
                attach_body(&plug_cut),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        in_use(alice, &plug_cut).await;
        (server, dangling, cut_short, plug_cut)
    };
    // A reservation the server never recorded, and a detach the server never recorded.
    write_volume_state(
        &cloud,
        &dangling,
        "attaching",
        json!([{"id": "0e0e0e0e-0000-4000-8000-000000000001", "server_id": server, "host": null,
                "device": "/dev/vdc", "status": "attaching", "read_only": false, "attached_at": null}]),
    )
    .await;
    let alice = Client::new(&cloud, &cloud.token("alice", "pw-alice", "alice").await);
    let attachments = super::get(&alice, &format!("/volumes/{cut_short}"))
        .await
        .body["volume"]["attachments"]
        .clone();
    let mut detaching = json!([{
        "id": attachments[0]["attachment_id"], "server_id": server, "host": attachments[0]["host_name"],
        "device": "/dev/vdb", "status": "detaching", "read_only": false, "attached_at": null}]);
    detaching[0]["attached_at"] = json!(1_700_000_000_000_000i64);
    write_volume_state(&cloud, &cut_short, "detaching", detaching).await;
    // A plug whose last write (the volume's) never happened: the server lists it attached.
    let plugged = super::get(&alice, &format!("/volumes/{plug_cut}"))
        .await
        .body["volume"]["attachments"]
        .clone();
    let attaching = json!([{
        "id": plugged[0]["attachment_id"], "server_id": server, "host": null,
        "device": plugged[0]["device"], "status": "attaching", "read_only": false, "attached_at": null}]);
    write_volume_state(&cloud, &plug_cut, "attaching", attaching).await;

    cloud.restart().await;
    let alice = Client::new(&cloud, &cloud.token("alice", "pw-alice", "alice").await);
    // The dangling reservation is gone; the cut-short plug is in use; the cut-short detach
    // is attached again, and can be retried.
    let freed = available(&alice, &dangling).await;
    assert_eq!(freed["attachments"], json!([]));
    let finished = in_use(&alice, &plug_cut).await;
    assert_eq!(finished["attachments"][0]["server_id"], json!(server));
    in_use(&alice, &cut_short).await;
    let retried = alice
        .delete(&format!(
            "/servers/{server}/os-volume_attachments/{cut_short}"
        ))
        .await;
    // (Accepted now; the in-memory driver forgot its guests with the restart, so what the
    // host does next is not this test's.)
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);
}
