//! What a project may have and see: quotas and limits, isolation between projects and
//! roles, the scheduler's refusals (NoValidHost, server groups), and the hosts.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Client, assert_nova_error, env, host_name, values};
use crate::common::Cloud;

fn ids(body: &Value) -> Vec<String> {
    values(body, "servers", "id")
}

/// Asserts a server went to ERROR because nothing could host it.
async fn assert_no_valid_host(client: &Client<'_>, id: &str) -> Value {
    let server = client.wait_status(id, "ERROR").await;
    assert_eq!(server["OS-EXT-STS:vm_state"], "error");
    let fault = &server["fault"];
    assert!(
        fault["message"]
            .as_str()
            .is_some_and(|m| m.contains("No valid host was found")),
        "{server}"
    );
    assert_eq!(fault["code"], 500, "{server}");
    server
}

// ---------------------------------------------------------------------------------------------
// Quotas and limits
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn quotas_refuse_the_server_too_many_and_limits_show_usage() {
    let cloud = Cloud::start().await;
    let e = env(&cloud).await;
    let (admin, alice, bob) = (&e.admin, &e.alice, &e.bob);
    let project = &e.alice_project;
    let image = alice.image("cirros", json!({})).await;
    let net = alice.network("private", "10.0.0.0/24").await;

    let defaults = alice
        .get(&format!("/os-quota-sets/{project}/defaults"))
        .await;
    assert_eq!(defaults.status, StatusCode::OK, "{}", defaults.body);
    assert_eq!(defaults.body["quota_set"]["instances"], 10);
    assert_eq!(defaults.body["quota_set"]["id"], project.as_str());

    // Only admins set quotas.
    let body = json!({"quota_set": {"instances": 1}});
    assert_nova_error(
        &alice
            .put(&format!("/os-quota-sets/{project}"), body.clone())
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    for bad in [
        json!({"quota_set": {"instances": -5}}),
        json!({"quota_set": {"instances": "many"}}),
        json!({"quota_set": {"bogus": 1}}),
        json!({"quota": {"instances": 1}}),
    ] {
        assert_nova_error(
            &admin.put(&format!("/os-quota-sets/{project}"), bad).await,
            StatusCode::BAD_REQUEST,
            "badRequest",
        );
    }
    let set = admin.put(&format!("/os-quota-sets/{project}"), body).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["quota_set"]["instances"], 1);
    assert_eq!(
        set.body["quota_set"]["cores"], 20,
        "others keep their defaults"
    );
    let shown = alice.get(&format!("/os-quota-sets/{project}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["quota_set"]["instances"], 1);
    assert_nova_error(
        &bob.get(&format!("/os-quota-sets/{project}")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // The first server fits, the second does not; its ports are not left behind.
    let networks = json!({"networks": [{"uuid": net}]});
    let first = alice.boot("one", &image, networks.clone()).await;
    let second = alice.create_server("two", &image, networks).await;
    assert_nova_error(&second, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        second.body["forbidden"]["message"]
            .as_str()
            .unwrap()
            .contains("Quota exceeded"),
        "{}",
        second.body
    );
    assert_eq!(ids(&alice.get("/servers").await.body), vec![first.clone()]);
    let ports = admin.compute_ports(&net).await;
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(ports[0]["device_id"], first.as_str());
    alice.wait_status(&first, "ACTIVE").await;

    // Usage in limits and the quota detail.
    let limits = alice.get("/limits").await;
    assert_eq!(limits.status, StatusCode::OK, "{}", limits.body);
    let absolute = &limits.body["limits"]["absolute"];
    assert_eq!(absolute["maxTotalInstances"], 1);
    assert_eq!(absolute["totalInstancesUsed"], 1);
    assert_eq!(absolute["maxTotalCores"], 20);
    assert_eq!(absolute["totalCoresUsed"], 1);
    assert_eq!(absolute["totalRAMUsed"], 512);
    assert_eq!(limits.body["limits"]["rate"], json!([]));
    let detail = alice.get(&format!("/os-quota-sets/{project}/detail")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_eq!(
        detail.body["quota_set"]["instances"],
        json!({"limit": 1, "in_use": 1, "reserved": 0})
    );
    assert_eq!(detail.body["quota_set"]["cores"]["in_use"], 1);
    assert_eq!(detail.body["quota_set"]["ram"]["in_use"], 512);
    // Another project's limits are for admins.
    assert_nova_error(
        &bob.get(&format!("/limits?tenant_id={project}")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let by_admin = admin.get(&format!("/limits?tenant_id={project}")).await;
    assert_eq!(
        by_admin.body["limits"]["absolute"]["totalInstancesUsed"], 1,
        "{}",
        by_admin.body
    );
    assert_eq!(
        bob.get("/limits").await.body["limits"]["absolute"]["totalInstancesUsed"],
        0
    );

    // Cores count too: m1.medium needs 2 of a quota of 1.
    let quota = admin
        .put(
            &format!("/os-quota-sets/{project}"),
            json!({"quota_set": {"instances": 5, "cores": 2}}),
        )
        .await;
    assert_eq!(quota.status, StatusCode::OK, "{}", quota.body);
    let cores = alice
        .create_server("big", &image, json!({"flavorRef": "3"}))
        .await;
    assert_nova_error(&cores, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        cores.body["forbidden"]["message"]
            .as_str()
            .unwrap()
            .contains("cores"),
        "{}",
        cores.body
    );

    // Reset: back to the defaults.
    assert_eq!(
        admin
            .delete(&format!("/os-quota-sets/{project}"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        alice.get(&format!("/os-quota-sets/{project}")).await.body["quota_set"]["instances"],
        10
    );
    let again = alice.boot("two", &image, json!({})).await;
    alice.wait_status(&again, "ACTIVE").await;
}

// ---------------------------------------------------------------------------------------------
// Isolation and roles
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn other_projects_and_readers_cannot_touch_servers() {
    let cloud = Cloud::start().await;
    let e = env(&cloud).await;
    let (admin, alice, bob) = (&e.admin, &e.alice, &e.bob);
    let image = alice.image("cirros", json!({})).await;
    let bobs_image = bob.image("cirros", json!({})).await;
    let id = alice.boot_active("alices", &image, json!({})).await;
    let bobs = bob.boot_active("bobs", &bobs_image, json!({})).await;

    // Bob: another project's server does not exist for him.
    let server = format!("/servers/{id}");
    for reply in [
        bob.get(&server).await,
        bob.put(&server, json!({"server": {"name": "mine"}})).await,
        bob.delete(&server).await,
        bob.action(&id, json!({"os-stop": null})).await,
        bob.action(&id, json!({"createImage": {"name": "x"}})).await,
        bob.get(&format!("{server}/metadata")).await,
        bob.get(&format!("{server}/ips")).await,
        bob.get(&format!("{server}/os-interface")).await,
        bob.get(&format!("{server}/os-instance-actions")).await,
    ] {
        assert_nova_error(&reply, StatusCode::NOT_FOUND, "itemNotFound");
    }
    assert_eq!(ids(&bob.get("/servers").await.body), vec![bobs.clone()]);
    assert_eq!(
        ids(&bob.get("/servers/detail").await.body),
        vec![bobs.clone()]
    );
    assert_eq!(alice.wait_status(&id, "ACTIVE").await["name"], "alices");

    // all_tenants is for admins; admins see every project's servers with it only.
    for member in [alice, bob] {
        assert_nova_error(
            &member.get("/servers?all_tenants=1").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_nova_error(
            &member.get("/servers/detail?all_tenants=True").await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    assert_eq!(admin.get("/servers").await.body["servers"], json!([]));
    let mut everyone = ids(&admin.get("/servers/detail?all_tenants=1").await.body);
    everyone.sort();
    let mut expected = vec![id.clone(), bobs.clone()];
    expected.sort();
    assert_eq!(everyone, expected);
    let just_bob = admin
        .get(&format!(
            "/servers?all_tenants=1&project_id={}",
            e.bob_project
        ))
        .await;
    assert_eq!(ids(&just_bob.body), vec![bobs.clone()]);
    assert_eq!(
        admin.server(&id).await["tenant_id"],
        e.alice_project.as_str()
    );

    // A reader of Alice's project reads, and changes nothing.
    let admin_token = cloud.admin_token().await;
    let rita = cloud
        .post(
            "/users",
            &admin_token,
            json!({"user": {"name": "rita", "domain_id": "default", "password": "pw-rita"}}),
        )
        .await;
    assert_eq!(rita.status, StatusCode::CREATED, "{}", rita.body);
    let reader_role = cloud.role_id(&admin_token, "reader").await;
    let grant = cloud
        .put(
            &format!(
                "/projects/{}/users/{}/roles/{reader_role}",
                e.alice_project,
                rita.id("user")
            ),
            &admin_token,
        )
        .await;
    assert_eq!(grant.status, StatusCode::NO_CONTENT, "{}", grant.body);
    let reader = Client::new(&cloud, &cloud.token("rita", "pw-rita", "alice").await);
    assert_eq!(ids(&reader.get("/servers").await.body), vec![id.clone()]);
    assert_eq!(reader.server(&id).await["id"], id.as_str());
    for reply in [
        reader.create_server("nope", &image, json!({})).await,
        reader.action(&id, json!({"os-stop": null})).await,
        reader.delete(&server).await,
        reader
            .put(&server, json!({"server": {"name": "renamed"}}))
            .await,
        reader
            .post(
                &format!("{server}/metadata"),
                json!({"metadata": {"a": "b"}}),
            )
            .await,
        reader
            .post(
                "/os-server-groups",
                json!({"server_group": {"name": "g", "policies": ["affinity"]}}),
            )
            .await,
    ] {
        assert_nova_error(&reply, StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(ids(&alice.get("/servers").await.body), vec![id.clone()]);
    assert_eq!(alice.server(&id).await["status"], "ACTIVE");

    // Server groups are per project too.
    let group = alice
        .post(
            "/os-server-groups",
            json!({"server_group": {"name": "g", "policies": ["affinity"]}}),
        )
        .await;
    assert_eq!(group.status, StatusCode::OK, "{}", group.body);
    let gid = group.body["server_group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/os-server-groups/{gid}");
    assert_nova_error(&bob.get(&path).await, StatusCode::NOT_FOUND, "itemNotFound");
    assert_nova_error(
        &bob.delete(&path).await,
        StatusCode::NOT_FOUND,
        "itemNotFound",
    );
    assert_eq!(
        bob.get("/os-server-groups").await.body["server_groups"],
        json!([])
    );
    assert_nova_error(
        &bob.post(
            "/servers",
            json!({"server": {"name": "in", "imageRef": bobs_image, "flavorRef": "1"},
                "os:scheduler_hints": {"group": gid}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "badRequest",
    );
    assert_eq!(alice.get(&path).await.status, StatusCode::OK);
    let all_groups = admin.get("/os-server-groups?all_projects=1").await;
    assert!(values(&all_groups.body, "server_groups", "id").contains(&gid));
}

// ---------------------------------------------------------------------------------------------
// Scheduler
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn scheduler_refuses_what_no_host_can_take_and_honours_groups() {
    let cloud = Cloud::start().await;
    let e = env(&cloud).await;
    let (admin, alice) = (&e.admin, &e.alice);
    let image = alice.image("cirros", json!({})).await;
    // The quota would refuse first otherwise.
    let unlimited = admin
        .put(
            &format!("/os-quota-sets/{}", e.alice_project),
            json!({"quota_set": {"cores": -1, "ram": -1}}),
        )
        .await;
    assert_eq!(unlimited.status, StatusCode::OK, "{}", unlimited.body);
    let huge = admin
        .post(
            "/flavors",
            json!({"flavor": {"name": "huge", "id": "huge", "ram": 512, "vcpus": 9999, "disk": 1}}),
        )
        .await;
    assert_eq!(huge.status, StatusCode::OK, "{}", huge.body);

    let too_big = alice
        .boot("too-big", &image, json!({"flavorRef": "huge"}))
        .await;
    let failed = assert_no_valid_host(alice, &too_big).await;
    assert!(
        failed["fault"].get("details").is_none(),
        "a 500 fault's details are for admins: {failed}"
    );
    assert!(
        admin.server(&too_big).await["fault"]["details"].is_string(),
        "admins see the details"
    );
    assert!(admin.server(&too_big).await["OS-EXT-SRV-ATTR:host"].is_null());
    // Never placed: deleting it is immediate.
    assert_eq!(
        alice.delete(&format!("/servers/{too_big}")).await.status,
        StatusCode::NO_CONTENT
    );
    alice.wait_gone(&too_big).await;

    // Anti-affinity on one host: the first fits, the second cannot.
    let bad_policy = alice
        .post(
            "/os-server-groups",
            json!({"server_group": {"name": "g", "policies": ["random"]}}),
        )
        .await;
    assert_nova_error(&bad_policy, StatusCode::BAD_REQUEST, "badRequest");
    assert_nova_error(
        &alice
            .post(
                "/os-server-groups",
                json!({"server_group": {"name": "g", "policies": ["affinity", "anti-affinity"]}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "badRequest",
    );
    let group = alice
        .post(
            "/os-server-groups",
            json!({"server_group": {"name": "spread", "policies": ["anti-affinity"]}}),
        )
        .await;
    assert_eq!(group.status, StatusCode::OK, "{}", group.body);
    let g = &group.body["server_group"];
    assert_eq!(g["name"], "spread");
    assert_eq!(g["policies"], json!(["anti-affinity"]));
    assert_eq!(g["members"], json!([]));
    let gid = g["id"].as_str().unwrap().to_owned();
    let hint = json!({"os:scheduler_hints": {"group": gid}});
    let boot_in = |name: &'static str, hint: Value| {
        let body = json!({"server": {"name": name, "imageRef": image, "flavorRef": "1"}});
        let mut body = body;
        if let (Some(b), Some(h)) = (body.as_object_mut(), hint.as_object()) {
            b.extend(h.clone());
        }
        alice.post("/servers", body)
    };
    let first = boot_in("first", hint.clone()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    let first = first.body["server"]["id"].as_str().unwrap().to_owned();
    alice.wait_status(&first, "ACTIVE").await;
    let second = boot_in("second", hint).await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    let second = second.body["server"]["id"].as_str().unwrap().to_owned();
    assert_no_valid_host(alice, &second).await;
    let shown = alice.get(&format!("/os-server-groups/{gid}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let members = shown.body["server_group"]["members"].as_array().unwrap();
    assert!(
        members.iter().any(|m| m == first.as_str()),
        "{}",
        shown.body
    );
    // 2.71 shows the group on the server.
    assert_eq!(
        alice.at("2.71").server(&first).await["server_groups"],
        json!([gid])
    );

    // Affinity: both on the same (only) host.
    let together = alice
        .at("2.64")
        .post(
            "/os-server-groups",
            json!({"server_group": {"name": "together", "policy": "affinity"}}),
        )
        .await;
    assert_eq!(together.status, StatusCode::OK, "{}", together.body);
    assert_eq!(together.body["server_group"]["policy"], "affinity");
    assert!(together.body["server_group"].get("policies").is_none());
    assert_nova_error(
        &alice
            .at("2.64")
            .post(
                "/os-server-groups",
                json!({"server_group": {"name": "old", "policies": ["affinity"]}}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "badRequest",
    );
    let tid = together.body["server_group"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hint = json!({"os:scheduler_hints": {"group": tid}});
    let mut hosts = Vec::new();
    for name in ["t1", "t2"] {
        let reply = boot_in(name, hint.clone()).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        let id = reply.body["server"]["id"].as_str().unwrap().to_owned();
        alice.wait_status(&id, "ACTIVE").await;
        hosts.push(admin.server(&id).await["OS-EXT-SRV-ATTR:host"].clone());
    }
    assert_eq!(hosts[0], hosts[1]);
    let members = alice.get(&format!("/os-server-groups/{tid}")).await;
    assert_eq!(
        members.body["server_group"]["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Deleting a group: 204, then 404.
    assert_eq!(
        alice
            .delete(&format!("/os-server-groups/{tid}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_nova_error(
        &alice.get(&format!("/os-server-groups/{tid}")).await,
        StatusCode::NOT_FOUND,
        "itemNotFound",
    );
}

// ---------------------------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn services_hypervisors_zones_and_usage() {
    let cloud = Cloud::start().await;
    let e = env(&cloud).await;
    let (admin, alice, bob) = (&e.admin, &e.alice, &e.bob);
    let image = alice.image("cirros", json!({})).await;
    let host = host_name(admin).await;

    // Services.
    let services = admin.get("/os-services").await;
    assert_eq!(services.status, StatusCode::OK, "{}", services.body);
    let list = services.body["services"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", services.body);
    let s = &list[0];
    assert_eq!(s["binary"], "nova-compute");
    assert_eq!(s["state"], "up");
    assert_eq!(s["status"], "enabled");
    assert_eq!(s["zone"], "nova");
    assert_eq!(s["id"], 1, "an integer id before 2.53");
    assert_nova_error(
        &alice.get("/os-services").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_eq!(
        admin.get("/os-services?binary=nova-scheduler").await.body["services"],
        json!([])
    );
    let modern = admin.at("2.53").get("/os-services").await;
    let service_id = modern.body["services"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&service_id).is_ok(), "{service_id}");

    // Disabled: nothing is placed there.
    assert_nova_error(
        &alice
            .at("2.53")
            .put(
                &format!("/os-services/{service_id}"),
                json!({"status": "disabled"}),
            )
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_nova_error(
        &admin
            .at("2.53")
            .put(
                &format!("/os-services/{service_id}"),
                json!({"status": "sleeping"}),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "badRequest",
    );
    let disabled = admin
        .at("2.53")
        .put(
            &format!("/os-services/{service_id}"),
            json!({"status": "disabled", "disabled_reason": "maintenance"}),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.body);
    assert_eq!(disabled.body["service"]["status"], "disabled");
    assert_eq!(disabled.body["service"]["disabled_reason"], "maintenance");
    assert_eq!(disabled.body["service"]["id"], service_id.as_str());
    let zones = alice.get("/os-availability-zone").await;
    assert_eq!(
        zones.body["availabilityZoneInfo"][0]["zoneState"]["available"], false,
        "{}",
        zones.body
    );
    let refused = alice.boot("refused", &image, json!({})).await;
    assert_no_valid_host(alice, &refused).await;
    let enabled = admin
        .at("2.53")
        .put(
            &format!("/os-services/{service_id}"),
            json!({"status": "enabled"}),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    assert_eq!(enabled.body["service"]["status"], "enabled");
    assert_eq!(enabled.body["service"]["disabled_reason"], Value::Null);
    let running = alice.boot_active("running", &image, json!({})).await;

    // Hypervisors: capacity and usage before 2.88, without them from 2.88.
    let hypervisors = admin.get("/os-hypervisors/detail").await;
    assert_eq!(hypervisors.status, StatusCode::OK, "{}", hypervisors.body);
    let h = &hypervisors.body["hypervisors"][0];
    assert_eq!(h["id"], 1);
    assert_eq!(h["hypervisor_hostname"], host.as_str());
    assert_eq!(h["state"], "up");
    assert_eq!(h["status"], "enabled");
    assert!(h["vcpus"].as_u64().is_some_and(|v| v >= 1), "{h}");
    assert!(h["memory_mb"].as_u64().is_some_and(|v| v >= 1), "{h}");
    assert_eq!(h["running_vms"], 1, "the ERROR server is on no host: {h}");
    assert_eq!(h["vcpus_used"], 1);
    assert_eq!(h["service"]["host"], host.as_str());
    let brief = admin.get("/os-hypervisors").await;
    assert!(brief.body["hypervisors"][0].get("vcpus").is_none());
    let at_88 = admin.at("2.88").get("/os-hypervisors/detail").await;
    let h88 = &at_88.body["hypervisors"][0];
    for gone in [
        "vcpus",
        "memory_mb",
        "running_vms",
        "vcpus_used",
        "local_gb",
    ] {
        assert!(h88.get(gone).is_none(), "{gone} at 2.88: {h88}");
    }
    assert_eq!(h88["hypervisor_hostname"], host.as_str());
    let uuid_id = h88["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&uuid_id).is_ok(), "{uuid_id}");
    let one = admin
        .at("2.53")
        .get(&format!("/os-hypervisors/{uuid_id}"))
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(one.body["hypervisor"]["hypervisor_hostname"], host.as_str());
    assert_nova_error(
        &admin.at("2.53").get("/os-hypervisors/nope").await,
        StatusCode::NOT_FOUND,
        "itemNotFound",
    );
    assert_nova_error(
        &alice.get("/os-hypervisors/detail").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Availability zones.
    let zones = alice.get("/os-availability-zone").await;
    assert_eq!(zones.status, StatusCode::OK, "{}", zones.body);
    assert_eq!(
        zones.body["availabilityZoneInfo"],
        json!([{"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}])
    );
    assert_nova_error(
        &alice.get("/os-availability-zone/detail").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let detail = admin.get("/os-availability-zone/detail").await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let hosts = &detail.body["availabilityZoneInfo"][0]["hosts"];
    assert_eq!(
        hosts[host.as_str()]["nova-compute"]["available"],
        true,
        "{hosts}"
    );
    assert_eq!(
        hosts[host.as_str()]["nova-compute"]["active"],
        true,
        "{hosts}"
    );

    // Usage per project.
    let usage = alice
        .get(&format!("/os-simple-tenant-usage/{}", e.alice_project))
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.body);
    let u = &usage.body["tenant_usage"];
    assert_eq!(u["tenant_id"], e.alice_project.as_str());
    assert!(u["total_hours"].as_f64().is_some(), "{u}");
    let servers = u["server_usages"].as_array().unwrap();
    let mine = servers
        .iter()
        .find(|s| s["instance_id"] == running.as_str())
        .unwrap_or_else(|| panic!("no usage of {running}: {u}"));
    assert_eq!(mine["name"], "running");
    assert_eq!(mine["flavor"], "m1.tiny");
    assert_eq!(mine["vcpus"], 1);
    assert_eq!(mine["memory_mb"], 512);
    assert_eq!(mine["state"], "active");
    assert_nova_error(
        &bob.get(&format!("/os-simple-tenant-usage/{}", e.alice_project))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_nova_error(
        &alice.get("/os-simple-tenant-usage").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let everyone = admin.get("/os-simple-tenant-usage").await;
    assert_eq!(everyone.status, StatusCode::OK, "{}", everyone.body);
    assert!(
        values(&everyone.body, "tenant_usages", "tenant_id").contains(&e.alice_project),
        "{}",
        everyone.body
    );
    assert_nova_error(
        &alice
            .get(&format!(
                "/os-simple-tenant-usage/{}?start=2030-01-01T00:00:00&end=2020-01-01T00:00:00",
                e.alice_project
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "badRequest",
    );
}

/// `os-simple-tenant-usage` reports a server's `state` as its vm_state in Nova
/// (`info['state'] = instance.vm_state` in
/// nova/api/openstack/compute/simple_tenant_usage.py: "active", "stopped", "error"...).
#[tokio::test]
async fn usage_reports_the_vm_state() {
    let cloud = Cloud::start().await;
    let e = env(&cloud).await;
    let alice = &e.alice;
    let image = alice.image("cirros", json!({})).await;
    let id = alice.boot_active("stopped", &image, json!({})).await;
    assert_eq!(
        alice.action(&id, json!({"os-stop": null})).await.status,
        StatusCode::ACCEPTED
    );
    alice.wait_status(&id, "SHUTOFF").await;
    let usage = alice
        .get(&format!("/os-simple-tenant-usage/{}", e.alice_project))
        .await;
    assert_eq!(usage.status, StatusCode::OK, "{}", usage.body);
    let server = &usage.body["tenant_usage"]["server_usages"][0];
    assert_eq!(server["instance_id"], id.as_str());
    assert_eq!(server["state"], "stopped", "{server}");
}
