//! `/v3/users/{id}/application_credentials`: the secret is shown once, at creation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use onestack_db::now_micros;
use serde_json::{Value, json};

use super::Params;
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::app_credentials::{AppCredentialView, NewAppCredential, RoleRef};
use crate::service::Identity;
use crate::views;

fn render(base: &BaseUrl, view: &AppCredentialView) -> Value {
    views::app_credential(base, &view.credential, &view.roles, view.secret.as_deref())
}

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let credentials = identity
        .list_app_credentials(&ctx, &user_id, params.get("name").map(String::as_str))
        .await?;
    let path = format!("users/{user_id}/application_credentials");
    Ok(Json(views::collection(
        &base,
        "application_credentials",
        &path,
        credentials.iter().map(|c| render(&base, c)).collect(),
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let c = identity.get_app_credential(&ctx, &user_id, &id).await?;
    Ok(Json(json!({ "application_credential": render(&base, &c) })))
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
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let c = identity
        .create_app_credential(&ctx, &user_id, new_app_credential(body))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "application_credential": render(&base, &c) })),
    ))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity.delete_app_credential(&ctx, &user_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
