//! `/v3/groups` and group membership.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody, Scope};
use serde_json::{Value, json};

use super::{Params, existing_domain_id, group, user};
use crate::error::{Error, Result};
use crate::model::{Group, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::{store, views};

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let domain_id = params
        .get("domain_id")
        .cloned()
        .or_else(|| ctx.domain_id().map(str::to_owned));
    enforce(
        &ctx,
        "identity:list_groups",
        Target {
            domain_id: domain_id.as_deref(),
            ..Target::default()
        },
    )?;
    let groups = store::groups::list(
        &identity.pool,
        params.get("name").map(String::as_str),
        domain_id.as_deref(),
        None,
    )
    .await?;
    Ok(Json(views::collection(
        &base,
        "groups",
        "groups",
        groups.iter().map(|g| views::group(&base, g)).collect(),
    )))
}

async fn readable(
    identity: &Identity,
    ctx: &AuthContext,
    id: &str,
    action: &'static str,
) -> Result<Group> {
    if !ctx.is_admin() && ctx.domain_id().is_none() {
        return Err(Error::Forbidden(action));
    }
    let g = group(identity, id).await?;
    enforce(ctx, action, Target::domain(&g.domain_id))?;
    Ok(g)
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let g = readable(&identity, &ctx, &id, "identity:get_group").await?;
    Ok(Json(json!({ "group": views::group(&base, &g) })))
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let mut fields = Fields::from_body(body, "group")?;
    let name = fields.string("name", 64)?;
    let domain_id = match (fields.opt_string("domain_id")?, &ctx.scope) {
        (Some(d), _) => d,
        (None, Scope::Domain { id, .. }) => id.clone(),
        (None, Scope::Project { domain_id, .. }) => domain_id.clone(),
        _ => "default".to_owned(),
    };
    enforce(&ctx, "identity:create_group", Target::domain(&domain_id))?;
    existing_domain_id(&identity, &domain_id).await?;
    let g = Group {
        id: new_id(),
        name,
        domain_id,
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        extra: fields.into_rest(),
    };
    if !store::groups::list(&identity.pool, Some(&g.name), Some(&g.domain_id), None)
        .await?
        .is_empty()
    {
        return Err(Error::conflict(
            "group",
            format!("a group named {} already exists", g.name),
        ));
    }
    store::groups::insert(&identity.pool, &g).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "group": views::group(&base, &g) })),
    ))
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_group", Target::default())?;
    let mut g = group(&identity, &id).await?;
    let mut fields = Fields::from_body(body, "group")?;
    if fields.contains("name") {
        g.name = fields.string("name", 64)?;
    }
    if let Some(description) = fields.opt_string_max("description", 65_535)? {
        g.description = description;
    }
    if fields.contains("domain_id") {
        return Err(Error::validation("'domain_id' cannot be updated."));
    }
    fields.ignore("id");
    g.extra.extend(fields.into_rest());
    store::groups::update(&identity.pool, &g).await?;
    Ok(Json(json!({ "group": views::group(&base, &g) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_group", Target::default())?;
    group(&identity, &id).await?;
    store::groups::delete(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let g = readable(&identity, &ctx, &id, "identity:list_users_in_group").await?;
    let users = store::users::list(&identity.pool, None, None, None, Some(&g.id)).await?;
    let path = format!("groups/{id}/users");
    Ok(Json(views::users(
        &base,
        &path,
        &users,
        &identity.password_rules,
    )))
}

pub async fn add_member(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:add_user_to_group", Target::default())?;
    group(&identity, &id).await?;
    user(&identity, &user_id).await?;
    store::groups::add_member(&identity.pool, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_member(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:check_user_in_group", Target::default())?;
    group(&identity, &id).await?;
    user(&identity, &user_id).await?;
    if store::groups::is_member(&identity.pool, &id, &user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound {
            kind: "user in group",
            id: format!("{user_id} in {id}"),
        })
    }
}

pub async fn remove_member(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:remove_user_from_group", Target::default())?;
    group(&identity, &id).await?;
    user(&identity, &user_id).await?;
    if store::groups::remove_member(&identity.pool, &id, &user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound {
            kind: "user in group",
            id: format!("{user_id} in {id}"),
        })
    }
}
