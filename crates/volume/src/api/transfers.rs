//! Volume transfer handlers, under Cinder's two prefixes (`os-volume-transfer`, and
//! `volume-transfers` from 3.55): offer, list, show, withdraw, accept.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_api::paging::Params;
use serde_json::{Value, json};

use super::input::{self, flag};
use super::{Ctx, Reply, Shared, listing};
use crate::error::{Error, Result};
use crate::model::Transfer;
use crate::ops::transfers::NewTransfer;
use crate::views::ViewCtx;

fn new_transfer(body: Value, ctx: &Ctx) -> Result<NewTransfer> {
    let mut map = input::object(body, "transfer")?;
    let volume_id = match map.remove("volume_id") {
        Some(Value::String(id)) => id,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "Invalid input for field/attribute volume_id. Value: {other}. is not of type 'string'"
            )));
        }
        None => return Err(Error::Invalid("'volume_id' is a required property".into())),
    };
    let name = match map.remove("name") {
        None | Some(Value::Null) => None,
        Some(v) => input::text("name", v)?,
    };
    let no_snapshots = match map.remove("no_snapshots") {
        Some(v) if ctx.view.version.at_least(55) && !v.is_null() => flag("no_snapshots", &v)?,
        _ => false,
    };
    Ok(NewTransfer {
        volume_id,
        name,
        no_snapshots,
    })
}

fn auth_key(body: Value) -> Result<String> {
    let map = input::object(body, "accept")?;
    match map.get("auth_key") {
        Some(Value::String(key)) => Ok(key.clone()),
        _ => Err(Error::Invalid("'auth_key' is a required property".into())),
    }
}

/// A transfer as Cinder shows it: summary, or detail (with when, and from 3.57 whose).
fn view(t: &Transfer, ctx: &ViewCtx, detail: bool) -> Value {
    let mut out = json!({
        "id": t.id,
        "name": t.name,
        "volume_id": t.volume_id,
        "links": ctx.links("os-volume-transfer", &t.id),
    });
    if detail {
        out["created_at"] = json!(onestack_db::timestamps::micros_naive(t.created_at));
        if ctx.version.at_least(55) {
            out["no_snapshots"] = json!(t.no_snapshots);
        }
        if ctx.version.at_least(57) {
            out["source_project_id"] = json!(t.project_id);
            out["destination_project_id"] = Value::Null;
            out["accepted"] = json!(false);
        }
    }
    out
}

async fn list(v: Shared, ctx: Ctx, params: Params, detail: bool) -> Reply {
    let mut items = v
        .list_transfers(&ctx.caller, listing::all_projects(&params))
        .await?;
    items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let path = if detail {
        "os-volume-transfer/detail"
    } else {
        "os-volume-transfer"
    };
    let keyed = items.into_iter().map(|t| (t.id.clone(), t)).collect();
    let (page, next, count) = listing::page(keyed, &params, &ctx, path)?;
    let items = page.iter().map(|t| view(t, &ctx.view, detail)).collect();
    Ok(Json(listing::body(
        "transfers",
        items,
        next,
        count,
        &ctx,
        &params,
    )))
}

pub async fn list_transfers(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(v, ctx, params, false).await
}

pub async fn list_transfers_detail(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    list(v, ctx, params, true).await
}

pub async fn create_transfer(
    State(v): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (transfer, key) = v
        .create_transfer(&ctx.caller, new_transfer(body, &ctx)?)
        .await?;
    let mut out = view(&transfer, &ctx.view, true);
    out["auth_key"] = json!(key);
    Ok((StatusCode::ACCEPTED, Json(json!({"transfer": out}))))
}

pub async fn show_transfer(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let transfer = v.get_transfer(&ctx.caller, &id).await?;
    Ok(Json(json!({"transfer": view(&transfer, &ctx.view, true)})))
}

pub async fn delete_transfer(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    v.delete_transfer(&ctx.caller, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn accept_transfer(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let transfer = v
        .accept_transfer(&ctx.caller, &id, &auth_key(body)?)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"transfer": view(&transfer, &ctx.view, false)})),
    ))
}
