//! The attachments API (3.27+): attachments listed and shown from the volumes the caller
//! sees; made and removed through compute, as `os-volume_attachments` does it.

use axum::Json;
use axum::extract::{Path, Query, State};
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_api::paging::Params;
use serde_json::{Value, json};

use super::input;
use super::{Ctx, Reply, Shared, listing};
use crate::error::{Error, Result};
use crate::model::Attachment;
use crate::ops::server_attach::VolumeAttachmentView;

/// The attachments API exists from 3.27; below it, as in Cinder, there is no such route.
fn require_version(ctx: &Ctx) -> Result<()> {
    if ctx.view.version.at_least(27) {
        Ok(())
    } else {
        Err(Error::NotFound(
            "The attachments API needs volume microversion 3.27 or later.".into(),
        ))
    }
}

fn view(volume_id: &str, a: &Attachment, detail: bool) -> Value {
    let mut out = json!({
        "id": a.id,
        "status": a.status.as_str(),
        "instance": a.server_id,
        "volume_id": volume_id,
    });
    if detail {
        out["attached_at"] = json!(a.attached_at.map(onestack_db::timestamps::micros_naive));
        out["detached_at"] = Value::Null;
        out["attach_mode"] = json!(if a.read_only { "ro" } else { "rw" });
        out["connection_info"] = json!({"driver_volume_type": "file", "device": a.device});
    }
    out
}

fn views(items: &[VolumeAttachmentView], detail: bool) -> Vec<Value> {
    items
        .iter()
        .map(|a| view(&a.volume_id, &a.attachment, detail))
        .collect()
}

async fn list(v: Shared, ctx: Ctx, params: Params, detail: bool) -> Reply {
    require_version(&ctx)?;
    let mut items = v
        .list_attachments(&ctx.caller, listing::all_projects(&params))
        .await?;
    for (key, value) in &params {
        items.retain(|a| match key.as_str() {
            "volume_id" => a.volume_id == *value,
            "instance_id" | "instance" => a.attachment.server_id == *value,
            "status" | "attach_status" => a.attachment.status.as_str() == value,
            _ => true,
        });
    }
    let path = if detail {
        "attachments/detail"
    } else {
        "attachments"
    };
    let keyed = items
        .into_iter()
        .map(|a| (a.attachment.id.clone(), a))
        .collect();
    let (page, next, count) = listing::page(keyed, &params, &ctx, path)?;
    Ok(Json(listing::body(
        "attachments",
        views(&page, detail),
        next,
        count,
        &ctx,
        &params,
    )))
}

pub async fn list_attachments(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(v, ctx, params, false).await
}

pub async fn list_attachments_detail(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(v, ctx, params, true).await
}

pub async fn show_attachment(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    require_version(&ctx)?;
    let found = v.find_attachment(&ctx.caller, &id).await?;
    Ok(Json(
        json!({"attachment": view(&found.volume_id, &found.attachment, true)}),
    ))
}

/// `POST /attachments`: `volume_uuid` and `instance_uuid` (a connector is not needed: the
/// server's host plugs the disk in).
pub async fn create_attachment(
    State(v): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    require_version(&ctx)?;
    let map = input::object(body, "attachment")?;
    let text = |key: &str| -> Result<String> {
        match map.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(Error::Invalid(format!(
                "Invalid input received: '{key}' is a required property: onestack attaches volumes to servers."
            ))),
        }
    };
    let (volume_id, server_id) = (text("volume_uuid")?, text("instance_uuid")?);
    let attachment = v
        .attach_to_server(&ctx.caller, &volume_id, &server_id)
        .await?;
    Ok(Json(
        json!({"attachment": view(&volume_id, &attachment, true)}),
    ))
}

/// `DELETE /attachments/{id}`: detaches through compute; answers with the volume's
/// attachments as they are now (this one `detaching` until the guest lets go).
pub async fn delete_attachment(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_version(&ctx)?;
    let volume = v.detach_attachment(&ctx.caller, &id).await?;
    let left: Vec<Value> = volume
        .attachments
        .iter()
        .map(|a| view(&volume.id, a, false))
        .collect();
    Ok(Json(json!({"attachments": left})))
}
