//! Role grants on projects, domains and the system, and `/v3/role_assignments`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, put};
use onestack_api::BaseUrl;
use serde_json::{Value, json};

use super::{Call, Params, Reply, bool_param};
use crate::error::{Error, Result};
use crate::model::{ActorType, Assignment, SYSTEM_ALL, TargetType};
use crate::ops::role_assignments::{AssignmentQuery, Named, RoleAssignment};
use crate::service::Identity;
use crate::views;

type Key = (TargetType, ActorType);

/// A grant's path ids: target (or actor type), actor and role.
type Ids = (String, String, String);

fn assignment(key: Key, target_id: String, actor_id: String, role_id: String) -> Assignment {
    Assignment {
        target_type: key.0,
        target_id,
        actor_type: key.1,
        actor_id,
        role_id,
        inherited: false,
    }
}

async fn grant(call: Call, a: Assignment) -> Result<StatusCode> {
    call.identity.grant_role(&call.ctx, a).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check(call: Call, a: Assignment) -> Result<StatusCode> {
    call.identity.check_grant(&call.ctx, a).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(call: Call, a: Assignment) -> Result<StatusCode> {
    call.identity.revoke_grant(&call.ctx, a).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_grants(call: Call, key: Key, target_id: String, actor_id: String) -> Reply {
    let target = (key.0, target_id.as_str());
    let actor = (key.1, actor_id.as_str());
    let roles = call.identity.list_grants(&call.ctx, target, actor).await?;
    let path = grant_path(key, &target_id, &actor_id);
    call.many("roles", &format!("{path}/roles"), views::role, &roles)
}

fn grant_path(key: Key, target_id: &str, actor_id: &str) -> String {
    let actor = match key.1 {
        ActorType::User => "users",
        ActorType::Group => "groups",
    };
    match key.0 {
        TargetType::Project => format!("projects/{target_id}/{actor}/{actor_id}"),
        TargetType::Domain => format!("domains/{target_id}/{actor}/{actor_id}"),
        TargetType::System => format!("system/{actor}/{actor_id}"),
    }
}

/// Routes for `/{projects|domains}/{id}/{users|groups}/{id}/roles[/{role_id}]`.
pub fn grant_routes() -> Router<Arc<Identity>> {
    let mut router = Router::new();
    for (target, target_type) in [
        ("projects", TargetType::Project),
        ("domains", TargetType::Domain),
    ] {
        for (actor, actor_type) in [("users", ActorType::User), ("groups", ActorType::Group)] {
            let key = (target_type, actor_type);
            let one = format!("/{target}/{{target_id}}/{actor}/{{actor_id}}/roles/{{role_id}}");
            let all = format!("/{target}/{{target_id}}/{actor}/{{actor_id}}/roles");
            router = router
                .route(
                    &one,
                    put(move |c: Call, Path((t, a, r)): Path<Ids>| async move {
                        grant(c, assignment(key, t, a, r)).await
                    })
                    .head(move |c: Call, Path((t, a, r)): Path<Ids>| async move {
                        check(c, assignment(key, t, a, r)).await
                    })
                    .get(move |c: Call, Path((t, a, r)): Path<Ids>| async move {
                        check(c, assignment(key, t, a, r)).await
                    })
                    .delete(
                        move |c: Call, Path((t, a, r)): Path<Ids>| async move {
                            revoke(c, assignment(key, t, a, r)).await
                        },
                    ),
                )
                .route(
                    &all,
                    get(
                        move |c: Call, Path((t, a)): Path<(String, String)>| async move {
                            list_grants(c, key, t, a).await
                        },
                    ),
                );
        }
    }
    router
}

fn system_key(actor: &str) -> Result<Key> {
    match actor {
        "users" => Ok((TargetType::System, ActorType::User)),
        "groups" => Ok((TargetType::System, ActorType::Group)),
        other => Err(Error::not_found("actor type", other)),
    }
}

/// The grant `/v3/system/{actor}/{actor_id}/roles/{role_id}` names.
fn system_grant((actor, actor_id, role_id): Ids) -> Result<Assignment> {
    let key = system_key(&actor)?;
    Ok(assignment(key, SYSTEM_ALL.into(), actor_id, role_id))
}

pub async fn grant_system(call: Call, Path(ids): Path<Ids>) -> Result<StatusCode> {
    grant(call, system_grant(ids)?).await
}

pub async fn check_system(call: Call, Path(ids): Path<Ids>) -> Result<StatusCode> {
    check(call, system_grant(ids)?).await
}

pub async fn revoke_system(call: Call, Path(ids): Path<Ids>) -> Result<StatusCode> {
    revoke(call, system_grant(ids)?).await
}

pub async fn list_system_grants(
    call: Call,
    Path((actor, actor_id)): Path<(String, String)>,
) -> Reply {
    let key = system_key(&actor)?;
    list_grants(call, key, SYSTEM_ALL.into(), actor_id).await
}

fn assignment_query(params: &Params) -> AssignmentQuery {
    AssignmentQuery {
        effective: bool_param(params, "effective").unwrap_or(false),
        include_names: bool_param(params, "include_names").unwrap_or(false),
        user_id: params.get("user.id").cloned(),
        group_id: params.get("group.id").cloned(),
        role_id: params.get("role.id").cloned(),
        project_id: params.get("scope.project.id").cloned(),
        domain_id: params.get("scope.domain.id").cloned(),
        system: params.contains_key("scope.system"),
        inherited: bool_param(params, "scope.OS-INHERIT:inherited_to") == Some(true),
    }
}

/// `GET /v3/role_assignments` with Keystone's filters, `effective` and `include_names`.
pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let rows = call
        .identity
        .list_role_assignments(&call.ctx, assignment_query(&params))
        .await?;
    call.many("role_assignments", "role_assignments", render, &rows)
}

/// `{"id"}`, with `"name"` and `"domain"` when they were found.
fn named(n: &Named) -> Value {
    let mut value = json!({ "id": n.id });
    if let Some(name) = &n.name {
        value["name"] = json!(name);
    }
    if let Some(domain) = &n.domain {
        value["domain"] = named(domain);
    }
    value
}

fn render(base: &BaseUrl, row: &RoleAssignment) -> Value {
    let a = &row.assignment;
    let (role_value, actor_value, target) = match &row.names {
        Some(names) => (
            named(&names.role),
            named(&names.actor),
            named(&names.target),
        ),
        None => (
            json!({ "id": a.role_id }),
            json!({ "id": a.actor_id }),
            json!({ "id": a.target_id }),
        ),
    };
    let scope = match a.target_type {
        TargetType::System => json!({ "system": { "all": true } }),
        TargetType::Domain => json!({ "domain": target }),
        TargetType::Project => json!({ "project": target }),
    };
    let (actor_type, actor_id) = match &row.via_group {
        Some(group_id) => (ActorType::Group, group_id.as_str()),
        None => (a.actor_type, a.actor_id.as_str()),
    };
    let grant_role = row.prior_role.as_deref().unwrap_or(&a.role_id);
    let mut links = json!({
        "assignment": views::url(base, &format!("{}/roles/{grant_role}", grant_path((a.target_type, actor_type), &a.target_id, actor_id))),
    });
    if let Some(group_id) = &row.via_group {
        links["membership"] = json!(views::url(
            base,
            &format!("groups/{group_id}/users/{}", a.actor_id)
        ));
    }
    if let Some(prior) = &row.prior_role {
        links["prior_role"] = json!(views::url(base, &format!("roles/{prior}")));
    }
    let mut item = json!({ "role": role_value, "scope": scope, "links": links });
    item[a.actor_type.as_str()] = actor_value;
    item
}
