//! `/v3/users`, password changes, and a user's projects and groups.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{BaseUrl, Fields, JsonBody};
use serde_json::Value;

use super::{Call, Params, Reply, bool_param, present_nullable, present_string};
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

/// How a user is shown: with when their password expires under the service's rules.
pub(super) fn user_view(identity: &Identity) -> impl Fn(&BaseUrl, &User) -> Value + '_ {
    |base: &BaseUrl, u: &User| {
        let expires_at = identity.password_rules.expires_at(u.password_set_at);
        views::user(base, u, expires_at)
    }
}

pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let users = call
        .identity
        .list_users(&call.ctx, user_query(&params))
        .await?;
    call.many("users", "users", user_view(&call.identity), &users)
}

pub async fn show(call: Call, Path(id): Path<String>) -> Reply {
    let u = call.identity.get_user(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "user", user_view(&call.identity), &u)
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

pub async fn create(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_user(body)?;
    let u = call.identity.create_user(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "user", user_view(&call.identity), &u)
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

pub async fn update(call: Call, Path(id): Path<String>, JsonBody(body): JsonBody<Value>) -> Reply {
    let update = user_update(body);
    let u = call.identity.update_user(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "user", user_view(&call.identity), &u)
}

pub async fn delete(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_user(&call.ctx, &id).await?;
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
    call: Call,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode> {
    call.identity
        .change_password(&call.ctx, &id, password_change(body))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn projects(call: Call, Path(id): Path<String>, Query(params): Query<Params>) -> Reply {
    let projects = call
        .identity
        .user_projects(&call.ctx, &id, user_query(&params))
        .await?;
    let path = format!("users/{id}/projects");
    call.many("projects", &path, views::project, &projects)
}

pub async fn groups(call: Call, Path(id): Path<String>) -> Reply {
    let groups = call.identity.user_groups(&call.ctx, &id).await?;
    let path = format!("users/{id}/groups");
    call.many("groups", &path, views::group, &groups)
}
