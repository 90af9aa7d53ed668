//! `/v2.0/{collection}/{id}/tags[/{tag}]`.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use onestack_api::body::JsonBody;
use onestack_api::{ApiError, AuthContext, Fields};
use serde_json::{Value, json};

use super::{Shared, caller};
use crate::ops::tags::{TagChange, Tagged};

fn kind(collection: &str) -> Result<Tagged, ApiError> {
    Tagged::from_collection(collection)
        .ok_or_else(|| ApiError::not_found("The resource could not be found."))
}

pub async fn list(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path((collection, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tags = n.tags(&caller(&ctx)?, kind(&collection)?, &id).await?;
    Ok(Json(json!({"tags": tags})))
}

pub async fn check(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path((collection, id, tag)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let tags = n.tags(&caller(&ctx)?, kind(&collection)?, &id).await?;
    if tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("Tag {tag} could not be found.")).with_kind("TagNotFound"))
    }
}

pub async fn replace(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path((collection, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let mut fields = Fields::from_object(body, "tags")?;
    let tags = fields
        .opt_string_list("tags", 255)?
        .ok_or_else(|| ApiError::bad_request("'tags' is a required property."))?;
    let tags = n
        .change_tags(
            &caller(&ctx)?,
            kind(&collection)?,
            &id,
            TagChange::Replace(tags),
        )
        .await?;
    Ok(Json(json!({"tags": tags})))
}

pub async fn add(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path((collection, id, tag)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    n.change_tags(&caller(&ctx)?, kind(&collection)?, &id, TagChange::Add(tag))
        .await?;
    Ok(StatusCode::CREATED)
}

pub async fn remove(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path((collection, id, tag)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    n.change_tags(
        &caller(&ctx)?,
        kind(&collection)?,
        &id,
        TagChange::Remove(tag),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn clear(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path((collection, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    n.change_tags(&caller(&ctx)?, kind(&collection)?, &id, TagChange::Clear)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
