//! `POST/GET/DELETE /v2/images[/{id}]`, deactivate/reactivate, tags.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use onestack_api::{AuthContext, JsonBody};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::ops::images::NewImage;
use crate::service::Images;
use crate::views;

/// A create body: a JSON object of attributes, with an optional UUID `id`.
fn new_image(body: Value) -> Result<NewImage> {
    let Value::Object(mut attributes) = body else {
        return Err(Error::BadRequest(
            "The body must be a JSON object of image attributes.".into(),
        ));
    };
    let id = match attributes.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if uuid::Uuid::parse_str(&id).is_ok() => Some(id),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "Invalid id {other}: it must be a UUID."
            )));
        }
    };
    Ok(NewImage { id, attributes })
}

pub async fn create(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response> {
    let image = images.create(&ctx, new_image(body)).await?;
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
    images.delete(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deactivate(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    images.deactivate(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reactivate(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    images.reactivate(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_tag(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    images.add_tag(&ctx, &id, tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_tag(
    State(images): State<Arc<Images>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    images.remove_tag(&ctx, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}
