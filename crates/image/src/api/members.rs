//! `/v2/images/{id}/members`: handlers; the rules are in `ops/members.rs`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, JsonBody};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::MEMBER_STATUSES;
use crate::service::Images;
use crate::views;

pub async fn list(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let members = images.members(&ctx, &id).await?;
    Ok(Json(
        json!({ "members": members.iter().map(views::member).collect::<Vec<_>>(), "schema": "/v2/schemas/members" }),
    ))
}

pub async fn show(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let member = images.member(&ctx, &id, &member_id).await?;
    Ok(Json(views::member(&member)))
}

/// `{"member": "<project id>"}`.
fn member_of(body: &Value) -> Result<String> {
    body.get("member")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .map(str::to_owned)
        .ok_or_else(|| Error::BadRequest("The body must be {\"member\": \"<project id>\"}.".into()))
}

/// `{"status": "pending|accepted|rejected"}`.
fn status_of(body: &Value) -> Result<String> {
    body.get("status")
        .and_then(Value::as_str)
        .filter(|s| MEMBER_STATUSES.contains(s))
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::BadRequest(
                "The body must be {\"status\": \"pending|accepted|rejected\"}.".into(),
            )
        })
}

pub async fn create(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let member = images.add_member(&ctx, &id, member_of(&body)).await?;
    Ok(Json(views::member(&member)))
}

pub async fn update(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, member_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let member = images
        .update_member(&ctx, &id, &member_id, status_of(&body))
        .await?;
    Ok(Json(views::member(&member)))
}

pub async fn delete(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    images.remove_member(&ctx, &id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
