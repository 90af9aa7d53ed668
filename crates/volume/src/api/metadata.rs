//! Metadata handlers of volumes and snapshots (`/{volumes,snapshots}/{id}/metadata`): the
//! router binds each to its owner.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use serde_json::{Value, json};

use super::input::string_map;
use super::{Ctx, Reply, Shared};
use crate::error::{Error, Result};
use crate::ops::metadata::MetadataOf;

fn metadata_body(body: Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(mut map) = body else {
        return Err(Error::Invalid(
            "The request body must be a JSON object.".into(),
        ));
    };
    match map.remove("metadata") {
        Some(v) => string_map("metadata", v),
        None => Err(Error::Invalid("'metadata' is a required property".into())),
    }
}

pub async fn show(of: MetadataOf, v: Shared, ctx: Ctx, id: String) -> Reply {
    let metadata = v.metadata(&ctx.caller, of, &id).await?;
    Ok(Json(json!({"metadata": metadata})))
}

/// `POST` merges the body's items into the metadata, `PUT` (`replace`) makes them all of it.
pub async fn write(
    of: MetadataOf,
    replace: bool,
    v: Shared,
    ctx: Ctx,
    id: String,
    body: Value,
) -> Reply {
    let items = metadata_body(body)?;
    let metadata = v.set_metadata(&ctx.caller, of, &id, items, replace).await?;
    Ok(Json(json!({"metadata": metadata})))
}

pub async fn show_item(of: MetadataOf, v: Shared, ctx: Ctx, id: String, key: String) -> Reply {
    let metadata = v.metadata(&ctx.caller, of, &id).await?;
    match metadata.get(&key) {
        Some(value) => Ok(Json(json!({"meta": {key: value}}))),
        None => Err(of.missing_key(&id, &key).into()),
    }
}

pub async fn set_item(
    of: MetadataOf,
    v: Shared,
    ctx: Ctx,
    id: String,
    key: String,
    body: Value,
) -> Reply {
    let Value::Object(mut outer) = body else {
        return Err(Error::Invalid("The request body must be a JSON object.".into()).into());
    };
    let items = string_map("meta", outer.remove("meta").unwrap_or(Value::Null))?;
    if items.len() != 1 || !items.contains_key(&key) {
        return Err(Error::Invalid("Request body and URI mismatch".into()).into());
    }
    v.set_metadata(&ctx.caller, of, &id, items.clone(), false)
        .await?;
    Ok(Json(json!({"meta": items})))
}

pub async fn delete_item(
    of: MetadataOf,
    v: Shared,
    ctx: Ctx,
    id: String,
    key: String,
) -> Result<StatusCode, ApiError> {
    v.delete_metadata_item(&ctx.caller, of, &id, &key).await?;
    Ok(StatusCode::OK)
}

/// The metadata routes of one owner, mounted at `{base}/{id}/metadata`.
pub fn routes(of: MetadataOf, base: &str) -> axum::Router<Shared> {
    use axum::routing::get;
    axum::Router::new()
        .route(
            &format!("{base}/{{id}}/metadata"),
            get(
                move |State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>| {
                    show(of, v, ctx, id)
                },
            )
            .post(
                move |State(v): State<Shared>,
                      ctx: Ctx,
                      Path(id): Path<String>,
                      JsonBody(body): JsonBody<Value>| {
                    write(of, false, v, ctx, id, body)
                },
            )
            .put(
                move |State(v): State<Shared>,
                      ctx: Ctx,
                      Path(id): Path<String>,
                      JsonBody(body): JsonBody<Value>| {
                    write(of, true, v, ctx, id, body)
                },
            ),
        )
        .route(
            &format!("{base}/{{id}}/metadata/{{key}}"),
            get(
                move |State(v): State<Shared>,
                      ctx: Ctx,
                      Path((id, key)): Path<(String, String)>| {
                    show_item(of, v, ctx, id, key)
                },
            )
            .put(
                move |State(v): State<Shared>,
                      ctx: Ctx,
                      Path((id, key)): Path<(String, String)>,
                      JsonBody(body): JsonBody<Value>| {
                    set_item(of, v, ctx, id, key, body)
                },
            )
            .delete(
                move |State(v): State<Shared>,
                      ctx: Ctx,
                      Path((id, key)): Path<(String, String)>| {
                    delete_item(of, v, ctx, id, key)
                },
            ),
        )
}
