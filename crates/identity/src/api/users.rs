//! `/v3/users`, password changes, and a user's projects and groups.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody, Scope};
use serde_json::{Value, json};

use super::{Params, bool_param, existing_domain_id, user};
use crate::error::{Error, Result};
use crate::model::{TargetType, User, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store::projects::ProjectFilter;
use crate::{password, store, views};

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
        "identity:list_users",
        Target {
            domain_id: domain_id.as_deref(),
            ..Target::default()
        },
    )?;
    let users = store::users::list(
        &identity.pool,
        params.get("name").map(String::as_str),
        domain_id.as_deref(),
        bool_param(&params, "enabled"),
        None,
    )
    .await?;
    Ok(Json(views::users(
        &base,
        "users",
        &users,
        &identity.password_rules,
    )))
}

/// Refuses a non-admin reading another user before looking the user up, so ids cannot be probed.
async fn visible_user(
    identity: &Identity,
    ctx: &AuthContext,
    id: &str,
    action: &'static str,
) -> Result<User> {
    if !ctx.is_admin() && ctx.user_id != id && ctx.domain_id().is_none() {
        return Err(Error::Forbidden(action));
    }
    let u = user(identity, id).await?;
    enforce(
        ctx,
        action,
        Target {
            user_id: Some(&u.id),
            domain_id: Some(&u.domain_id),
            ..Target::default()
        },
    )?;
    Ok(u)
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let u = visible_user(&identity, &ctx, &id, "identity:get_user").await?;
    Ok(Json(
        json!({ "user": views::user(&base, &u, identity.password_rules.expires_at(u.password_set_at)) }),
    ))
}

async fn check_default_project(identity: &Identity, project_id: &Option<String>) -> Result<()> {
    if let Some(id) = project_id
        && store::projects::get_project(&identity.pool, id)
            .await?
            .is_none()
    {
        return Err(Error::validation(format!(
            "Could not find default project: {id}."
        )));
    }
    Ok(())
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let mut fields = Fields::from_body(body, "user")?;
    let name = fields.string("name", 255)?;
    let domain_id = match (fields.opt_string("domain_id")?, &ctx.scope) {
        (Some(d), _) => d,
        (None, Scope::Project { domain_id, .. }) => domain_id.clone(),
        (None, Scope::Domain { id, .. }) => id.clone(),
        _ => "default".to_owned(),
    };
    enforce(&ctx, "identity:create_user", Target::domain(&domain_id))?;
    existing_domain_id(&identity, &domain_id).await?;
    let password = fields.opt_string("password")?;
    if let Some(p) = &password {
        password::check_length(p)?;
    }
    let default_project_id = fields.opt_string("default_project_id")?;
    check_default_project(&identity, &default_project_id).await?;
    let enabled = fields.opt_bool("enabled")?.unwrap_or(true);
    fields.ignore("options");
    let extra = fields.into_rest();
    if store::users::find_by_name(&identity.pool, &domain_id, &name)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "user",
            format!("a user named {name} already exists in domain {domain_id}"),
        ));
    }
    if let Some(p) = &password {
        identity
            .password_rules
            .check_new(&identity.pool, None, p, false)
            .await?;
    }
    let password_hash = match password {
        Some(p) => Some(password::hash(p, identity.config.password_hash_rounds).await?),
        None => None,
    };
    let u = User {
        id: new_id(),
        name,
        domain_id,
        enabled,
        password_hash,
        default_project_id,
        extra,
        failed_auth_count: 0,
        last_failed_auth_at: None,
        password_set_at: None,
    };
    store::users::insert(&identity.pool, &u).await?;
    let mut u = u;
    if let Some(hash) = &u.password_hash {
        identity
            .password_rules
            .record(&identity.pool, &u.id, hash)
            .await?;
        u.password_set_at = Some(onestack_db::now_micros());
    }
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "user": views::user(&base, &u, identity.password_rules.expires_at(u.password_set_at)) }),
        ),
    ))
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_user", Target::user(&id))?;
    let mut u = user(&identity, &id).await?;
    let mut fields = Fields::from_body(body, "user")?;
    if fields.contains("name") {
        u.name = fields.string("name", 255)?;
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        u.enabled = enabled;
    }
    if fields.contains("default_project_id") {
        u.default_project_id = fields.opt_string("default_project_id")?;
        check_default_project(&identity, &u.default_project_id).await?;
    }
    if fields.contains("domain_id") {
        return Err(Error::validation("'domain_id' cannot be updated."));
    }
    let new_password = fields.opt_string("password")?;
    fields.ignore("id");
    fields.ignore("options");
    u.extra.extend(fields.into_rest());
    if let Some(other) = store::users::find_by_name(&identity.pool, &u.domain_id, &u.name).await?
        && other.id != u.id
    {
        return Err(Error::conflict(
            "user",
            format!("a user named {} already exists", u.name),
        ));
    }
    if let Some(p) = new_password {
        identity
            .password_rules
            .check_new(&identity.pool, Some(&u), &p, false)
            .await?;
        let hash = password::hash(p, identity.config.password_hash_rounds).await?;
        u.password_hash = Some(hash.clone());
        u.failed_auth_count = 0;
        store::users::reset_failed_auth(&identity.pool, &u.id).await?;
        store::users::update(&identity.pool, &u).await?;
        identity
            .password_rules
            .record(&identity.pool, &u.id, &hash)
            .await?;
        u.password_set_at = Some(onestack_db::now_micros());
        identity.revoke_user_tokens(&u.id).await?;
    } else {
        store::users::update(&identity.pool, &u).await?;
        // As Keystone: disabling revokes the user's tokens, so re-enabling does not revive them.
        if !u.enabled {
            identity.revoke_user_tokens(&u.id).await?;
        }
    }
    Ok(Json(
        json!({ "user": views::user(&base, &u, identity.password_rules.expires_at(u.password_set_at)) }),
    ))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_user", Target::user(&id))?;
    user(&identity, &id).await?;
    store::users::delete(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v3/users/{id}/password`: the user changes their own password, proving the old one.
pub async fn change_password(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode> {
    if ctx.user_id != id {
        return Err(Error::Forbidden("identity:change_password"));
    }
    let mut fields = Fields::from_body(body, "user")?;
    let original = fields
        .opt_string("original_password")?
        .ok_or_else(|| Error::validation("'original_password' is required."))?;
    let new = fields
        .opt_string("password")?
        .ok_or_else(|| Error::validation("'password' is required."))?;
    fields.deny_unknown()?;
    password::check_length(&new)?;
    let mut u = user(&identity, &id).await?;
    let cost = identity.config.password_hash_rounds;
    if !password::verify(original, u.password_hash.clone(), cost).await? {
        return Err(Error::Unauthorized);
    }
    identity
        .password_rules
        .check_new(&identity.pool, Some(&u), &new, true)
        .await?;
    let hash = password::hash(new, cost).await?;
    u.password_hash = Some(hash.clone());
    store::users::update(&identity.pool, &u).await?;
    identity
        .password_rules
        .record(&identity.pool, &u.id, &hash)
        .await?;
    identity.revoke_user_tokens(&u.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn projects(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let u = visible_user(&identity, &ctx, &id, "identity:list_user_projects").await?;
    let ids =
        store::assignments::target_ids_for_user(&identity.pool, &u.id, TargetType::Project).await?;
    let filter = ProjectFilter {
        ids: Some(ids),
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
        enabled: bool_param(&params, "enabled"),
        ..Default::default()
    };
    let projects = store::projects::list_projects(&identity.pool, &filter).await?;
    let path = format!("users/{id}/projects");
    Ok(Json(views::collection(
        &base,
        "projects",
        &path,
        projects.iter().map(|p| views::project(&base, p)).collect(),
    )))
}

pub async fn groups(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let u = visible_user(&identity, &ctx, &id, "identity:list_groups_for_user").await?;
    let groups = store::groups::list(&identity.pool, None, None, Some(&u.id)).await?;
    let path = format!("users/{id}/groups");
    Ok(Json(views::collection(
        &base,
        "groups",
        &path,
        groups.iter().map(|g| views::group(&base, g)).collect(),
    )))
}
