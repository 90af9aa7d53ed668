//! Another project's caller on every resource-scoped route: alice (a member) owns one of
//! each resource, and bob (a member of another project) tries every method of every
//! mounted path with alice's ids in it. He never succeeds and never learns more than
//! "not found" or "forbidden" (404, 403, or 400/415 for a body refused before any lookup),
//! except where OpenStack lets any authenticated caller read ([`READABLE_BY_ANYONE`]).

use std::collections::{BTreeSet, HashMap};

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{METHODS, is_public, send};
use crate::common::Cloud;
use crate::compute;

/// Reads OpenStack allows any authenticated caller, whoever owns the target.
const READABLE_BY_ANYONE: &[&str] = &[
    // Keystone: identity:get_region is "" (regions are catalog data).
    "/identity/v3/regions/{id}",
    // Neutron: extensions describe the API, not a resource.
    "/networking/v2.0/extensions/{alias}",
    // Nova: os_compute_api:os-quota-sets:defaults is "@" (the defaults are no secret).
    "/compute/v2.1/os-quota-sets/{project}/defaults",
];

/// A value for no resource at all, where alice has nothing to point at.
const NOTHING: &str = "5a1c7e2e-0000-4000-8000-00000000a11e";

/// Alice's resources, keyed by `<segment before the parameter>/{param}` as the paths name
/// them.
async fn alice_world(cloud: &Cloud, env: &compute::Env<'_>) -> HashMap<String, String> {
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

    for (key, value) in [
        ("servers/{id}", server.as_str()),
        ("ips/{network}", "net-a"),
        ("metadata/{key}", "role"),
        ("os-instance-actions/{request}", &request),
        ("os-interface/{port}", &port),
        ("tags/{tag}", "t1"),
        ("flavors/{id}", &flavor),
        ("os-extra_specs/{key}", "k1"),
        ("os-keypairs/{name}", "ak"),
        ("os-quota-sets/{project}", &env.alice_project),
        ("os-simple-tenant-usage/{project}", &env.alice_project),
        ("os-server-groups/{id}", &group),
        ("networks/{id}", &net),
        ("subnets/{id}", &subnet),
        ("ports/{id}", &port),
        ("routers/{id}", &router),
        ("security-groups/{id}", &sg),
        ("security-group-rules/{id}", &rule),
        ("network-ip-availabilities/{id}", &net),
        ("quotas/{project_id}", &env.alice_project),
        ("v2.0/{collection}", "networks"),
        ("{collection}/{id}", &net),
        ("extensions/{alias}", "router"),
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
    ] {
        put(key, value);
    }
    v
}

/// `pattern` with each parameter replaced by alice's value for it, or by [`NOTHING`].
fn fill(pattern: &str, values: &HashMap<String, String>) -> String {
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

#[tokio::test]
async fn another_projects_caller_never_reaches_a_resource() {
    let cloud = Cloud::start().await;
    let env = compute::env(&cloud).await;
    let values = alice_world(&cloud, &env).await;
    let bob = cloud.token("bob", "pw-bob", "bob").await;
    let paths = cloud
        .running
        .as_ref()
        .expect("the cloud is running")
        .mounted_paths();

    let mut tried = 0;
    let mut reached = BTreeSet::new();
    for pattern in paths.iter().filter(|p| p.contains('{')) {
        let path = fill(pattern, &values);
        for method in METHODS {
            if is_public(method, pattern) {
                continue;
            }
            let status = send(&cloud, method, &path, Some(&bob)).await;
            if status == StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            tried += 1;
            let read = [Method::GET, Method::HEAD].contains(method);
            let allowed = if read && READABLE_BY_ANYONE.contains(&pattern.as_str()) {
                status.is_success() || status == StatusCode::NOT_FOUND
            } else {
                // 400 and 415: the body or its type refused before any lookup.
                [
                    StatusCode::BAD_REQUEST,
                    StatusCode::FORBIDDEN,
                    StatusCode::NOT_FOUND,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ]
                .contains(&status)
            };
            if !allowed {
                reached.insert(format!("{method} {path} ({pattern}): {status}"));
            }
        }
    }
    println!("resource-scoped routes tried as another project: {tried}");
    assert!(tried >= 150, "only {tried} routes tried");
    assert!(
        reached.is_empty(),
        "another project's caller got through: {reached:#?}"
    );
    // The resources are still alice's and untouched.
    let server = env.alice.server(&values["servers/{id}"]).await;
    assert_eq!(server["status"], "ACTIVE", "{server}");
    assert_eq!(server["metadata"]["role"], "web", "{server}");
}
