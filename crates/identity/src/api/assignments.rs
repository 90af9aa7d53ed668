//! Role grants on projects, domains and the system, and `/v3/role_assignments`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use onestack_api::{AuthContext, BaseUrl};
use serde_json::{Value, json};

use super::{Params, bool_param, domain, group, project, role, user};
use crate::error::{Error, Result};
use crate::model::{ActorType, Assignment, Role, SYSTEM_ALL, TargetType};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store::assignments::AssignmentFilter;
use crate::{store, views};

type Key = (TargetType, ActorType);

/// Checks that the target, actor and role of a grant exist (404 naming the missing one).
async fn check_parts(identity: &Identity, a: &Assignment) -> Result<()> {
    match a.target_type {
        TargetType::Project => drop(project(identity, &a.target_id).await?),
        TargetType::Domain => drop(domain(identity, &a.target_id).await?),
        TargetType::System => {}
    }
    match a.actor_type {
        ActorType::User => drop(user(identity, &a.actor_id).await?),
        ActorType::Group => drop(group(identity, &a.actor_id).await?),
    }
    role(identity, &a.role_id).await?;
    Ok(())
}

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

async fn do_grant(identity: &Identity, ctx: &AuthContext, a: Assignment) -> Result<StatusCode> {
    enforce(ctx, "identity:create_grant", Target::default())?;
    check_parts(identity, &a).await?;
    store::assignments::grant(&identity.pool, &a).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn do_check(identity: &Identity, ctx: &AuthContext, a: Assignment) -> Result<StatusCode> {
    enforce(ctx, "identity:check_grant", Target::default())?;
    check_parts(identity, &a).await?;
    if store::assignments::exists(&identity.pool, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(
            "role assignment",
            format!("role {} for {} on {}", a.role_id, a.actor_id, a.target_id),
        ))
    }
}

async fn do_revoke(identity: &Identity, ctx: &AuthContext, a: Assignment) -> Result<StatusCode> {
    enforce(ctx, "identity:revoke_grant", Target::default())?;
    check_parts(identity, &a).await?;
    if store::assignments::revoke(&identity.pool, &a).await? {
        revoke_affected_tokens(identity, &a).await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(
            "role assignment",
            format!("role {} for {} on {}", a.role_id, a.actor_id, a.target_id),
        ))
    }
}

/// Tokens that relied on a removed grant stay invalid even if it is granted again, as in
/// Keystone: the user's (or each group member's) tokens on that project, or all their tokens
/// for a domain or system grant.
async fn revoke_affected_tokens(identity: &Identity, a: &Assignment) -> Result<()> {
    let users = match a.actor_type {
        ActorType::User => vec![a.actor_id.clone()],
        ActorType::Group => store::groups::member_ids(&identity.pool, &a.actor_id).await?,
    };
    for user_id in &users {
        match a.target_type {
            TargetType::Project => {
                identity
                    .revoke_project_tokens(&a.target_id, Some(user_id))
                    .await?
            }
            TargetType::Domain | TargetType::System => identity.revoke_user_tokens(user_id).await?,
        }
    }
    Ok(())
}

async fn do_list(
    identity: &Identity,
    base: &BaseUrl,
    ctx: &AuthContext,
    key: Key,
    target_id: String,
    actor_id: String,
) -> Result<Json<Value>> {
    enforce(ctx, "identity:list_grants", Target::default())?;
    let probe = assignment(key, target_id.clone(), actor_id.clone(), String::new());
    match key.0 {
        TargetType::Project => drop(project(identity, &target_id).await?),
        TargetType::Domain => drop(domain(identity, &target_id).await?),
        TargetType::System => {}
    }
    match key.1 {
        ActorType::User => drop(user(identity, &actor_id).await?),
        ActorType::Group => drop(group(identity, &actor_id).await?),
    }
    let filter = AssignmentFilter {
        actor: Some((probe.actor_type, actor_id.clone())),
        target: Some((probe.target_type, Some(target_id.clone()))),
        role_id: None,
    };
    let graph = identity.role_graph().await?;
    let roles: Vec<Value> = store::assignments::list(&identity.pool, &filter)
        .await?
        .iter()
        .filter(|a| !a.inherited)
        .filter_map(|a| graph.roles.get(&a.role_id))
        .map(|r| views::role(base, r))
        .collect();
    let path = grant_path(key, &target_id, &actor_id);
    Ok(Json(views::collection(
        base,
        "roles",
        &format!("{path}/roles"),
        roles,
    )))
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
                    put(move |State(i): State<Arc<Identity>>, c: AuthContext, Path((t, a, r)): Path<(String, String, String)>| async move {
                        do_grant(&i, &c, assignment(key, t, a, r)).await
                    })
                    .head(move |State(i): State<Arc<Identity>>, c: AuthContext, Path((t, a, r)): Path<(String, String, String)>| async move {
                        do_check(&i, &c, assignment(key, t, a, r)).await
                    })
                    .get(move |State(i): State<Arc<Identity>>, c: AuthContext, Path((t, a, r)): Path<(String, String, String)>| async move {
                        do_check(&i, &c, assignment(key, t, a, r)).await
                    })
                    .delete(move |State(i): State<Arc<Identity>>, c: AuthContext, Path((t, a, r)): Path<(String, String, String)>| async move {
                        do_revoke(&i, &c, assignment(key, t, a, r)).await
                    }),
                )
                .route(
                    &all,
                    get(move |State(i): State<Arc<Identity>>, b: BaseUrl, c: AuthContext, Path((t, a)): Path<(String, String)>| async move {
                        do_list(&i, &b, &c, key, t, a).await
                    }),
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

pub async fn grant_system(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((actor, actor_id, role_id)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    do_grant(
        &identity,
        &ctx,
        assignment(system_key(&actor)?, SYSTEM_ALL.into(), actor_id, role_id),
    )
    .await
}

pub async fn check_system(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((actor, actor_id, role_id)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    do_check(
        &identity,
        &ctx,
        assignment(system_key(&actor)?, SYSTEM_ALL.into(), actor_id, role_id),
    )
    .await
}

pub async fn revoke_system(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((actor, actor_id, role_id)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    do_revoke(
        &identity,
        &ctx,
        assignment(system_key(&actor)?, SYSTEM_ALL.into(), actor_id, role_id),
    )
    .await
}

pub async fn list_system_grants(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((actor, actor_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    do_list(
        &identity,
        &base,
        &ctx,
        system_key(&actor)?,
        SYSTEM_ALL.into(),
        actor_id,
    )
    .await
}

/// One row of `/v3/role_assignments`, with how it was derived when effective.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    assignment: Assignment,
    /// The group an effective user assignment came through.
    via_group: Option<String>,
    /// The role an implied role came from.
    prior_role: Option<String>,
}

/// `GET /v3/role_assignments` with Keystone's filters, `effective` and `include_names`.
pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let scope_domain = params.get("scope.domain.id").cloned();
    enforce(
        &ctx,
        "identity:list_role_assignments",
        Target {
            domain_id: scope_domain.as_deref(),
            ..Target::default()
        },
    )?;
    let effective = bool_param(&params, "effective").unwrap_or(false);
    let include_names = bool_param(&params, "include_names").unwrap_or(false);
    let user_id = params.get("user.id").cloned();
    let group_id = params.get("group.id").cloned();
    let role_id = params.get("role.id").cloned();
    if effective && group_id.is_some() {
        return Err(Error::validation(
            "'effective' cannot be combined with 'group.id'.",
        ));
    }
    if user_id.is_some() && group_id.is_some() {
        return Err(Error::validation(
            "Specify only one of 'user.id' and 'group.id'.",
        ));
    }
    let scopes = [
        params
            .get("scope.project.id")
            .map(|id| (TargetType::Project, Some(id.clone()))),
        scope_domain.map(|id| (TargetType::Domain, Some(id))),
        params
            .get("scope.system")
            .map(|_| (TargetType::System, Some(SYSTEM_ALL.to_owned()))),
    ];
    let mut targets = scopes.into_iter().flatten();
    let target = targets.next();
    if targets.next().is_some() {
        return Err(Error::validation("Specify only one scope filter."));
    }
    if bool_param(&params, "scope.OS-INHERIT:inherited_to") == Some(true) {
        return Ok(Json(views::collection(
            &base,
            "role_assignments",
            "role_assignments",
            Vec::new(),
        )));
    }
    let filter = AssignmentFilter {
        actor: match (&group_id, effective) {
            (Some(g), _) => Some((ActorType::Group, g.clone())),
            _ => None,
        },
        target,
        role_id: if effective { None } else { role_id.clone() },
    };
    let mut rows: Vec<Row> = store::assignments::list(&identity.pool, &filter)
        .await?
        .into_iter()
        .map(|assignment| Row {
            assignment,
            via_group: None,
            prior_role: None,
        })
        .collect();
    if effective {
        rows = expand(&identity, rows).await?;
    }
    rows.retain(|r| {
        user_id.as_ref().is_none_or(|u| {
            r.assignment.actor_type == ActorType::User && &r.assignment.actor_id == u
        }) && role_id
            .as_ref()
            .is_none_or(|id| &r.assignment.role_id == id)
    });
    let mut names = Names::default();
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        items.push(render(&identity, &base, row, include_names, &mut names).await?);
    }
    Ok(Json(views::collection(
        &base,
        "role_assignments",
        "role_assignments",
        items,
    )))
}

/// Replaces group assignments by their members' and adds implied roles.
async fn expand(identity: &Identity, rows: Vec<Row>) -> Result<Vec<Row>> {
    let mut users = Vec::new();
    for row in rows {
        if row.assignment.actor_type == ActorType::Group {
            for member in
                store::groups::member_ids(&identity.pool, &row.assignment.actor_id).await?
            {
                users.push(Row {
                    assignment: Assignment {
                        actor_type: ActorType::User,
                        actor_id: member,
                        ..row.assignment.clone()
                    },
                    via_group: Some(row.assignment.actor_id.clone()),
                    prior_role: None,
                });
            }
        } else {
            users.push(row);
        }
    }
    let graph = identity.role_graph().await?;
    let mut out: Vec<Row> = Vec::new();
    for row in users {
        for implied in graph.expand([row.assignment.role_id.clone()]) {
            let derived = Row {
                assignment: Assignment {
                    role_id: implied.id.clone(),
                    ..row.assignment.clone()
                },
                via_group: row.via_group.clone(),
                prior_role: (implied.id != row.assignment.role_id)
                    .then(|| row.assignment.role_id.clone()),
            };
            if !out.iter().any(|o| o.assignment == derived.assignment) {
                out.push(derived);
            }
        }
    }
    Ok(out)
}

/// Names looked up once per listing.
#[derive(Default)]
struct Names {
    cache: HashMap<(String, String), Value>,
}

impl Names {
    async fn domain(&mut self, identity: &Identity, id: &str) -> Result<Value> {
        let key = ("domain".to_owned(), id.to_owned());
        if let Some(v) = self.cache.get(&key) {
            return Ok(v.clone());
        }
        let v = match store::projects::get_domain(&identity.pool, id).await? {
            Some(d) => json!({ "id": d.id, "name": d.name }),
            None => json!({ "id": id }),
        };
        self.cache.insert(key, v.clone());
        Ok(v)
    }
}

async fn render(
    identity: &Identity,
    base: &BaseUrl,
    row: &Row,
    names: bool,
    cache: &mut Names,
) -> Result<Value> {
    let a = &row.assignment;
    let role_value = if names {
        match store::roles::get(&identity.pool, &a.role_id).await? {
            Some(Role {
                id,
                name,
                domain_id: Some(d),
                ..
            }) => json!({ "id": id, "name": name, "domain": cache.domain(identity, &d).await? }),
            Some(r) => json!({ "id": r.id, "name": r.name }),
            None => json!({ "id": a.role_id }),
        }
    } else {
        json!({ "id": a.role_id })
    };
    let actor_value = match (a.actor_type, names) {
        (ActorType::User, true) => match store::users::get(&identity.pool, &a.actor_id).await? {
            Some(u) => {
                json!({ "id": u.id, "name": u.name, "domain": cache.domain(identity, &u.domain_id).await? })
            }
            None => json!({ "id": a.actor_id }),
        },
        (ActorType::Group, true) => match store::groups::get(&identity.pool, &a.actor_id).await? {
            Some(g) => {
                json!({ "id": g.id, "name": g.name, "domain": cache.domain(identity, &g.domain_id).await? })
            }
            None => json!({ "id": a.actor_id }),
        },
        _ => json!({ "id": a.actor_id }),
    };
    let scope = match (a.target_type, names) {
        (TargetType::System, _) => json!({ "system": { "all": true } }),
        (TargetType::Domain, true) => {
            json!({ "domain": cache.domain(identity, &a.target_id).await? })
        }
        (TargetType::Domain, false) => json!({ "domain": { "id": a.target_id } }),
        (TargetType::Project, true) => {
            match store::projects::get_project(&identity.pool, &a.target_id).await? {
                Some(p) => {
                    json!({ "project": { "id": p.id, "name": p.name, "domain": cache.domain(identity, &p.domain_id).await? } })
                }
                None => json!({ "project": { "id": a.target_id } }),
            }
        }
        (TargetType::Project, false) => json!({ "project": { "id": a.target_id } }),
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
    Ok(item)
}
