//! Snapshot handlers: bodies read into `ops::snapshot_input`, one operation, Cinder's views;
//! the listing filters on name, status and volume, newest first, paged.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_api::paging::Params;
use serde_json::{Value, json};

use super::input::{self, flag, string_map};
use super::{Ctx, Reply, Shared, listing};
use crate::error::{Error, Result};
use crate::model::Snapshot;
use crate::ops::snapshot_input::{NewSnapshot, SnapshotUpdate};
use crate::service::Volumes;
use crate::views::{self, SnapshotView};

/// 3.66: a snapshot of an in-use volume needs no `force` (and `force` may not be false).
const SNAPSHOT_IN_USE: u16 = 66;

fn new_snapshot(body: Value, ctx: &Ctx) -> Result<NewSnapshot> {
    let mut map = input::object(body, "snapshot")?;
    let volume_id = match map.remove("volume_id") {
        Some(Value::String(id)) => id,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute volume_id. Value: {other}. is not of type 'string'"
            )));
        }
        None => return Err(Error::Invalid("'volume_id' is a required property".into())),
    };
    Ok(NewSnapshot {
        volume_id,
        name: input::text_field(&mut map, "name", "display_name")?.flatten(),
        description: input::text_field(&mut map, "description", "display_description")?.flatten(),
        force: match map.remove("force").map(|v| flag("force", &v)).transpose()? {
            Some(false) if ctx.version.at_least(SNAPSHOT_IN_USE) => {
                return Err(Error::Invalid(
                    "The 'force' flag is not supported since 3.66: snapshots of in-use volumes are taken without it; leave it out.".into(),
                ));
            }
            Some(force) => force || ctx.version.at_least(SNAPSHOT_IN_USE),
            None => ctx.version.at_least(SNAPSHOT_IN_USE),
        },
        metadata: match map.remove("metadata") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => string_map("metadata", v)?,
        },
    })
}

fn snapshot_update(body: Value) -> Result<SnapshotUpdate> {
    let mut map = input::object(body, "snapshot")?;
    Ok(SnapshotUpdate {
        name: input::text_field(&mut map, "name", "display_name")?,
        description: input::text_field(&mut map, "description", "display_description")?,
    })
}

/// The caller's snapshots filtered and newest first, one page of them.
async fn snapshot_page(
    volumes: &Volumes,
    ctx: &Ctx,
    params: &Params,
    path: &str,
) -> Result<(Vec<Snapshot>, Option<Value>, usize)> {
    let mut items = volumes
        .list_snapshots(&ctx.caller, listing::all_projects(params))
        .await?;
    for (key, value) in params {
        items.retain(|s| match key.as_str() {
            "name" => s.name.as_deref() == Some(value.as_str()),
            "status" => s.status.as_str() == value,
            "volume_id" => s.volume_id == *value,
            _ => true,
        });
    }
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let keyed = items.into_iter().map(|s| (s.id.clone(), s)).collect();
    listing::page(keyed, params, ctx, path)
}

async fn list(v: &Volumes, ctx: &Ctx, params: &Params, view: SnapshotView) -> Reply {
    let path = match view {
        SnapshotView::Detail => "snapshots/detail",
        _ => "snapshots",
    };
    let (page, next, count) = snapshot_page(v, ctx, params, path).await?;
    let items = page
        .iter()
        .map(|s| views::snapshot(s, &ctx.view, view))
        .collect();
    Ok(Json(listing::body(
        "snapshots",
        items,
        next,
        count,
        ctx,
        params,
    )))
}

pub async fn list_snapshots(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(&v, &ctx, &params, SnapshotView::Summary).await
}

pub async fn list_snapshots_detail(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(&v, &ctx, &params, SnapshotView::Detail).await
}

pub async fn create_snapshot(
    State(v): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let snapshot = v
        .create_snapshot(&ctx.caller, new_snapshot(body, &ctx)?)
        .await?;
    let view = views::snapshot(&snapshot, &ctx.view, SnapshotView::Answer);
    Ok((StatusCode::ACCEPTED, Json(json!({"snapshot": view}))))
}

pub async fn show_snapshot(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let snapshot = v.get_snapshot(&ctx.caller, &id).await?;
    let view = views::snapshot(&snapshot, &ctx.view, SnapshotView::Detail);
    Ok(Json(json!({"snapshot": view})))
}

pub async fn update_snapshot(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let snapshot = v
        .update_snapshot(&ctx.caller, &id, snapshot_update(body)?)
        .await?;
    let view = views::snapshot(&snapshot, &ctx.view, SnapshotView::Answer);
    Ok(Json(json!({"snapshot": view})))
}

pub async fn delete_snapshot(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    v.delete_snapshot(&ctx.caller, &id).await?;
    Ok(StatusCode::ACCEPTED)
}
