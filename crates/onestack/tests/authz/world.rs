//! One of each resource, owned by alice (a member of her project), and the path values
//! that point at them: the fixture the authorization tests aim at.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::Cloud;
use crate::compute;

/// A value for no resource at all, where alice has nothing to point at.
pub const NOTHING: &str = "5a1c7e2e-0000-4000-8000-00000000a11e";

/// Alice's resources, keyed by `<segment before the parameter>/{param}` as the paths name
/// them.
pub async fn alice_world(cloud: &Cloud, env: &compute::Env<'_>) -> HashMap<String, String> {
    let (alice, admin) = (&env.alice, &env.admin);
    let mut v: HashMap<String, String> = HashMap::new();
    let mut put = |k: &str, value: &str| {
        v.insert(k.to_owned(), value.to_owned());
    };

    let net = alice.network("net-a", "10.60.0.0/24").await;
    let image = alice.image("image-a", json!({})).await;
    let server = alice
        .boot_active(
            "vm-a",
            &image,
            json!({"networks": [{"uuid": net}], "metadata": {"role": "web"}}),
        )
        .await;
    let tagged = alice
        .at("2.26")
        .put_empty(&format!("/servers/{server}/tags/t1"))
        .await;
    assert_eq!(tagged.status, StatusCode::CREATED, "{}", tagged.body);
    let port = alice.compute_ports(&net).await[0]["id"]
        .as_str()
        .expect("the server's port")
        .to_owned();
    let actions = alice
        .get(&format!("/servers/{server}/os-instance-actions"))
        .await;
    let request = actions.body["instanceActions"][0]["request_id"]
        .as_str()
        .expect("the create action")
        .to_owned();
    let keypair = alice
        .post("/os-keypairs", json!({"keypair": {"name": "ak"}}))
        .await;
    assert_eq!(keypair.status, StatusCode::OK, "{}", keypair.body);
    let group = alice
        .post(
            "/os-server-groups",
            json!({"server_group": {"name": "ga", "policies": ["affinity"]}}),
        )
        .await;
    let group = group.id("server_group");
    let flavor = admin
        .post(
            "/flavors",
            json!({"flavor": {"name": "private-a", "ram": 64, "vcpus": 1, "disk": 1,
                              "os-flavor-access:is_public": false}}),
        )
        .await;
    let flavor = flavor.id("flavor");
    let access = admin
        .post(
            &format!("/flavors/{flavor}/action"),
            json!({"addTenantAccess": {"tenant": env.alice_project}}),
        )
        .await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.body);
    let specs = admin
        .post(
            &format!("/flavors/{flavor}/os-extra_specs"),
            json!({"extra_specs": {"k1": "v1"}}),
        )
        .await;
    assert_eq!(specs.status, StatusCode::OK, "{}", specs.body);

    let subnet = alice
        .send(
            Method::GET,
            &format!("/networking/v2.0/subnets?network_id={net}"),
            None,
        )
        .await;
    let subnet = subnet.body["subnets"][0]["id"]
        .as_str()
        .expect("subnet")
        .to_owned();
    let router = alice
        .send(
            Method::POST,
            "/networking/v2.0/routers",
            Some(json!({"router": {"name": "ra"}})),
        )
        .await;
    let router = router.id("router");
    let sg = alice
        .send(
            Method::POST,
            "/networking/v2.0/security-groups",
            Some(json!({"security_group": {"name": "sga"}})),
        )
        .await;
    let sg = sg.id("security_group");
    let rule = alice
        .send(
            Method::POST,
            "/networking/v2.0/security-group-rules",
            Some(
                json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
                                            "protocol": "tcp", "port_range_min": 22,
                                            "port_range_max": 22}}),
            ),
        )
        .await;
    let rule = rule.id("security_group_rule");

    let shared = env
        .bob
        .image("image-b", json!({"visibility": "shared"}))
        .await;
    let shared_with_alice = env
        .bob
        .send(
            Method::POST,
            &format!("/image/v2/images/{shared}/members"),
            Some(json!({"member": env.alice_project})),
        )
        .await;
    assert_eq!(
        shared_with_alice.status,
        StatusCode::OK,
        "{}",
        shared_with_alice.body
    );
    let external = admin.network("ext-a", "203.0.113.0/24").await;
    let made_external = admin
        .send(
            Method::PUT,
            &format!("/networking/v2.0/networks/{external}"),
            Some(json!({"network": {"router:external": true}})),
        )
        .await;
    assert_eq!(
        made_external.status,
        StatusCode::OK,
        "{}",
        made_external.body
    );
    let floating = alice
        .send(
            Method::POST,
            "/networking/v2.0/floatingips",
            Some(json!({"floatingip": {"floating_network_id": external}})),
        )
        .await;
    let floating = floating.id("floatingip");

    let domain = admin
        .send(
            Method::POST,
            "/identity/v3/domains",
            Some(json!({"domain": {"name": "domain-a"}})),
        )
        .await;
    let domain = domain.id("domain");
    let idgroup = admin
        .send(
            Method::POST,
            "/identity/v3/groups",
            Some(json!({"group": {"name": "group-a", "domain_id": "default"}})),
        )
        .await;
    let idgroup = idgroup.id("group");
    let member = cloud.role_id(&cloud.admin_token().await, "member").await;
    let reader = cloud.role_id(&cloud.admin_token().await, "reader").await;
    let app_cred = alice
        .send(
            Method::POST,
            &format!(
                "/identity/v3/users/{}/application_credentials",
                env.alice_user
            ),
            Some(json!({"application_credential": {"name": "ac"}})),
        )
        .await;
    let app_cred = app_cred.id("application_credential");
    let credential = alice
        .send(
            Method::POST,
            "/identity/v3/credentials",
            Some(
                json!({"credential": {"type": "cert", "user_id": env.alice_user,
                                       "project_id": env.alice_project, "blob": "alice-cert"}}),
            ),
        )
        .await;
    let credential = credential.id("credential");
    let ec2 = alice
        .send(
            Method::POST,
            &format!("/identity/v3/users/{}/credentials/OS-EC2", env.alice_user),
            Some(json!({"tenant_id": env.alice_project})),
        )
        .await;
    assert_eq!(ec2.status, StatusCode::CREATED, "{}", ec2.body);
    let ec2 = ec2.body["credential"]["access"]
        .as_str()
        .expect("the EC2 access key")
        .to_owned();

    let volume = alice
        .send(
            Method::POST,
            "/volume/v3/volumes",
            Some(json!({"volume": {"size": 1, "name": "vol-a", "metadata": {"role": "web"}}})),
        )
        .await;
    assert_eq!(volume.status, StatusCode::ACCEPTED, "{}", volume.body);
    let volume = volume.id("volume");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while alice
        .send(Method::GET, &format!("/volume/v3/volumes/{volume}"), None)
        .await
        .body["volume"]["status"]
        != "available"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "vol-a never became available"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let snapshot = alice
        .send(
            Method::POST,
            "/volume/v3/snapshots",
            Some(json!({"snapshot": {"volume_id": volume, "name": "snap-a"}})),
        )
        .await;
    assert_eq!(snapshot.status, StatusCode::ACCEPTED, "{}", snapshot.body);
    let snapshot = snapshot.id("snapshot");
    let backup = alice
        .send(
            Method::POST,
            "/volume/v3/backups",
            Some(json!({"backup": {"volume_id": volume, "name": "backup-a"}})),
        )
        .await;
    assert_eq!(backup.status, StatusCode::ACCEPTED, "{}", backup.body);
    let backup = backup.id("backup");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while alice
        .send(Method::GET, &format!("/volume/v3/backups/{backup}"), None)
        .await
        .body["backup"]["status"]
        != "available"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "backup-a never became available"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // A volume of its own for the transfer: the offer holds it `awaiting-transfer`.
    let offered = alice
        .send(
            Method::POST,
            "/volume/v3/volumes",
            Some(json!({"volume": {"size": 1, "name": "vol-t"}})),
        )
        .await;
    assert_eq!(offered.status, StatusCode::ACCEPTED, "{}", offered.body);
    let offered = offered.id("volume");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while alice
        .send(Method::GET, &format!("/volume/v3/volumes/{offered}"), None)
        .await
        .body["volume"]["status"]
        != "available"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "vol-t never became available"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let transfer = alice
        .send(
            Method::POST,
            "/volume/v3/os-volume-transfer",
            Some(json!({"transfer": {"volume_id": offered, "name": "transfer-a"}})),
        )
        .await;
    assert_eq!(transfer.status, StatusCode::ACCEPTED, "{}", transfer.body);
    let transfer = transfer.id("transfer");
    // A volume attached to the server, for the attachments API.
    let plugged = alice
        .send(
            Method::POST,
            "/volume/v3/volumes",
            Some(json!({"volume": {"size": 1, "name": "vol-att"}})),
        )
        .await;
    assert_eq!(plugged.status, StatusCode::ACCEPTED, "{}", plugged.body);
    let plugged = plugged.id("volume");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while alice
        .send(Method::GET, &format!("/volume/v3/volumes/{plugged}"), None)
        .await
        .body["volume"]["status"]
        != "available"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "vol-att never became available"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let attached = alice
        .at("2.89")
        .send(
            Method::POST,
            &format!("/compute/v2.1/servers/{server}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": plugged}})),
        )
        .await;
    assert_eq!(attached.status, StatusCode::OK, "{}", attached.body);
    let attachment = attached.body["volumeAttachment"]["attachment_id"]
        .as_str()
        .expect("an attachment id")
        .to_owned();
    let volume_type = admin
        .send(
            Method::POST,
            "/volume/v3/types",
            Some(json!({"volume_type": {"name": "type-a", "extra_specs": {"multiattach": "<is> False"}}})),
        )
        .await;
    assert_eq!(volume_type.status, StatusCode::OK, "{}", volume_type.body);
    let volume_type = volume_type.id("volume_type");

    for (key, value) in [
        ("volumes/{id}", volume.as_str()),
        ("snapshots/{id}", &snapshot),
        ("backups/{id}", &backup),
        ("attachments/{id}", &attachment),
        ("os-volume-transfer/{id}", &transfer),
        ("volume-transfers/{id}", &transfer),
        ("types/{id}", &volume_type),
        ("extra_specs/{key}", "multiattach"),
        ("servers/{id}", server.as_str()),
        ("ips/{network}", "net-a"),
        ("metadata/{key}", "role"),
        ("os-instance-actions/{request}", &request),
        ("os-interface/{port}", &port),
        ("os-volume_attachments/{volume}", volume.as_str()),
        ("tags/{tag}", "t1"),
        ("flavors/{id}", &flavor),
        ("os-extra_specs/{key}", "k1"),
        ("os-keypairs/{name}", "ak"),
        ("os-quota-sets/{project}", &env.alice_project),
        ("os-simple-tenant-usage/{project}", &env.alice_project),
        ("os-server-groups/{id}", &group),
        ("os-aggregates/{id}", "1"),
        ("networks/{id}", &net),
        ("subnets/{id}", &subnet),
        ("ports/{id}", &port),
        ("routers/{id}", &router),
        ("security-groups/{id}", &sg),
        ("security-group-rules/{id}", &rule),
        ("network-ip-availabilities/{id}", &net),
        ("agents/{id}", &net),
        ("quotas/{project_id}", &env.alice_project),
        ("v2.0/{collection}", "networks"),
        ("{collection}/{id}", &net),
        ("extensions/{alias}", "router"),
        ("capabilities/{host}", "a-host@file"),
        ("images/{id}", &image),
        ("members/{member_id}", &env.alice_project),
        ("users/{id}", &env.alice_user),
        ("application_credentials/{credential_id}", &app_cred),
        ("projects/{id}", &env.alice_project),
        ("projects/{target_id}", &env.alice_project),
        ("domains/{id}", &domain),
        ("domains/{target_id}", &domain),
        ("users/{actor_id}", &env.alice_user),
        ("groups/{actor_id}", &idgroup),
        ("groups/{id}", &idgroup),
        ("users/{user_id}", &env.alice_user),
        ("roles/{role_id}", &member),
        ("roles/{id}", &member),
        ("implies/{implied_id}", &reader),
        ("system/{actor}", "users"),
        ("{actor}/{actor_id}", &env.alice_user),
        ("regions/{id}", "RegionOne"),
        ("credentials/{id}", &credential),
        ("floatingips/{id}", &floating),
        ("shared/image", &shared),
        ("external/network", &external),
        ("OS-EC2/{access}", &ec2),
    ] {
        put(key, value);
    }
    v
}

/// `pattern` with each parameter replaced by alice's value for it, or by [`NOTHING`].
pub fn fill(pattern: &str, values: &HashMap<String, String>) -> String {
    let segments: Vec<&str> = pattern.split('/').collect();
    segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            if !segment.starts_with('{') {
                return (*segment).to_owned();
            }
            let previous = if i > 0 { segments[i - 1] } else { "" };
            values
                .get(&format!("{previous}/{segment}"))
                .cloned()
                .unwrap_or_else(|| NOTHING.to_owned())
        })
        .collect::<Vec<_>>()
        .join("/")
}
