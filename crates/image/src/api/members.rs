//! `/v2/images/{id}/members`: the owner shares a `shared` image with projects, each of which
//! accepts or rejects it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, JsonBody};
use onestack_db::now_micros;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::{Image, MEMBER_STATUSES, Member};
use crate::policy::{self, Action};
use crate::service::Images;
use crate::{store, views};

fn require_shared(image: &Image) -> Result<()> {
    if image.visibility == "shared" {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "Only shared images have members; image {} is {}.",
            image.id, image.visibility
        )))
    }
}

fn is_owner(ctx: &AuthContext, image: &Image) -> bool {
    ctx.is_admin() || ctx.project_id() == Some(image.owner.as_str())
}

pub async fn list(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let image = images.find_for(&ctx, &id, Action::GetMembers).await?;
    require_shared(&image)?;
    let mut members = store::members(&images.pool, &id).await?;
    if !is_owner(&ctx, &image) {
        // A member sees its own membership only.
        members.retain(|m| Some(m.member_id.as_str()) == ctx.project_id());
    }
    Ok(Json(
        json!({ "members": members.iter().map(views::member).collect::<Vec<_>>(), "schema": "/v2/schemas/members" }),
    ))
}

pub async fn show(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let image = images.find_for(&ctx, &id, Action::GetMembers).await?;
    require_shared(&image)?;
    if !is_owner(&ctx, &image) && ctx.project_id() != Some(member_id.as_str()) {
        return Err(Error::NotFound(format!("{id} (member {member_id})")));
    }
    let member = store::get_member(&images.pool, &id, &member_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{id} (member {member_id})")))?;
    Ok(Json(views::member(&member)))
}

pub async fn create(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let image = images.find_for(&ctx, &id, Action::AddMember).await?;
    require_shared(&image)?;
    let member_id = body
        .get("member")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty() && m.len() <= 255)
        .ok_or_else(|| {
            Error::BadRequest("The body must be {\"member\": \"<project id>\"}.".into())
        })?
        .to_owned();
    if store::get_member(&images.pool, &id, &member_id)
        .await?
        .is_some()
    {
        return Err(Error::Conflict(format!(
            "Member {member_id} is already associated with image {id}."
        )));
    }
    let now = now_micros();
    let member = Member {
        image_id: id,
        member_id,
        status: "pending".into(),
        created_at: now,
        updated_at: now,
    };
    store::insert_member(&images.pool, &member).await?;
    Ok(Json(views::member(&member)))
}

/// The member (only) sets its own status: pending, accepted or rejected.
pub async fn update(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, member_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let image = images.find(&ctx, &id).await?;
    require_shared(&image)?;
    let mut member = store::get_member(&images.pool, &id, &member_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{id} (member {member_id})")))?;
    policy::enforce(&ctx, Action::ModifyMember, &member_id)?;
    let status = body
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| MEMBER_STATUSES.contains(s))
        .ok_or_else(|| {
            Error::BadRequest(
                "The body must be {\"status\": \"pending|accepted|rejected\"}.".into(),
            )
        })?;
    member.status = status.to_owned();
    member.updated_at = now_micros();
    store::update_member(&images.pool, &member).await?;
    Ok(Json(views::member(&member)))
}

pub async fn delete(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let image = images.find_for(&ctx, &id, Action::DeleteMember).await?;
    require_shared(&image)?;
    if store::get_member(&images.pool, &id, &member_id)
        .await?
        .is_none()
    {
        return Err(Error::NotFound(format!("{id} (member {member_id})")));
    }
    store::delete_member(&images.pool, &id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
