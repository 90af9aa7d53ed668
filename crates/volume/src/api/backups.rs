//! Backup handlers: bodies read into `ops::backup_input`, one operation, Cinder's views;
//! the listing filters on name, status and volume, newest first, paged.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_api::paging::Params;
use serde_json::{Map, Value, json};

use super::input::{self, flag, string_map};
use super::{Ctx, Reply, Shared, listing};
use crate::error::{Error, Result};
use crate::model::{Backup, BackupStatus};
use crate::ops::backup_input::{BackupAction, BackupUpdate, NewBackup, RestoreRequest};
use crate::service::Volumes;
use crate::views::{self, BackupView};

/// Cinder's schemas allow no other attributes.
fn deny_unknown(map: &Map<String, Value>) -> Result<()> {
    match map.keys().next() {
        Some(key) => Err(Error::Invalid(format!(
            "Invalid input received: Additional properties are not allowed ('{key}' was unexpected)"
        ))),
        None => Ok(()),
    }
}

fn opt_id(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => Ok(Some(id)),
        Some(other) => Err(Error::Invalid(format!(
            "Invalid input for field/attribute {field}. Value: {other}. is not of type 'string'"
        ))),
    }
}

fn new_backup(body: Value, ctx: &Ctx) -> Result<NewBackup> {
    let mut map = input::object(body, "backup")?;
    let volume_id = opt_id(&mut map, "volume_id")?
        .ok_or_else(|| Error::Invalid("'volume_id' is a required property".into()))?;
    let bool_field = |map: &mut Map<String, Value>, key: &str| -> Result<bool> {
        map.remove(key)
            .filter(|v| !v.is_null())
            .map(|v| flag(key, &v))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let metadata = if ctx.view.version.at_least(43) {
        match map.remove("metadata") {
            None | Some(Value::Null) => Default::default(),
            Some(v) => string_map("metadata", v)?,
        }
    } else {
        Default::default()
    };
    let new = NewBackup {
        volume_id,
        name: input::text_field(&mut map, "name", "display_name")?.flatten(),
        description: input::text_field(&mut map, "description", "display_description")?.flatten(),
        incremental: bool_field(&mut map, "incremental")?,
        force: bool_field(&mut map, "force")?,
        snapshot_id: opt_id(&mut map, "snapshot_id")?,
        container: opt_id(&mut map, "container")?,
        metadata,
    };
    if ctx.view.version.at_least(51) {
        map.remove("availability_zone");
    }
    deny_unknown(&map)?;
    Ok(new)
}

fn backup_update(body: Value, ctx: &Ctx) -> Result<BackupUpdate> {
    let mut map = input::object(body, "backup")?;
    let update = BackupUpdate {
        name: input::text_field(&mut map, "name", "display_name")?,
        description: input::text_field(&mut map, "description", "display_description")?,
        metadata: if ctx.view.version.at_least(43) {
            map.remove("metadata")
                .map(|v| string_map("metadata", v))
                .transpose()?
        } else {
            None
        },
    };
    deny_unknown(&map)?;
    Ok(update)
}

fn restore_request(body: Value) -> Result<RestoreRequest> {
    let mut map = input::object(body, "restore")?;
    let request = RestoreRequest {
        volume_id: opt_id(&mut map, "volume_id")?,
        name: opt_id(&mut map, "name")?,
    };
    deny_unknown(&map)?;
    Ok(request)
}

fn backup_action(body: Value) -> Result<BackupAction> {
    let Value::Object(mut map) = body else {
        return Err(Error::Invalid("The action body must be an object.".into()));
    };
    let action = if let Some(reset) = map.remove("os-reset_status") {
        let status = reset
            .get("status")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<BackupStatus>().ok())
            .ok_or_else(|| {
                Error::Invalid(
                    "Invalid input received: os-reset_status needs a backup status.".into(),
                )
            })?;
        BackupAction::ResetStatus(status)
    } else if map.remove("os-force_delete").is_some() {
        BackupAction::ForceDelete
    } else {
        return Err(Error::Invalid(
            "There is no such action: the backup actions are os-reset_status and os-force_delete."
                .into(),
        ));
    };
    deny_unknown(&map)?;
    Ok(action)
}

/// The caller's backups filtered and newest first, one page of them.
async fn backup_page(
    volumes: &Volumes,
    ctx: &Ctx,
    params: &Params,
    path: &str,
) -> Result<(Vec<Backup>, Option<Value>, usize)> {
    let mut items = volumes
        .list_backups(&ctx.caller, listing::all_projects(params))
        .await?;
    for (key, value) in params {
        items.retain(|b| match key.as_str() {
            "name" => b.name.as_deref() == Some(value.as_str()),
            "status" => b.status.as_str() == value,
            "volume_id" => b.volume_id == *value,
            _ => true,
        });
    }
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let keyed = items.into_iter().map(|b| (b.id.clone(), b)).collect();
    listing::page(keyed, params, ctx, path)
}

async fn detail_view(v: &Volumes, ctx: &Ctx, backup: &Backup) -> Result<Value> {
    let dependents = v.has_dependents(&backup.id).await?;
    Ok(views::backup(
        backup,
        &ctx.view,
        BackupView::Detail,
        dependents,
    ))
}

async fn list(v: &Volumes, ctx: &Ctx, params: &Params, view: BackupView) -> Reply {
    let path = match view {
        BackupView::Detail => "backups/detail",
        BackupView::Summary => "backups",
    };
    let (page, next, count) = backup_page(v, ctx, params, path).await?;
    let mut items = Vec::new();
    for backup in &page {
        items.push(match view {
            BackupView::Detail => detail_view(v, ctx, backup).await?,
            BackupView::Summary => views::backup(backup, &ctx.view, view, false),
        });
    }
    Ok(Json(listing::body(
        "backups", items, next, count, ctx, params,
    )))
}

pub async fn list_backups(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(&v, &ctx, &params, BackupView::Summary).await
}

pub async fn list_backups_detail(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(&v, &ctx, &params, BackupView::Detail).await
}

pub async fn create_backup(
    State(v): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let backup = v
        .create_backup(&ctx.caller, new_backup(body, &ctx)?)
        .await?;
    let view = views::backup(&backup, &ctx.view, BackupView::Summary, false);
    Ok((StatusCode::ACCEPTED, Json(json!({"backup": view}))))
}

pub async fn show_backup(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let backup = v.get_backup(&ctx.caller, &id).await?;
    Ok(Json(
        json!({"backup": detail_view(&v, &ctx, &backup).await?}),
    ))
}

pub async fn update_backup(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    if !ctx.view.version.at_least(9) {
        return Err(ApiError::not_found(
            "Updating a backup needs volume microversion 3.9 or later.",
        ));
    }
    let backup = v
        .update_backup(&ctx.caller, &id, backup_update(body, &ctx)?)
        .await?;
    let view = views::backup(&backup, &ctx.view, BackupView::Summary, false);
    Ok(Json(json!({"backup": view})))
}

pub async fn delete_backup(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    v.delete_backup(&ctx.caller, &id, false).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn restore_backup(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let restore = v
        .restore_backup(&ctx.caller, &id, restore_request(body)?)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"restore": {
            "backup_id": restore.backup_id,
            "volume_id": restore.volume_id,
            "volume_name": restore.volume_name,
        }})),
    ))
}

pub async fn backup_action_handler(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    v.backup_action(&ctx.caller, &id, backup_action(body)?)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
