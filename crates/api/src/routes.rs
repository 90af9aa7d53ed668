//! The paths a router mounts, for the tests that must cover every route (authorization,
//! hostile input): a route added later is in the list without anyone writing it down.
//!
//! axum has no API to list routes; its `Debug` output names each path (`RouteId(3):
//! "/v3/users"`), which is what this reads. `lists_the_paths_of_nested_routers` below fails
//! if a new axum prints them otherwise.

use axum::Router;

/// Every path pattern `router` mounts (nested routers' with their prefix), sorted, without
/// axum's internal catch-alls.
pub fn mounted_paths<S>(router: &Router<S>) -> Vec<String> {
    let text = format!("{router:?}");
    // The routes proper come first; the fallback router's own paths after it do not count.
    let routes = text.split("fallback_router:").next().unwrap_or_default();
    let mut paths = Vec::new();
    for piece in routes.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once(')') else {
            continue;
        };
        let Some(quoted) = rest.strip_prefix(": \"") else {
            continue;
        };
        if !id.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Some((path, _)) = quoted.split_once('"')
            && !path.contains("__private__axum")
        {
            paths.push(path.to_owned());
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::*;

    #[test]
    fn lists_the_paths_of_nested_routers() {
        let inner: Router = Router::new()
            .route("/users", get(|| async { "" }).post(|| async { "" }))
            .route("/users/{id}", get(|| async { "" }));
        let app: Router = Router::new()
            .route("/", get(|| async { "" }))
            .nest("/v3", inner)
            .fallback(|| async { "" });
        assert_eq!(mounted_paths(&app), ["/", "/v3/users", "/v3/users/{id}"]);
    }
}
