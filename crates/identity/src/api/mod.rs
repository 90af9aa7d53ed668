//! The Identity v3 HTTP API: routes, what every handler starts from ([`Call`]), how it
//! replies ([`Reply`]), and the parsing helpers the handlers share.

mod app_credentials;
mod assignments;
mod auth;
mod catalog;
mod credentials;
mod domains;
mod groups;
mod projects;
mod roles;
mod users;
mod versions;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use http::request::Parts;
use http::{Method, StatusCode};
use onestack_api::error::{ErrorStyle, not_found, render_errors};
use onestack_api::{ApiError, AuthContext, BaseUrl, Fields};
use serde_json::{Value, json};

use crate::error::Result;
use crate::service::Identity;
use crate::views;

pub type Params = HashMap<String, String>;

/// What a handler starts from: the service, the base URL its links are built on and the
/// authenticated caller (extracted in that order; an unauthenticated request stops here).
pub struct Call {
    pub identity: Arc<Identity>,
    pub base: BaseUrl,
    pub ctx: AuthContext,
}

impl FromRequestParts<Arc<Identity>> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        identity: &Arc<Identity>,
    ) -> Result<Self, ApiError> {
        let base = BaseUrl::from_request_parts(parts, identity).await?;
        let ctx = AuthContext::from_request_parts(parts, identity).await?;
        Ok(Call {
            identity: identity.clone(),
            base,
            ctx,
        })
    }
}

/// A JSON body with its status code.
pub type Reply = Result<(StatusCode, Json<Value>)>;

impl Call {
    /// `{"<key>": view}` with `status`: one resource as shown, created or updated.
    pub fn one<T>(
        &self,
        status: StatusCode,
        key: &str,
        view: impl Fn(&BaseUrl, &T) -> Value,
        item: &T,
    ) -> Reply {
        Ok((status, Json(json!({ key: view(&self.base, item) }))))
    }

    /// `{"<key>": [views], "links": ...}`: the resources listed at `path`.
    pub fn many<T>(
        &self,
        key: &str,
        path: &str,
        view: impl Fn(&BaseUrl, &T) -> Value,
        items: &[T],
    ) -> Reply {
        let body = views::listing(&self.base, key, path, items, view);
        Ok((StatusCode::OK, Json(body)))
    }
}

/// Keystone's reading of boolean query parameters: anything but `0` or `false` is true.
pub fn is_true(value: Option<&String>) -> bool {
    value.is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

/// A boolean filter, `None` when absent.
pub fn bool_param(params: &Params, key: &str) -> Option<bool> {
    params.contains_key(key).then(|| is_true(params.get(key)))
}

/// A field that may be absent but, when present, must be a string (null is refused).
pub fn present_string(fields: &mut Fields, key: &str, max: usize) -> Result<Option<String>> {
    if fields.contains(key) {
        Ok(Some(fields.string(key, max)?))
    } else {
        Ok(None)
    }
}

/// A nullable field: `None` when absent, `Some(None)` when null, else a string.
pub fn present_nullable(fields: &mut Fields, key: &str) -> Result<Option<Option<String>>> {
    if fields.contains(key) {
        Ok(Some(fields.opt_string(key)?))
    } else {
        Ok(None)
    }
}

/// After any successful write, cached tokens, roles and catalog are stale.
async fn invalidate_on_write(
    State(identity): State<Arc<Identity>>,
    request: Request,
    next: Next,
) -> Response {
    let reads = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let issues_token =
        request.method() == Method::POST && request.uri().path().ends_with("/auth/tokens");
    let writes = !reads && !issues_token;
    let response = next.run(request).await;
    if writes && response.status().is_success() {
        identity.changed().await;
    }
    response
}

/// A known path with a method it does not have: Keystone's 405 error body.
async fn method_not_allowed() -> onestack_api::ApiError {
    onestack_api::ApiError::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}

/// The routes under the identity prefix (`/identity`).
pub fn router(identity: Arc<Identity>) -> Router {
    let limit = identity.config.max_request_body_size;
    let v3 = Router::new()
        .route("/", get(versions::v3))
        .route(
            "/auth/tokens",
            post(auth::issue)
                .get(auth::validate)
                .head(auth::check)
                .delete(auth::revoke),
        )
        .route("/auth/catalog", get(auth::catalog))
        .route("/auth/projects", get(auth::projects))
        .route("/auth/domains", get(auth::domains))
        .route("/auth/system", get(auth::system))
        .route("/domains", get(domains::list).post(domains::create))
        .route(
            "/domains/{id}",
            get(domains::show)
                .patch(domains::update)
                .delete(domains::delete),
        )
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{id}",
            get(projects::show)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/projects/{id}/tags",
            get(projects::list_tags)
                .put(projects::replace_tags)
                .delete(projects::clear_tags),
        )
        .route(
            "/projects/{id}/tags/{tag}",
            get(projects::check_tag)
                .head(projects::check_tag)
                .put(projects::add_tag)
                .delete(projects::remove_tag),
        )
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::show).patch(users::update).delete(users::delete),
        )
        .route("/users/{id}/password", post(users::change_password))
        .route("/users/{id}/projects", get(users::projects))
        .route("/users/{id}/groups", get(users::groups))
        .route(
            "/users/{id}/application_credentials",
            get(app_credentials::list).post(app_credentials::create),
        )
        .route(
            "/users/{id}/application_credentials/{credential_id}",
            get(app_credentials::show).delete(app_credentials::delete),
        )
        .route(
            "/users/{id}/credentials/OS-EC2",
            get(credentials::ec2_list).post(credentials::ec2_create),
        )
        .route(
            "/users/{id}/credentials/OS-EC2/{access}",
            get(credentials::ec2_show).delete(credentials::ec2_delete),
        )
        .route("/groups", get(groups::list).post(groups::create))
        .route(
            "/groups/{id}",
            get(groups::show)
                .patch(groups::update)
                .delete(groups::delete),
        )
        .route("/groups/{id}/users", get(groups::members))
        .route(
            "/groups/{id}/users/{user_id}",
            put(groups::add_member)
                .head(groups::check_member)
                .get(groups::check_member)
                .delete(groups::remove_member),
        )
        .route("/roles", get(roles::list).post(roles::create))
        .route(
            "/roles/{id}",
            get(roles::show).patch(roles::update).delete(roles::delete),
        )
        .route("/roles/{id}/implies", get(roles::list_implied))
        .route(
            "/roles/{id}/implies/{implied_id}",
            put(roles::add_implied)
                .get(roles::show_implied)
                .head(roles::check_implied)
                .delete(roles::remove_implied),
        )
        .route("/role_inferences", get(roles::inferences))
        .route("/role_assignments", get(assignments::list))
        .route(
            "/system/{actor}/{actor_id}/roles",
            get(assignments::list_system_grants),
        )
        .route(
            "/system/{actor}/{actor_id}/roles/{role_id}",
            put(assignments::grant_system)
                .head(assignments::check_system)
                .get(assignments::check_system)
                .delete(assignments::revoke_system),
        )
        .route(
            "/regions",
            get(catalog::list_regions).post(catalog::create_region),
        )
        .route(
            "/regions/{id}",
            get(catalog::show_region)
                .put(catalog::create_region_with_id)
                .patch(catalog::update_region)
                .delete(catalog::delete_region),
        )
        .route(
            "/services",
            get(catalog::list_services).post(catalog::create_service),
        )
        .route(
            "/services/{id}",
            get(catalog::show_service)
                .patch(catalog::update_service)
                .delete(catalog::delete_service),
        )
        .route(
            "/endpoints",
            get(catalog::list_endpoints).post(catalog::create_endpoint),
        )
        .route(
            "/endpoints/{id}",
            get(catalog::show_endpoint)
                .patch(catalog::update_endpoint)
                .delete(catalog::delete_endpoint),
        )
        .route(
            "/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/credentials/{id}",
            get(credentials::show)
                .patch(credentials::update)
                .delete(credentials::delete),
        )
        .merge(assignments::grant_routes())
        .method_not_allowed_fallback(method_not_allowed);

    Router::new()
        .route("/", get(versions::root))
        .nest("/v3", v3)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            identity.clone(),
            invalidate_on_write,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(|r, n| {
            render_errors(ErrorStyle::Keystone, r, n)
        }))
        .with_state(identity)
}
