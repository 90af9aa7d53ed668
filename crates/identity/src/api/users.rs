//! `/v3/users`, password changes, and a user's projects and groups.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, bool_param, present_nullable, present_string};
use crate::error::{Error, Result};
use crate::model::User;
use crate::ops::Parsed;
use crate::ops::users::{
    NewUser, PasswordChange, UserAttributes, UserQuery, UserSettings, UserUpdate, UserUpdateRest,
};
use crate::service::Identity;
use crate::{password, views};

fn user_query(params: &Params) -> UserQuery {
    UserQuery {
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
        enabled: bool_param(params, "enabled"),
    }
}

fn user_body(identity: &Identity, base: &BaseUrl, u: &User) -> Json<Value> {
    let expires_at = identity.password_rules.expires_at(u.password_set_at);
    Json(json!({ "user": views::user(base, u, expires_at) }))
}

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let users = identity.list_users(&ctx, user_query(&params)).await?;
    Ok(Json(views::users(
        &base,
        "users",
        &users,
        &identity.password_rules,
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let u = identity.get_user(&ctx, &id).await?;
    Ok(user_body(&identity, &base, &u))
}

/// The name and domain come first; the rest is reported once the caller is allowed.
fn new_user(body: Value) -> Result<NewUser> {
    let mut fields = Fields::from_body(body, "user")?;
    let name = fields.string("name", 255)?;
    let domain_id = fields.opt_string("domain_id")?;
    Ok(NewUser {
        name,
        domain_id,
        attributes: user_attributes(fields),
    })
}

fn user_attributes(mut fields: Fields) -> Parsed<UserAttributes> {
    let password = fields.opt_string("password")?;
    if let Some(p) = &password {
        password::check_length(p)?;
    }
    let default_project_id = fields.opt_string("default_project_id")?;
    Ok(UserAttributes {
        password,
        default_project_id,
        rest: user_settings(fields),
    })
}

fn user_settings(mut fields: Fields) -> Parsed<UserSettings> {
    let enabled = fields.opt_bool("enabled")?.unwrap_or(true);
    fields.ignore("options");
    Ok(UserSettings {
        enabled,
        extra: fields.into_rest(),
    })
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let u = identity.create_user(&ctx, new_user(body)?).await?;
    Ok((StatusCode::CREATED, user_body(&identity, &base, &u)))
}

fn user_update(body: Value) -> Parsed<UserUpdate> {
    let mut fields = Fields::from_body(body, "user")?;
    let name = present_string(&mut fields, "name", 255)?;
    let enabled = fields.opt_bool("enabled")?;
    let default_project_id = present_nullable(&mut fields, "default_project_id")?;
    Ok(UserUpdate {
        name,
        enabled,
        default_project_id,
        rest: user_update_rest(fields),
    })
}

fn user_update_rest(mut fields: Fields) -> Parsed<UserUpdateRest> {
    if fields.contains("domain_id") {
        return Err(Error::validation("'domain_id' cannot be updated."));
    }
    let password = fields.opt_string("password")?;
    fields.ignore("id");
    fields.ignore("options");
    Ok(UserUpdateRest {
        password,
        extra: fields.into_rest(),
    })
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let u = identity.update_user(&ctx, &id, user_update(body)).await?;
    Ok(user_body(&identity, &base, &u))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_user(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn password_change(body: Value) -> Parsed<PasswordChange> {
    let mut fields = Fields::from_body(body, "user")?;
    let original = fields
        .opt_string("original_password")?
        .ok_or_else(|| Error::validation("'original_password' is required."))?;
    let new = fields
        .opt_string("password")?
        .ok_or_else(|| Error::validation("'password' is required."))?;
    fields.deny_unknown()?;
    password::check_length(&new)?;
    Ok(PasswordChange { original, new })
}

/// `POST /v3/users/{id}/password`: the user changes their own password, proving the old one.
pub async fn change_password(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode> {
    identity
        .change_password(&ctx, &id, password_change(body))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn projects(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let projects = identity
        .user_projects(&ctx, &id, user_query(&params))
        .await?;
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
    let groups = identity.user_groups(&ctx, &id).await?;
    let path = format!("users/{id}/groups");
    Ok(Json(views::collection(
        &base,
        "groups",
        &path,
        groups.iter().map(|g| views::group(&base, g)).collect(),
    )))
}
