//! Integration tests of the Block Storage v3 API (Cinder): the whole server in process,
//! real HTTP, volume files made, grown and removed by the volume agent with `qemu-img`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Cloud, Reply};

mod attach;
mod backups;
mod transfers;
mod types_and_services;
mod uploads;
mod volume_backed;
use crate::compute::{self, Client};

/// How long the agent gets to finish a volume's work.
const WAIT: Duration = Duration::from_secs(20);

/// A request below `/volume/v3` at volume microversion `version` (none: the default, 3.0).
async fn call(
    client: &Client<'_>,
    method: Method,
    path: &str,
    version: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let (cloud, token) = client.parts();
    let mut request = cloud
        .http
        .request(method, format!("{}/volume/v3{path}", cloud.url))
        .header("X-Auth-Token", token);
    if let Some(v) = version {
        request = request.header("OpenStack-API-Version", format!("volume {v}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::from(request.send().await.unwrap()).await
}

async fn get(client: &Client<'_>, path: &str) -> Reply {
    call(client, Method::GET, path, None, None).await
}

async fn post(client: &Client<'_>, path: &str, body: Value) -> Reply {
    call(client, Method::POST, path, None, Some(body)).await
}

/// Polls a volume until `done` holds; panics after [`WAIT`] saying `what`.
async fn wait_for(
    client: &Client<'_>,
    id: &str,
    what: &str,
    done: impl Fn(&Reply) -> bool,
) -> Value {
    wait_for_reply(client, &format!("/volumes/{id}"), what, done)
        .await
        .body["volume"]
        .clone()
}

/// Polls `path` until `done` holds; panics after [`WAIT`] saying `what`.
async fn wait_for_reply(
    client: &Client<'_>,
    path: &str,
    what: &str,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let reply = get(client, path).await;
        if done(&reply) {
            return reply;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never became {what}: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn available(client: &Client<'_>, id: &str) -> Value {
    wait_for(client, id, "available", |r| {
        r.body["volume"]["status"] == "available"
    })
    .await
}

fn file_of(cloud: &Cloud, id: &str) -> std::path::PathBuf {
    cloud.data_dir.join("volumes").join(format!("volume-{id}"))
}

/// The virtual size of a volume's file, as `qemu-img` reads it.
fn virtual_size(cloud: &Cloud, id: &str) -> u64 {
    let out = crate::common::run(
        "qemu-img",
        &[
            "info",
            "--output=json",
            "-U",
            file_of(cloud, id).to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    info["virtual-size"].as_u64().unwrap()
}

const GIB: u64 = 1 << 30;

#[tokio::test]
async fn discovery_microversions_and_the_project_in_the_url() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let root = cloud
        .http
        .get(format!("{}/volume", cloud.url))
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), StatusCode::MULTIPLE_CHOICES);
    let body: Value = root.json().await.unwrap();
    let v3 = &body["versions"][0];
    assert_eq!(v3["id"], "v3.0");
    assert_eq!(v3["min_version"], "3.0");
    assert_eq!(v3["version"], "3.71");
    assert_eq!(v3["links"][1]["href"], format!("{}/volume/v3/", cloud.url));

    let anonymous = cloud
        .http
        .get(format!("{}/volume/v3", cloud.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let listed = get(&env.alice, "").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body, body);

    // The version asked for is echoed; none is 3.0; bad and unknown ones are refused.
    let plain = get(&env.alice, "/volumes").await;
    assert_eq!(plain.headers["openstack-api-version"], "volume 3.0");
    assert_eq!(plain.headers["vary"], "OpenStack-API-Version");
    let latest = call(&env.alice, Method::GET, "/volumes", Some("latest"), None).await;
    assert_eq!(latest.headers["openstack-api-version"], "volume 3.71");
    let high = call(&env.alice, Method::GET, "/volumes", Some("3.99"), None).await;
    assert_eq!(high.status, StatusCode::NOT_ACCEPTABLE, "{}", high.body);
    let bad = call(&env.alice, Method::GET, "/volumes", Some("3.x"), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["badRequest"]["code"], 400, "{}", bad.body);

    // The catalog lists block-storage and volumev3 with the project in the URL.
    let catalog = cloud.get("/auth/catalog", env.alice.parts().1).await;
    for kind in ["block-storage", "volumev3"] {
        let entry = catalog.body["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {}", catalog.body));
        let url = entry["endpoints"][0]["url"].as_str().unwrap();
        assert_eq!(
            url,
            format!("{}/volume/v3/{}", cloud.url, env.alice_project)
        );
    }

    // Routes answer with and without the project segment; links keep what the URL had.
    let made = post(
        &env.alice,
        &format!("/{}/volumes", env.alice_project),
        json!({"volume": {"size": 1, "name": "with-project"}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let id = made.id("volume");
    assert_eq!(
        made.body["volume"]["links"][0]["href"],
        format!("{}/volume/v3/{}/volumes/{id}", cloud.url, env.alice_project)
    );
    let bare = get(&env.alice, &format!("/volumes/{id}")).await;
    assert_eq!(
        bare.body["volume"]["links"][0]["href"],
        format!("{}/volume/v3/volumes/{id}", cloud.url)
    );
    // Another project's id in the URL is a malformed request, not a way in.
    let crossed = get(&env.bob, &format!("/{}/volumes/{id}", env.alice_project)).await;
    assert_eq!(crossed.status, StatusCode::BAD_REQUEST, "{}", crossed.body);
    assert_eq!(
        crossed.body["badRequest"]["message"],
        "Malformed request url"
    );
}

#[tokio::test]
async fn volumes_are_made_grown_and_removed_on_the_host() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let made = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "name": "data", "description": "d", "metadata": {"k": "v"},
                          "volume_type": null, "imageRef": null, "snapshot_id": null}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let volume = &made.body["volume"];
    assert_eq!(volume["status"], "creating");
    assert_eq!(volume["volume_type"], "__DEFAULT__");
    assert_eq!(volume["bootable"], "false");
    assert!(
        volume.get("os-vol-tenant-attr:tenant_id").is_none(),
        "{volume}"
    );
    let id = made.id("volume");

    let shown = available(&env.alice, &id).await;
    assert_eq!(shown["size"], 1);
    assert_eq!(shown["metadata"], json!({"k": "v"}));
    assert_eq!(
        shown["os-vol-tenant-attr:tenant_id"],
        env.alice_project.as_str()
    );
    assert!(
        shown.get("os-vol-host-attr:host").is_none(),
        "admin only: {shown}"
    );
    assert!(shown.get("volume_type_id").is_none(), "3.63 only: {shown}");
    assert_eq!(virtual_size(&cloud, &id), GIB);
    let latest = call(
        &env.alice,
        Method::GET,
        &format!("/volumes/{id}"),
        Some("3.71"),
        None,
    )
    .await;
    let latest = &latest.body["volume"];
    assert!(latest["volume_type_id"].is_string(), "{latest}");
    assert_eq!(latest["consumes_quota"], true);
    assert_eq!(latest["shared_targets"], false);
    let as_admin = get(&env.admin, &format!("/volumes/{id}")).await;
    let host = as_admin.body["volume"]["os-vol-host-attr:host"]
        .as_str()
        .unwrap();
    assert!(host.contains('@') && host.contains('#'), "{host}");

    // Extend: 202, then the file and the view grow; shrinking is refused.
    let extended = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-extend": {"new_size": 2}}),
    )
    .await;
    assert_eq!(extended.status, StatusCode::ACCEPTED, "{}", extended.body);
    wait_for(&env.alice, &id, "2 GiB", |r| {
        r.body["volume"]["size"] == 2 && r.body["volume"]["status"] == "available"
    })
    .await;
    assert_eq!(virtual_size(&cloud, &id), 2 * GIB);
    let shrink = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-extend": {"new_size": 1}}),
    )
    .await;
    assert_eq!(shrink.status, StatusCode::BAD_REQUEST, "{}", shrink.body);

    // Flags, update and metadata.
    let bootable = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-set_bootable": {"bootable": "true"}}),
    )
    .await;
    assert_eq!(bootable.status, StatusCode::OK, "{}", bootable.body);
    let readonly = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-update_readonly_flag": {"readonly": true}}),
    )
    .await;
    assert_eq!(readonly.status, StatusCode::ACCEPTED, "{}", readonly.body);
    let updated = call(
        &env.alice,
        Method::PUT,
        &format!("/volumes/{id}"),
        None,
        Some(json!({"volume": {"name": "renamed"}})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["volume"]["name"], "renamed");
    assert_eq!(updated.body["volume"]["bootable"], "true");
    assert_eq!(updated.body["volume"]["metadata"]["readonly"], "True");
    let merged = post(
        &env.alice,
        &format!("/volumes/{id}/metadata"),
        json!({"metadata": {"a": "1"}}),
    )
    .await;
    assert_eq!(merged.body["metadata"], json!({"a": "1", "k": "v"}));
    let item = get(&env.alice, &format!("/volumes/{id}/metadata/a")).await;
    assert_eq!(item.body, json!({"meta": {"a": "1"}}));
    let gone = call(
        &env.alice,
        Method::DELETE,
        &format!("/volumes/{id}/metadata/a"),
        None,
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK);
    let missing = get(&env.alice, &format!("/volumes/{id}/metadata/a")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unknown = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-frobnicate": {}}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);

    // Delete: 202, then the row and the file go.
    let deleted = call(
        &env.alice,
        Method::DELETE,
        &format!("/volumes/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{}", deleted.body);
    wait_for(&env.alice, &id, "gone", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(!file_of(&cloud, &id).exists());
}

#[tokio::test]
async fn listing_filters_sorts_and_pages() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let mut ids = Vec::new();
    for (name, size) in [("a", 1), ("b", 2), ("c", 1)] {
        let made = post(
            &env.alice,
            "/volumes",
            json!({"volume": {"size": size, "name": name, "metadata": {"tier": name}}}),
        )
        .await;
        assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
        ids.push(made.id("volume"));
    }
    // Newest first by default; the summary has id, name and links only.
    let listed = get(&env.alice, "/volumes").await;
    let names: Vec<&str> = listed.body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c", "b", "a"]);
    let keys: Vec<&String> = listed.body["volumes"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["id", "links", "name"]);

    let page = get(&env.alice, "/volumes/detail?limit=2&sort=name:asc").await;
    let first: Vec<&str> = page.body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["a", "b"]);
    let next = page.body["volumes_links"][0]["href"].as_str().unwrap();
    assert!(next.contains(&format!("marker={}", ids[1])), "{next}");
    let rest = env
        .alice
        .send(Method::GET, next.trim_start_matches(&cloud.url), None)
        .await;
    assert_eq!(
        rest.body["volumes"].as_array().unwrap().len(),
        1,
        "{}",
        rest.body
    );
    assert!(rest.body.get("volumes_links").is_none(), "{}", rest.body);

    let by_size = get(&env.alice, "/volumes/detail?size=2").await;
    assert_eq!(by_size.body["volumes"].as_array().unwrap().len(), 1);
    let by_meta = get(
        &env.alice,
        "/volumes/detail?metadata=%7B%27tier%27%3A%20%27c%27%7D",
    )
    .await;
    assert_eq!(by_meta.body["volumes"][0]["name"], "c", "{}", by_meta.body);
    let counted = call(
        &env.alice,
        Method::GET,
        "/volumes?with_count=true&limit=1",
        Some("3.45"),
        None,
    )
    .await;
    assert_eq!(counted.body["count"], 3, "{}", counted.body);
    let strict = call(
        &env.alice,
        Method::GET,
        "/volumes?colour=red",
        Some("3.31"),
        None,
    )
    .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST, "{}", strict.body);
    let bad_marker = get(&env.alice, "/volumes?marker=nope").await;
    assert_eq!(
        bad_marker.status,
        StatusCode::NOT_FOUND,
        "{}",
        bad_marker.body
    );

    // Bob sees none of them; the admin sees them with all_tenants.
    let bobs = get(&env.bob, "/volumes").await;
    assert_eq!(bobs.body["volumes"], json!([]));
    let all = get(&env.admin, "/volumes?all_tenants=1").await;
    assert_eq!(all.body["volumes"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn isolation_roles_quotas_and_bad_input() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let made = post(&env.alice, "/volumes", json!({"volume": {"size": 1}})).await;
    let id = made.id("volume");
    available(&env.alice, &id).await;

    // Another project's caller: not found, whatever the verb.
    for (method, path, body) in [
        (Method::GET, format!("/volumes/{id}"), None),
        (
            Method::PUT,
            format!("/volumes/{id}"),
            Some(json!({"volume": {"name": "x"}})),
        ),
        (Method::DELETE, format!("/volumes/{id}"), None),
        (
            Method::POST,
            format!("/volumes/{id}/action"),
            Some(json!({"os-extend": {"new_size": 5}})),
        ),
        (Method::GET, format!("/volumes/{id}/metadata"), None),
    ] {
        let reply = call(&env.bob, method.clone(), &path, None, body).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.body["itemNotFound"]["code"], 404, "{}", reply.body);
    }
    // A reader reads and cannot write; a member cannot reset status or make types.
    let admin_token = cloud.admin_token().await;
    let reader_role = cloud.role_id(&admin_token, "reader").await;
    let rita = cloud
        .post(
            "/users",
            &admin_token,
            json!({"user": {"name": "rita", "password": "pw-rita"}}),
        )
        .await
        .id("user");
    cloud
        .put(
            &format!(
                "/projects/{}/users/{rita}/roles/{reader_role}",
                env.alice_project
            ),
            &admin_token,
        )
        .await;
    let rita = Client::new(&cloud, &cloud.token("rita", "pw-rita", "alice").await);
    assert_eq!(
        get(&rita, &format!("/volumes/{id}")).await.status,
        StatusCode::OK
    );
    let refused = post(&rita, "/volumes", json!({"volume": {"size": 1}})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let reset = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-reset_status": {"status": "error"}}),
    )
    .await;
    assert_eq!(reset.status, StatusCode::FORBIDDEN, "{}", reset.body);
    let typed = post(
        &env.alice,
        "/types",
        json!({"volume_type": {"name": "mine"}}),
    )
    .await;
    assert_eq!(typed.status, StatusCode::FORBIDDEN, "{}", typed.body);

    // Quotas: 413 overLimit, and nothing made.
    let set = call(
        &env.admin,
        Method::PUT,
        &format!("/os-quota-sets/{}", env.alice_project),
        None,
        Some(json!({"quota_set": {"volumes": 1, "gigabytes": 10}})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["quota_set"]["volumes"], 1);
    let over = post(&env.alice, "/volumes", json!({"volume": {"size": 1}})).await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.body);
    assert!(
        over.body["overLimit"]["message"]
            .as_str()
            .unwrap()
            .starts_with("VolumeLimitExceeded"),
        "{}",
        over.body
    );
    let too_big = post(
        &env.alice,
        &format!("/volumes/{id}/action"),
        json!({"os-extend": {"new_size": 11}}),
    )
    .await;
    assert_eq!(
        too_big.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_big.body
    );
    let usage = get(
        &env.alice,
        &format!("/os-quota-sets/{}?usage=true", env.alice_project),
    )
    .await;
    assert_eq!(
        usage.body["quota_set"]["volumes"],
        json!({"limit": 1, "in_use": 1, "reserved": 0})
    );
    let limits = get(&env.alice, "/limits").await;
    assert_eq!(limits.body["limits"]["absolute"]["maxTotalVolumes"], 1);
    assert_eq!(limits.body["limits"]["absolute"]["totalGigabytesUsed"], 1);
    let listed = get(&env.alice, "/volumes").await;
    assert_eq!(listed.body["volumes"].as_array().unwrap().len(), 1);

    // An admin resets a status, but never into one that starts the agent's work.
    let action = format!("/volumes/{id}/action");
    for (status, expect) in [
        ("deleting", StatusCode::BAD_REQUEST),
        ("creating", StatusCode::BAD_REQUEST),
        ("error_restoring", StatusCode::ACCEPTED),
        ("available", StatusCode::ACCEPTED),
    ] {
        let reset = post(
            &env.admin,
            &action,
            json!({"os-reset_status": {"status": status}}),
        )
        .await;
        assert_eq!(reset.status, expect, "{status}: {}", reset.body);
    }
    assert!(file_of(&cloud, &id).exists());

    // Bad input: 400 with Cinder's envelope, never a 500.
    for body in [
        json!({"volume": {"size": 0}}),
        json!({"volume": {"size": "big"}}),
        json!({"volume": {}}),
        json!({"volume": {"size": 1, "name": "x".repeat(256)}}),
        json!({"volume": {"size": 1, "metadata": {"k": 5}}}),
        json!({"volume": {"size": 1, "availability_zone": "elsewhere"}}),
        json!({"volume": {"size": 1, "multiattach": true}}),
        json!({"volume": "x"}),
        json!([]),
    ] {
        let reply = post(&env.admin, "/volumes", body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.body["badRequest"]["code"], 400, "{}", reply.body);
    }
    let no_type = post(
        &env.admin,
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": "gold"}}),
    )
    .await;
    assert_eq!(no_type.status, StatusCode::NOT_FOUND, "{}", no_type.body);
    let strict = call(
        &env.admin,
        Method::POST,
        "/volumes",
        Some("3.53"),
        Some(json!({"volume": {"size": 1, "colour": "red"}})),
    )
    .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST, "{}", strict.body);
}

#[tokio::test]
async fn volume_types_and_their_extra_specs() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let default = get(&env.alice, "/types/default").await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.body);
    assert_eq!(default.body["volume_type"]["name"], "__DEFAULT__");
    assert!(default.body["volume_type"].get("qos_specs_id").is_none());

    let made = post(
        &env.admin,
        "/types",
        json!({"volume_type": {"name": "gold", "description": "fast",
        "extra_specs": {"multiattach": "<is> False", "secret": "x"}}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let gold = made.id("volume_type");
    let again = post(
        &env.admin,
        "/types",
        json!({"volume_type": {"name": "gold"}}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    // Members see only the user-visible specs.
    let seen = get(&env.alice, &format!("/types/{gold}")).await;
    assert_eq!(
        seen.body["volume_type"]["extra_specs"],
        json!({"multiattach": "<is> False"})
    );
    let specs = get(&env.admin, &format!("/types/{gold}/extra_specs")).await;
    assert_eq!(specs.body["extra_specs"]["secret"], "x");
    let put = call(
        &env.admin,
        Method::PUT,
        &format!("/types/{gold}/extra_specs/secret"),
        None,
        Some(json!({"secret": "y"})),
    )
    .await;
    assert_eq!(put.body, json!({"secret": "y"}));
    let removed = call(
        &env.admin,
        Method::DELETE,
        &format!("/types/{gold}/extra_specs/secret"),
        None,
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::ACCEPTED);

    // A volume of the type, by name; the type cannot go while it is used.
    let volume = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "volume_type": "gold"}}),
    )
    .await;
    assert_eq!(volume.status, StatusCode::ACCEPTED, "{}", volume.body);
    assert_eq!(volume.body["volume"]["volume_type"], "gold");
    let busy = call(
        &env.admin,
        Method::DELETE,
        &format!("/types/{gold}"),
        None,
        None,
    )
    .await;
    assert_eq!(busy.status, StatusCode::BAD_REQUEST, "{}", busy.body);
    let default_id = default.body["volume_type"]["id"].as_str().unwrap();
    let keep = call(
        &env.admin,
        Method::DELETE,
        &format!("/types/{default_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(keep.status, StatusCode::BAD_REQUEST, "{}", keep.body);

    // A private type is the admin's to see and use.
    let private = post(
        &env.admin,
        "/types",
        json!({"volume_type": {"name": "hidden", "os-volume-type-access:is_public": false}}),
    )
    .await;
    let hidden = private.id("volume_type");
    assert_eq!(
        get(&env.alice, &format!("/types/{hidden}")).await.status,
        StatusCode::NOT_FOUND
    );
    let names: Vec<String> = get(&env.alice, "/types").await.body["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.contains(&"hidden".to_owned()), "{names:?}");
    let zones = get(&env.alice, "/os-availability-zone").await;
    assert_eq!(zones.body["availabilityZoneInfo"][0]["zoneName"], "nova");
}

/// An active image of `alice`'s made from `data` in `disk_format`; returns its id.
async fn upload_image(client: &Client<'_>, name: &str, disk_format: &str, data: Vec<u8>) -> String {
    let created = client
        .send(
            Method::POST,
            "/image/v2/images",
            Some(
                json!({"name": name, "disk_format": disk_format, "container_format": "bare",
                        "min_ram": 64, "os_distro": "cirros"}),
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let uploaded = client
        .send_bytes(
            Method::PUT,
            &format!("/image/v2/images/{id}/file"),
            "application/octet-stream",
            data,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::NO_CONTENT, "{}", uploaded.body);
    id
}

#[tokio::test]
async fn a_volume_made_from_an_image_holds_its_data() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let dir = tempfile::tempdir().unwrap();
    // A raw image with a pattern in it, so that the copy can be compared byte for byte.
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let raw = dir.path().join("pattern.raw");
    std::fs::write(&raw, &data).unwrap();
    let image = upload_image(&env.alice, "pattern", "raw", data).await;

    let made = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "imageRef": image, "name": "from-image"}}),
    )
    .await;
    assert_eq!(made.status, StatusCode::ACCEPTED, "{}", made.body);
    let id = made.id("volume");
    let volume = available(&env.alice, &id).await;
    assert_eq!(volume["bootable"], "true");
    let meta = &volume["volume_image_metadata"];
    assert_eq!(meta["image_id"], image.as_str(), "{volume}");
    assert_eq!(meta["disk_format"], "raw");
    assert_eq!(meta["min_ram"], "64");
    assert_eq!(meta["os_distro"], "cirros");
    assert_eq!(virtual_size(&cloud, &id), GIB);
    // The image's bytes, then zeros to the volume's end.
    let same = crate::common::run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            raw.to_str().unwrap(),
            file_of(&cloud, &id).to_str().unwrap(),
        ],
    );
    assert!(
        same.status.success(),
        "{}",
        String::from_utf8_lossy(&same.stdout)
    );

    // An image larger than the volume, another project's private image, no such image:
    // 400, and nothing made.
    let big = dir.path().join("big.qcow2");
    crate::common::run_ok(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", big.to_str().unwrap(), "3G"],
    );
    let big = upload_image(&env.alice, "big", "qcow2", std::fs::read(&big).unwrap()).await;
    let small = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "imageRef": big}}),
    )
    .await;
    assert_eq!(small.status, StatusCode::BAD_REQUEST, "{}", small.body);
    assert_eq!(
        small.body["badRequest"]["message"],
        "Size of specified image 3 is larger than volume size 1."
    );
    let fits = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 3, "imageRef": big}}),
    )
    .await;
    assert_eq!(fits.status, StatusCode::ACCEPTED, "{}", fits.body);
    available(&env.alice, &fits.id("volume")).await;
    let foreign = post(
        &env.bob,
        "/volumes",
        json!({"volume": {"size": 1, "imageRef": image}}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::BAD_REQUEST, "{}", foreign.body);
    let missing = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "imageRef": "5a1c7e2e-0000-4000-8000-00000000a11e"}}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    let bobs = get(&env.bob, "/volumes").await;
    assert_eq!(bobs.body["volumes"], json!([]));
    let mine = get(&env.alice, "/volumes").await;
    assert_eq!(mine.body["volumes"].as_array().unwrap().len(), 2);
}

/// `qemu-img compare` of a raw file with a volume's or snapshot's qcow2 file.
fn same_data(raw: &std::path::Path, qcow2: &std::path::Path) -> bool {
    crate::common::run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            raw.to_str().unwrap(),
            qcow2.to_str().unwrap(),
        ],
    )
    .status
    .success()
}

fn backing_of(path: &std::path::Path) -> Option<String> {
    let out = crate::common::run(
        "qemu-img",
        &["info", "--output=json", "-U", path.to_str().unwrap()],
    );
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    info["backing-filename"].as_str().map(str::to_owned)
}

async fn snapshot_available(client: &Client<'_>, id: &str) -> Value {
    let path = format!("/snapshots/{id}");
    wait_for_reply(client, &path, "available", |r| {
        r.body["snapshot"]["status"] == "available"
    })
    .await
    .body["snapshot"]
        .clone()
}

#[tokio::test]
async fn snapshots_keep_a_point_in_time_and_volumes_grow_from_them() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 253) as u8).collect();
    let raw = dir.path().join("pattern.raw");
    std::fs::write(&raw, &data).unwrap();
    let image = upload_image(&env.alice, "pattern", "raw", data).await;
    let made = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"size": 1, "imageRef": image}}),
    )
    .await;
    let source = made.id("volume");
    available(&env.alice, &source).await;

    let taken = post(
        &env.alice,
        "/snapshots",
        json!({"snapshot": {"volume_id": source, "name": "before"}}),
    )
    .await;
    assert_eq!(taken.status, StatusCode::ACCEPTED, "{}", taken.body);
    assert_eq!(taken.body["snapshot"]["status"], "creating");
    let snap = taken.id("snapshot");
    let shown = snapshot_available(&env.alice, &snap).await;
    assert_eq!(shown["size"], 1);
    assert_eq!(shown["os-extended-snapshot-attributes:progress"], "100%");
    let snap_file = cloud
        .data_dir
        .join("volumes")
        .join(format!("snapshot-{snap}"));
    assert!(same_data(&raw, &snap_file));

    // The volume changes after the snapshot; the snapshot does not.
    crate::common::run_ok(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -P 0xff 0 64k",
            file_of(&cloud, &source).to_str().unwrap(),
        ],
    );
    assert!(!same_data(&raw, &file_of(&cloud, &source)));
    assert!(same_data(&raw, &snap_file));

    // A volume from the snapshot is an overlay on it (nothing copied), 2 GiB, bootable as
    // its source was; a volume from the volume is a copy of what the volume holds now.
    let from_snap = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"snapshot_id": snap, "size": 2}}),
    )
    .await;
    assert_eq!(from_snap.status, StatusCode::ACCEPTED, "{}", from_snap.body);
    let restored = from_snap.id("volume");
    let view = available(&env.alice, &restored).await;
    assert_eq!(view["snapshot_id"], snap.as_str());
    assert_eq!(view["bootable"], "true");
    assert_eq!(virtual_size(&cloud, &restored), 2 * GIB);
    assert!(
        backing_of(&file_of(&cloud, &restored)).is_some(),
        "an overlay"
    );
    assert!(same_data(&raw, &file_of(&cloud, &restored)));
    let cloned = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"source_volid": source}}),
    )
    .await;
    assert_eq!(cloned.status, StatusCode::ACCEPTED, "{}", cloned.body);
    let clone = cloned.id("volume");
    let view = available(&env.alice, &clone).await;
    assert_eq!(view["source_volid"], source.as_str());
    assert_eq!(view["size"], 1);
    let out = crate::common::run(
        "qemu-img",
        &[
            "compare",
            file_of(&cloud, &source).to_str().unwrap(),
            file_of(&cloud, &clone).to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let same_size = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"snapshot_id": snap}}),
    )
    .await;
    assert_eq!(same_size.status, StatusCode::ACCEPTED, "{}", same_size.body);
    available(&env.alice, &same_size.id("volume")).await;
    let smaller = post(
        &env.alice,
        "/volumes",
        json!({"volume": {"source_volid": restored, "size": 1}}),
    )
    .await;
    assert_eq!(smaller.status, StatusCode::BAD_REQUEST, "{}", smaller.body);

    // Listings: the summary has nine keys, the detail the extended attributes too.
    let listed = get(&env.alice, "/snapshots").await;
    let keys: Vec<&String> = listed.body["snapshots"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
    let detail = get(&env.alice, &format!("/snapshots/detail?volume_id={source}")).await;
    assert_eq!(
        detail.body["snapshots"][0]["os-extended-snapshot-attributes:project_id"],
        env.alice_project.as_str()
    );
    assert_eq!(
        get(&env.bob, "/snapshots").await.body["snapshots"],
        json!([])
    );
    let theirs = post(
        &env.bob,
        "/snapshots",
        json!({"snapshot": {"volume_id": source}}),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    assert_eq!(
        get(&env.bob, &format!("/snapshots/{snap}")).await.status,
        StatusCode::NOT_FOUND
    );
    let renamed = call(
        &env.alice,
        Method::PUT,
        &format!("/snapshots/{snap}"),
        None,
        Some(json!({"snapshot": {"name": "kept"}})),
    )
    .await;
    assert_eq!(renamed.body["snapshot"]["name"], "kept", "{}", renamed.body);
    let limits = get(&env.alice, "/limits").await;
    assert_eq!(limits.body["limits"]["absolute"]["totalSnapshotsUsed"], 1);

    // A volume with snapshots stays unless the delete cascades.
    let refused = call(
        &env.alice,
        Method::DELETE,
        &format!("/volumes/{source}"),
        None,
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    // Deleting the snapshot flattens the volume made from it first.
    let dropped = call(
        &env.alice,
        Method::DELETE,
        &format!("/snapshots/{snap}"),
        None,
        None,
    )
    .await;
    assert_eq!(dropped.status, StatusCode::ACCEPTED, "{}", dropped.body);
    let deadline = tokio::time::Instant::now() + WAIT;
    while get(&env.alice, &format!("/snapshots/{snap}")).await.status != StatusCode::NOT_FOUND {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the snapshot stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!snap_file.exists());
    assert!(
        backing_of(&file_of(&cloud, &restored)).is_none(),
        "flattened"
    );
    assert!(same_data(&raw, &file_of(&cloud, &restored)));

    // Cascade: the volume and its snapshot go together.
    let again = post(
        &env.alice,
        "/snapshots",
        json!({"snapshot": {"volume_id": clone}}),
    )
    .await;
    let again = again.id("snapshot");
    snapshot_available(&env.alice, &again).await;
    let cascade = call(
        &env.alice,
        Method::DELETE,
        &format!("/volumes/{clone}?cascade=true"),
        None,
        None,
    )
    .await;
    assert_eq!(cascade.status, StatusCode::ACCEPTED, "{}", cascade.body);
    wait_for(&env.alice, &clone, "gone", |r| {
        r.status == StatusCode::NOT_FOUND
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while get(&env.alice, &format!("/snapshots/{again}")).await.status != StatusCode::NOT_FOUND {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cascaded snapshot stayed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
