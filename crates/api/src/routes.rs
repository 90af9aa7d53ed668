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
    let mut paths: Vec<String> = mounted_routes(router)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Every (method, path pattern) pair `router` mounts, sorted by path then method. The
/// methods are those of each route's `Allow` header, without the `HEAD` axum adds to a
/// `GET`.
pub fn mounted_routes<S>(router: &Router<S>) -> Vec<(String, String)> {
    let text = format!("{router:?}");
    let routes = text.split("fallback_router:").next().unwrap_or_default();
    let Some((endpoints, nodes)) = routes.split_once("node: Node") else {
        return Vec::new();
    };
    let mut methods = std::collections::HashMap::new();
    for piece in endpoints.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once(')') else {
            continue;
        };
        let allowed = rest
            .split_once("allow_header: Bytes(b\"")
            .and_then(|(_, tail)| tail.split_once('"'))
            .map(|(list, _)| list.to_owned());
        if let Some(list) = allowed {
            methods.insert(id.to_owned(), list);
        }
    }
    let mut pairs = Vec::new();
    for piece in nodes.split("RouteId(").skip(1) {
        let Some((id, rest)) = piece.split_once(')') else {
            continue;
        };
        let Some(path) = rest
            .strip_prefix(": \"")
            .and_then(|quoted| quoted.split_once('"'))
            .map(|(path, _)| path)
        else {
            continue;
        };
        if path.contains("__private__axum") {
            continue;
        }
        let list = methods.get(id).map(String::as_str).unwrap_or_default();
        let has_get = list.split(',').any(|m| m == "GET");
        for method in list.split(',').filter(|m| !m.is_empty()) {
            if !(method == "HEAD" && has_get) {
                pairs.push((method.to_owned(), path.to_owned()));
            }
        }
    }
    pairs.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    pairs.dedup();
    pairs
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

    #[test]
    fn lists_each_method_of_each_route() {
        let inner: Router = Router::new()
            .route("/users", get(|| async { "" }).post(|| async { "" }))
            .route("/users/{id}", get(|| async { "" }).delete(|| async { "" }));
        let app: Router = Router::new()
            .route("/", get(|| async { "" }))
            .nest("/v3", inner)
            .fallback(|| async { "" });
        let mounted = mounted_routes(&app);
        let pairs: Vec<(&str, &str)> = mounted
            .iter()
            .map(|(m, p)| (m.as_str(), p.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("GET", "/"),
                ("GET", "/v3/users"),
                ("POST", "/v3/users"),
                ("DELETE", "/v3/users/{id}"),
                ("GET", "/v3/users/{id}"),
            ]
        );
    }
}
