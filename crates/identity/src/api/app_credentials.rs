//! `/v3/users/{id}/application_credentials`: the secret is shown once, at creation.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{BaseUrl, Fields, JsonBody};
use onestack_db::now_micros;
use serde_json::Value;

use super::{Call, Params, Reply};
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::app_credentials::{AppCredentialView, NewAppCredential, RoleRef};
use crate::views;

fn render(base: &BaseUrl, view: &AppCredentialView) -> Value {
    views::app_credential(base, &view.credential, &view.roles, view.secret.as_deref())
}

pub async fn list(call: Call, Path(user_id): Path<String>, Query(params): Query<Params>) -> Reply {
    let credentials = call
        .identity
        .list_app_credentials(&call.ctx, &user_id, params.get("name").map(String::as_str))
        .await?;
    let path = format!("users/{user_id}/application_credentials");
    call.many("application_credentials", &path, render, &credentials)
}

pub async fn show(call: Call, Path((user_id, id)): Path<(String, String)>) -> Reply {
    let c = call
        .identity
        .get_app_credential(&call.ctx, &user_id, &id)
        .await?;
    call.one(StatusCode::OK, "application_credential", render, &c)
}

fn expires_at(text: Option<String>) -> Result<Option<i64>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let at = views::parse_timestamp(&text)
        .ok_or_else(|| Error::validation(format!("Invalid expires_at '{text}'.")))?;
    if at <= now_micros() {
        return Err(Error::validation("'expires_at' is in the past."));
    }
    Ok(Some(at))
}

fn role_ref(item: Value) -> Parsed<RoleRef> {
    let mut role = Fields::from_object(item, "role")?;
    Ok(RoleRef {
        id: role.opt_string("id")?,
        name: role.opt_string("name")?,
    })
}

fn new_app_credential(body: Value) -> Parsed<NewAppCredential> {
    let mut fields = Fields::from_body(body, "application_credential")?;
    let name = fields.string("name", 255)?;
    let description = fields.opt_string_max("description", 255)?;
    let secret = fields.opt_string("secret")?;
    let expires_at = expires_at(fields.opt_string("expires_at")?)?;
    let unrestricted = fields.opt_bool("unrestricted")?.unwrap_or(false);
    let roles = fields.opt_array("roles")?;
    if fields
        .opt_array("access_rules")?
        .is_some_and(|rules| !rules.is_empty())
    {
        return Err(Error::validation("Access rules are not supported."));
    }
    fields.ignore("system");
    fields.deny_unknown()?;
    Ok(NewAppCredential {
        name,
        description,
        secret,
        expires_at,
        unrestricted,
        roles: roles.map(|items| items.into_iter().map(role_ref).collect()),
    })
}

pub async fn create(
    call: Call,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let new = new_app_credential(body);
    let c = call
        .identity
        .create_app_credential(&call.ctx, &user_id, new)
        .await?;
    call.one(StatusCode::CREATED, "application_credential", render, &c)
}

pub async fn delete(call: Call, Path((user_id, id)): Path<(String, String)>) -> Result<StatusCode> {
    call.identity
        .delete_app_credential(&call.ctx, &user_id, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
