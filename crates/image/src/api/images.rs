//! `POST/GET/DELETE /v2/images[/{id}]`, deactivate/reactivate, tags.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onestack_api::{AuthContext, JsonBody};
use onestack_db::now_micros;
use serde_json::{Map, Value};

use super::patch::{check_tag, set_attribute};
use crate::model::{Image, Status};
use crate::policy::{self, Action};
use crate::service::{Error, Images, Result};
use crate::{store, views};

/// The project a caller acts for; Glance needs a project-scoped token.
pub(super) fn project(ctx: &AuthContext) -> Result<String> {
    ctx.project_id().map(str::to_owned).ok_or_else(|| {
        Error::Forbidden("A project-scoped token is required for the image service.".into())
    })
}

pub async fn create(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response> {
    let owner = project(&ctx)?;
    policy::enforce(&ctx, Action::AddImage, &owner)?;
    let Value::Object(fields) = body else {
        return Err(Error::BadRequest(
            "The body must be a JSON object of image attributes.".into(),
        ));
    };
    let now = now_micros();
    let mut fields: Map<String, Value> = fields;
    let id = match fields.remove("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(id)) if uuid::Uuid::parse_str(&id).is_ok() => id,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid id {other}: it must be a UUID."
            )));
        }
    };
    let mut image = Image {
        id,
        name: None,
        status: Status::Queued,
        visibility: "shared".into(),
        protected: false,
        os_hidden: false,
        checksum: None,
        os_hash_algo: None,
        os_hash_value: None,
        owner,
        size: None,
        virtual_size: None,
        min_disk: 0,
        min_ram: 0,
        container_format: None,
        disk_format: None,
        properties: Map::new(),
        tags: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    for (key, value) in fields {
        set_attribute(&ctx, &mut image, &key, value)?;
    }
    images.insert(&image).await?;
    let mut response = (StatusCode::CREATED, Json(views::image(&image))).into_response();
    // Clients learn from these whether the interoperable import is available.
    let h = response.headers_mut();
    h.insert(
        "openstack-image-import-methods",
        HeaderValue::from_static("glance-direct,web-download"),
    );
    h.insert(
        "openstack-image-store-ids",
        HeaderValue::from_static("file"),
    );
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    if let Ok(location) =
        HeaderValue::from_str(&format!("http://{host}/image/v2/images/{}", image.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn show(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(views::image(&images.find(&ctx, &id).await?)))
}

pub async fn delete(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let image = images.find_for(&ctx, &id, Action::DeleteImage).await?;
    if image.protected {
        return Err(Error::Forbidden(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    if !store::delete(&images.pool, &id, now_micros()).await? {
        return Err(Error::NotFound(id));
    }
    images.files.remove(&images.files.path(&id)).await;
    images.files.remove(&images.files.staging_path(&id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves an owned image between `active` and `deactivated`; repeating it is harmless.
async fn switch(
    images: &Images,
    ctx: &AuthContext,
    id: &str,
    from: Status,
    to: Status,
    verb: &str,
    action: Action,
) -> Result<StatusCode> {
    let image = images.find_for(ctx, id, action).await?;
    if image.status == to {
        return Ok(StatusCode::NO_CONTENT);
    }
    if image.status != from {
        return Err(Error::Forbidden(format!(
            "Not allowed to {verb} image in status '{}'.",
            image.status.as_str()
        )));
    }
    images.begin(image, &[from], to).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deactivate(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    switch(
        &images,
        &ctx,
        &id,
        Status::Active,
        Status::Deactivated,
        "deactivate",
        Action::Deactivate,
    )
    .await
}

pub async fn reactivate(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    switch(
        &images,
        &ctx,
        &id,
        Status::Deactivated,
        Status::Active,
        "reactivate",
        Action::Reactivate,
    )
    .await
}

pub async fn add_tag(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let mut image = images.find_for(&ctx, &id, Action::ModifyImage).await?;
    check_tag(&tag)?;
    if !image.tags.contains(&tag) {
        image.tags.push(tag);
        image.updated_at = now_micros();
        store::update(&images.pool, &image).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_tag(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let mut image = images.find_for(&ctx, &id, Action::ModifyImage).await?;
    let before = image.tags.len();
    image.tags.retain(|t| *t != tag);
    if image.tags.len() == before {
        return Err(Error::NotFound(format!("{id} (tag {tag})")));
    }
    image.updated_at = now_micros();
    store::update(&images.pool, &image).await?;
    Ok(StatusCode::NO_CONTENT)
}
