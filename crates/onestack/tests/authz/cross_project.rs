//! Another project's caller on every resource-scoped route: alice (a member) owns one of
//! each resource, and bob (a member of another project) tries every method of every
//! mounted path with alice's ids in it. He never succeeds and never learns more than
//! "not found" or "forbidden" (404, 403, or 400/415 for a body refused before any lookup),
//! except where OpenStack lets any authenticated caller read ([`READABLE_BY_ANYONE`]).

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use super::world::{alice_world, fill};
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
    // Cinder: public volume types (and their user-visible extra specs) are everyone's.
    "/volume/v3/types/{id}",
    "/volume/v3/types/{id}/extra_specs",
    "/volume/v3/types/{id}/extra_specs/{key}",
];

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
