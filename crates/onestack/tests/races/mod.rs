//! Races, with a multi-threaded runtime and many clients at once (not interleaved on one
//! thread): concurrent creates against a nearly full quota never overshoot it, two servers
//! never get one port, and concurrent deletes of one resource end with one success and
//! 404s for the rest; two controllers on one database (`controllers`) do the same.

mod controllers;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Cloud, Reply};
use crate::compute::{self, Client};

/// How many clients race for each resource.
const CLIENTS: usize = 16;

/// Sends the same request from `CLIENTS` clients at once; returns their answers.
async fn all_at_once(
    client: &Client<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Vec<Reply> {
    join_all((0..CLIENTS).map(|_| client.send(method.clone(), path, body.clone()))).await
}

/// Sets `quota` (Neutron's names) for `project`, as the admin.
async fn network_quota(admin: &Client<'_>, project: &str, quota: Value) {
    let set = admin
        .send(
            Method::PUT,
            &format!("/networking/v2.0/quotas/{project}"),
            Some(json!({ "quota": quota })),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
}

/// A new port of the caller on `network`; its id.
async fn new_port(client: &Client<'_>, network: &str) -> String {
    client
        .send(
            Method::POST,
            "/networking/v2.0/ports",
            Some(json!({"port": {"network_id": network}})),
        )
        .await
        .id("port")
}

/// Sets Nova's `quota` for `project` as the admin, then asks for `CLIENTS` servers at once
/// (no network, so ports play no part); each answer is 202 or 403 (over quota).
async fn servers_against_quota(
    admin: &Client<'_>,
    alice: &Client<'_>,
    project: &str,
    quota: Value,
    image: &str,
) -> Vec<Reply> {
    let set = admin
        .put(
            &format!("/os-quota-sets/{project}"),
            json!({ "quota_set": quota }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let body = json!({"server": {"name": "r", "imageRef": image, "flavorRef": "1",
                                 "networks": "none"}});
    let replies = all_at_once(
        &alice.at("2.37"),
        Method::POST,
        "/compute/v2.1/servers",
        Some(body),
    )
    .await;
    only(&replies, &[StatusCode::ACCEPTED, StatusCode::FORBIDDEN]);
    replies
}

/// How many ports the caller's project has.
async fn port_count(client: &Client<'_>) -> usize {
    client
        .send(Method::GET, "/networking/v2.0/ports", None)
        .await
        .body["ports"]
        .as_array()
        .map_or(0, Vec::len)
}

fn count(replies: &[Reply], status: StatusCode) -> usize {
    replies.iter().filter(|r| r.status == status).count()
}

/// Every answer is one of `allowed`, and none is a 500.
fn only(replies: &[Reply], allowed: &[StatusCode]) {
    for r in replies {
        assert!(allowed.contains(&r.status), "{} {}", r.status, r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_overshoot_a_quota() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let (admin, alice) = (&env.admin, &env.alice);
    let project = &env.alice_project;

    // Ports: 4 allowed (the network's DHCP port counts, as in Neutron), 16 asked at once.
    let net = alice.network("race", "10.61.0.0/24").await;
    let existing = port_count(alice).await;
    network_quota(admin, project, json!({"port": 4})).await;
    let replies = all_at_once(
        alice,
        Method::POST,
        "/networking/v2.0/ports",
        Some(json!({"port": {"network_id": net}})),
    )
    .await;
    only(&replies, &[StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(
        count(&replies, StatusCode::CREATED),
        4 - existing,
        "ports created"
    );
    assert_eq!(port_count(alice).await, 4);

    // Servers: 3 instances allowed, 16 asked at once.
    let image = alice.image("race-image", json!({})).await;
    let replies =
        servers_against_quota(admin, alice, project, json!({"instances": 3}), &image).await;
    assert_eq!(count(&replies, StatusCode::ACCEPTED), 3, "servers accepted");
    let listed = alice.get("/servers").await;
    assert_eq!(listed.body["servers"].as_array().map(Vec::len), Some(3));

    // Cores: with room for 2 more vCPUs, 16 one-vCPU servers asked at once.
    let quota = json!({"instances": 100, "cores": 5});
    let replies = servers_against_quota(admin, alice, project, quota, &image).await;
    let servers = 3 + count(&replies, StatusCode::ACCEPTED);
    let listed = alice.get("/servers").await;
    assert_eq!(
        listed.body["servers"].as_array().map(Vec::len),
        Some(servers)
    );
    let flavor = alice.get("/flavors/1").await;
    let vcpus = flavor.body["flavor"]["vcpus"].as_u64().expect("vcpus") as usize;
    assert!(
        servers * vcpus <= 5,
        "{servers} servers of {vcpus} vCPUs within 5 cores"
    );

    // RAM: with room for two more m1.tiny, 16 asked at once.
    let ram = flavor.body["flavor"]["ram"].as_u64().expect("ram") as usize;
    let quota = json!({"cores": 100, "ram": (servers + 2) * ram});
    let replies = servers_against_quota(admin, alice, project, quota, &image).await;
    assert_eq!(
        count(&replies, StatusCode::ACCEPTED),
        2,
        "servers within the RAM quota"
    );
    let limits = alice.get("/limits").await;
    let used = limits.body["limits"]["absolute"]["totalRAMUsed"]
        .as_u64()
        .expect("RAM used") as usize;
    assert_eq!(used, (servers + 2) * ram, "{}", limits.body);
}

/// Glance's image count quota holds when many images are created at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_images_never_overshoot_the_image_count_quota() {
    let cloud = Cloud::start_with(|c| c.image.quota_image_count_total = 3).await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let replies = all_at_once(
        alice,
        Method::POST,
        "/image/v2/images",
        Some(json!({"name": "many", "disk_format": "raw", "container_format": "bare"})),
    )
    .await;
    only(
        &replies,
        &[StatusCode::CREATED, StatusCode::PAYLOAD_TOO_LARGE],
    );
    assert_eq!(count(&replies, StatusCode::CREATED), 3, "images created");
    let listed = alice.send(Method::GET, "/image/v2/images", None).await;
    assert_eq!(
        listed.body["images"].as_array().map(Vec::len),
        Some(3),
        "{}",
        listed.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_never_get_one_port() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let net = alice.network("one-port", "10.62.0.0/24").await;
    let port_id = new_port(alice, &net).await;
    let image = alice.image("port-image", json!({})).await;
    let body = json!({"server": {"name": "p", "imageRef": image, "flavorRef": "1",
                                 "networks": [{"port": port_id}]}});
    let replies = all_at_once(alice, Method::POST, "/compute/v2.1/servers", Some(body)).await;
    only(
        &replies,
        &[
            StatusCode::ACCEPTED,
            StatusCode::CONFLICT,
            StatusCode::BAD_REQUEST,
        ],
    );
    assert_eq!(
        count(&replies, StatusCode::ACCEPTED),
        1,
        "servers with the port"
    );
    let winner = replies
        .iter()
        .find(|r| r.status == StatusCode::ACCEPTED)
        .and_then(|r| r.body["server"]["id"].as_str())
        .expect("the accepted server")
        .to_owned();
    alice.wait_status(&winner, "ACTIVE").await;
    let shown = alice
        .send(
            Method::GET,
            &format!("/networking/v2.0/ports/{port_id}"),
            None,
        )
        .await;
    assert_eq!(
        shown.body["port"]["device_id"],
        winner.as_str(),
        "{}",
        shown.body
    );
    let listed = alice.get("/servers").await;
    assert_eq!(
        listed.body["servers"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deletes_end_with_one_success() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let net = alice.network("doomed", "10.63.0.0/24").await;
    let port_id = new_port(alice, &net).await;
    let group = alice
        .send(
            Method::POST,
            "/networking/v2.0/security-groups",
            Some(json!({"security_group": {"name": "doomed"}})),
        )
        .await;
    let group_id = group.body["security_group"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let image = alice.image("doomed-image", json!({})).await;
    let keypair = alice
        .post("/os-keypairs", json!({"keypair": {"name": "doomed"}}))
        .await;
    assert_eq!(keypair.status, StatusCode::OK, "{}", keypair.body);
    let server = alice
        .boot_active("doomed", &image, json!({"networks": "none"}))
        .await;
    for (path, gone) in [
        (
            format!("/networking/v2.0/ports/{port_id}"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/networking/v2.0/security-groups/{group_id}"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/networking/v2.0/networks/{net}"),
            StatusCode::NOT_FOUND,
        ),
        (format!("/image/v2/images/{image}"), StatusCode::NOT_FOUND),
        (
            "/compute/v2.1/os-keypairs/doomed".to_owned(),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let replies = all_at_once(alice, Method::DELETE, &path, None).await;
        only(
            &replies,
            &[StatusCode::NO_CONTENT, StatusCode::ACCEPTED, gone],
        );
        let done = count(&replies, StatusCode::NO_CONTENT) + count(&replies, StatusCode::ACCEPTED);
        assert_eq!(done, 1, "{path}: one delete succeeds");
        assert_eq!(
            count(&replies, gone),
            CLIENTS - 1,
            "{path}: the others find it gone"
        );
    }

    // A server stays while its teardown runs, so a repeated delete is accepted as Nova
    // accepts it; but only one delete acts, and the server ends gone.
    let replies = all_at_once(
        alice,
        Method::DELETE,
        &format!("/compute/v2.1/servers/{server}"),
        None,
    )
    .await;
    only(&replies, &[StatusCode::NO_CONTENT, StatusCode::NOT_FOUND]);
    alice.wait_gone(&server).await;
    // Since 2.21 the actions of a deleted server stay readable.
    let actions = alice
        .at("2.21")
        .get(&format!("/servers/{server}/os-instance-actions"))
        .await;
    let deletes = actions.body["instanceActions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["action"] == "delete")
        .count();
    assert_eq!(deletes, 1, "one delete acted: {}", actions.body);
    let path = format!("/servers/{server}/os-instance-actions");
    for (who, reply) in [
        ("before 2.21", alice.at("2.20").get(&path).await),
        ("another project", env.bob.at("2.21").get(&path).await),
    ] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{who}: {}", reply.body);
    }
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_floating_ips_never_overshoot_their_quota() {
    let cloud = Cloud::start_with(|c| {
        c.network
            .physical_interfaces
            .insert("physnet1".into(), "lo".into());
    })
    .await;
    let env = compute::env(&cloud).await;
    let (admin, alice) = (&env.admin, &env.alice);
    let public = admin
        .send(
            Method::POST,
            "/networking/v2.0/networks",
            Some(
                json!({"network": {"name": "public", "router:external": true,
                "provider:network_type": "flat", "provider:physical_network": "physnet1"}}),
            ),
        )
        .await;
    assert_eq!(public.status, StatusCode::CREATED, "{}", public.body);
    let public = public.body["network"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let subnet = admin
        .send(
            Method::POST,
            "/networking/v2.0/subnets",
            Some(
                json!({"subnet": {"network_id": public, "cidr": "198.51.100.0/24",
                "ip_version": 4, "enable_dhcp": false}}),
            ),
        )
        .await;
    assert_eq!(subnet.status, StatusCode::CREATED, "{}", subnet.body);
    network_quota(admin, &env.alice_project, json!({"floatingip": 3})).await;
    let replies = all_at_once(
        alice,
        Method::POST,
        "/networking/v2.0/floatingips",
        Some(json!({"floatingip": {"floating_network_id": public}})),
    )
    .await;
    only(&replies, &[StatusCode::CREATED, StatusCode::CONFLICT]);
    assert_eq!(
        count(&replies, StatusCode::CREATED),
        3,
        "floating IPs created"
    );
    let listed = alice
        .send(Method::GET, "/networking/v2.0/floatingips", None)
        .await;
    assert_eq!(listed.body["floatingips"].as_array().map(Vec::len), Some(3));
}

/// Resizes take their quota in the transaction that records them: four servers resized at
/// once to a flavor one vCPU larger, with room for one more vCPU, give exactly one resize.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resizes_never_overshoot_the_cores_quota() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let (admin, alice) = (&env.admin, &env.alice);
    let project = &env.alice_project;
    let image = alice.image("resize-image", json!({})).await;
    let mut servers = Vec::new();
    for i in 0..4 {
        let name = format!("rs{i}");
        servers.push(
            alice
                .boot_active(&name, &image, json!({"networks": "none"}))
                .await,
        );
    }
    let bigger = admin
        .post(
            "/flavors",
            json!({"flavor": {"name": "tiny-2cpu", "ram": 512, "vcpus": 2, "disk": 1}}),
        )
        .await
        .id("flavor");
    // m1.tiny has one vCPU: four servers use 4 cores; room for one more.
    let set = admin
        .put(
            &format!("/os-quota-sets/{project}"),
            json!({"quota_set": {"cores": 5}}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let at = alice.at("2.37");
    let paths: Vec<String> = servers
        .iter()
        .map(|id| format!("/compute/v2.1/servers/{id}/action"))
        .collect();
    let resizes = paths.iter().map(|path| {
        at.send(
            Method::POST,
            path,
            Some(json!({"resize": {"flavorRef": bigger}})),
        )
    });
    let replies = join_all(resizes).await;
    only(&replies, &[StatusCode::ACCEPTED, StatusCode::FORBIDDEN]);
    assert_eq!(count(&replies, StatusCode::ACCEPTED), 1, "resizes accepted");
    let limits = alice.get("/limits").await;
    let used = limits.body["limits"]["absolute"]["totalCoresUsed"]
        .as_i64()
        .expect("cores used");
    assert_eq!(used, 5, "{}", limits.body);
}

/// Tags added to one image at once are all kept (each write is compare-and-set on the row
/// it read, retried on a race, never a blind overwrite), and one member added by many
/// requests at once is added once: the others get 409, none a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_image_writes_lose_nothing() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let alice = &env.alice;
    let image = alice
        .send(
            Method::POST,
            "/image/v2/images",
            Some(json!({"name": "tagged", "disk_format": "raw", "container_format": "bare"})),
        )
        .await;
    assert_eq!(image.status, StatusCode::CREATED, "{}", image.body);
    let id = image.body["id"].as_str().expect("image id").to_owned();

    let tags: Vec<String> = (0..CLIENTS).map(|i| format!("tag-{i}")).collect();
    let paths: Vec<String> = tags
        .iter()
        .map(|tag| format!("/image/v2/images/{id}/tags/{tag}"))
        .collect();
    let replies = join_all(paths.iter().map(|p| alice.send(Method::PUT, p, None))).await;
    only(&replies, &[StatusCode::NO_CONTENT]);
    let shown = alice
        .send(Method::GET, &format!("/image/v2/images/{id}"), None)
        .await;
    let mut kept: Vec<String> = shown.body["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    kept.sort();
    let mut wanted = tags.clone();
    wanted.sort();
    assert_eq!(kept, wanted, "every concurrent tag kept");

    let replies = all_at_once(
        alice,
        Method::POST,
        &format!("/image/v2/images/{id}/members"),
        Some(json!({"member": "a-project-to-share-with"})),
    )
    .await;
    only(&replies, &[StatusCode::OK, StatusCode::CONFLICT]);
    assert_eq!(count(&replies, StatusCode::OK), 1, "one member added");
}
