//! Authorization over every route the server mounts, read from the routers themselves
//! (`Running::mounted_paths`), so a route added later is covered without an entry here.
//! For each path and each method it answers (a method it does not mount answers 405):
//! no token → 401, unless the policy table ([`policy::POLICY`]) says the route is public; a
//! reader's writes never succeed and never fail with a 500. `policy` checks each role
//! against the table, `cross_project` another project's caller against alice's resources.

mod cross_project;
mod openapi;
pub mod policy;
pub mod world;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::common::Cloud;

pub const METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// A made-up value for each `{param}`: a UUID-shaped id works for ids, names and tags.
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "5a1c7e2e-0000-4000-8000-00000000a11e"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether OpenStack serves the route without a token (version discovery and token issue).
pub fn is_public(method: &Method, pattern: &str) -> bool {
    policy::rule(method, pattern) == Some(policy::Rule::Public)
}

pub async fn send(cloud: &Cloud, method: &Method, path: &str, token: Option<&str>) -> StatusCode {
    let mut request = cloud
        .http
        .request(method.clone(), format!("{}{path}", cloud.url))
        .header("Content-Type", "application/json");
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    if ![Method::GET, Method::HEAD, Method::DELETE].contains(method) {
        request = request.body("{}");
    }
    request.send().await.expect("request is sent").status()
}

#[tokio::test]
async fn every_route_needs_a_token_and_no_reader_writes() {
    let cloud = Cloud::start().await;
    let paths = cloud
        .running
        .as_ref()
        .expect("the cloud is running")
        .mounted_paths();
    // A floor, so that a change in how routes are read cannot empty the test.
    assert!(
        paths.len() >= 130,
        "only {} paths found: {paths:?}",
        paths.len()
    );
    let admin = cloud.admin_token().await;
    cloud.tenant(&admin, "rita", "pw-rita", "reader").await;
    let reader = cloud.token("rita", "pw-rita", "rita").await;

    let mut routes = 0;
    let mut open = BTreeSet::new();
    let mut reader_wrote = BTreeSet::new();
    let mut server_errors = BTreeSet::new();
    for pattern in &paths {
        let path = concrete(pattern);
        for method in METHODS {
            let anonymous = send(&cloud, method, &path, None).await;
            if anonymous == StatusCode::METHOD_NOT_ALLOWED {
                continue;
            }
            routes += 1;
            let route = format!("{method} {pattern}");
            if anonymous.is_server_error() {
                server_errors.insert(format!("{route} (no token): {anonymous}"));
            }
            if anonymous != StatusCode::UNAUTHORIZED && !is_public(method, pattern) {
                open.insert(format!("{route}: {anonymous}"));
            }
            if [Method::GET, Method::HEAD].contains(method) || is_public(method, pattern) {
                continue;
            }
            let status = send(&cloud, method, &path, Some(&reader)).await;
            if status.is_success() {
                reader_wrote.insert(format!("{route}: {status}"));
            }
            if status.is_server_error() {
                server_errors.insert(format!("{route} (reader): {status}"));
            }
        }
    }
    println!(
        "routes covered: {routes} (method and path) on {} paths",
        paths.len()
    );
    assert!(open.is_empty(), "answered without a token: {open:#?}");
    assert!(reader_wrote.is_empty(), "a reader wrote: {reader_wrote:#?}");
    assert!(
        server_errors.is_empty(),
        "server errors: {server_errors:#?}"
    );
}

/// One request per service that any member may make.
const EVERY_SERVICE: &[&str] = &[
    "/identity/v3/auth/catalog",
    "/image/v2/images",
    "/networking/v2.0/networks",
    "/compute/v2.1/servers",
    "/volume/v3/volumes",
];

/// The statuses `token` gets from each service.
async fn answers(cloud: &Cloud, token: &str) -> Vec<(&'static str, StatusCode)> {
    let mut out = Vec::new();
    for path in EVERY_SERVICE {
        out.push((*path, send(cloud, &Method::GET, path, Some(token)).await));
    }
    out
}

fn all(statuses: &[(&'static str, StatusCode)], want: StatusCode) -> bool {
    statuses.iter().all(|(_, s)| *s == want)
}

/// Disabling a user, their project or their project's domain makes their tokens fail on
/// every service at once (one validator for all), and re-enabling does not bring them back.
#[tokio::test]
async fn a_disabled_user_project_or_domain_is_refused_everywhere() {
    let cloud = Cloud::start().await;
    let admin = cloud.admin_token().await;
    for (who, target) in [
        ("user", "users"),
        ("project", "projects"),
        ("domain", "domains"),
    ] {
        let name = format!("off-{who}");
        let domain_id = if who == "domain" {
            let made = cloud
                .post(
                    "/domains",
                    &admin,
                    serde_json::json!({"domain": {"name": name}}),
                )
                .await;
            assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
            made.id("domain")
        } else {
            "default".to_owned()
        };
        let project = cloud
            .post(
                "/projects",
                &admin,
                serde_json::json!({"project": {"name": name, "domain_id": domain_id}}),
            )
            .await
            .id("project");
        let user = cloud
            .post(
                "/users",
                &admin,
                serde_json::json!({"user": {"name": name, "domain_id": domain_id, "password": "pw-off"}}),
            )
            .await
            .id("user");
        let member = cloud.role_id(&admin, "member").await;
        let granted = cloud
            .put(
                &format!("/projects/{project}/users/{user}/roles/{member}"),
                &admin,
            )
            .await;
        assert_eq!(granted.status, StatusCode::NO_CONTENT, "{}", granted.body);
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "pw-off"}}},
            "scope": {"project": {"id": project}}}});
        let issued = cloud.auth_body(body).await;
        assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
        let token = issued.subject_token();
        let before = answers(&cloud, &token).await;
        assert!(all(&before, StatusCode::OK), "{who}: before: {before:?}");

        let id = match who {
            "user" => &user,
            "project" => &project,
            _ => &domain_id,
        };
        let off = cloud
            .patch(
                &format!("/{target}/{id}"),
                &admin,
                serde_json::json!({ who: {"enabled": false} }),
            )
            .await;
        assert_eq!(off.status, StatusCode::OK, "{}", off.body);
        let after = answers(&cloud, &token).await;
        assert!(
            all(&after, StatusCode::UNAUTHORIZED),
            "{who} disabled: {after:?}"
        );
        let on = cloud
            .patch(
                &format!("/{target}/{id}"),
                &admin,
                serde_json::json!({ who: {"enabled": true} }),
            )
            .await;
        assert_eq!(on.status, StatusCode::OK, "{}", on.body);
        let again = answers(&cloud, &token).await;
        assert!(
            all(&again, StatusCode::UNAUTHORIZED),
            "{who} enabled again, the old token: {again:?}"
        );
    }
}
