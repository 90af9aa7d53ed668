//! Volume handlers: bodies read into `ops::volume_input`, one operation, Cinder's views;
//! the listing's filters, sort and paging.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_api::paging::{self, Params};
use serde_json::{Map, Value, json};

use super::input::{self, flag, size, string_map, text};
use super::{Ctx, Reply, Shared, listing};
use crate::error::{Error, Result};
use crate::model::{Volume, VolumeStatus};
use crate::ops::volume_input::{
    DeleteRequest, NewVolume, SourceRequest, UploadImage, VolumeAction, VolumeUpdate,
};
use crate::service::Volumes;
use crate::views::{self, VolumeView};
use crate::volume_view::VolumeJson;

/// Extra keys in a volume body are refused from 3.53 on, ignored before.
const STRICT_BODY: u16 = 53;

fn refuse_rest(rest: Map<String, Value>, ctx: &Ctx, what: &str) -> Result<()> {
    match rest.keys().next() {
        Some(key) if ctx.version.at_least(STRICT_BODY) => Err(Error::Invalid(format!(
            "Invalid input for field/attribute {what}. Additional properties are not allowed ('{key}' was unexpected)"
        ))),
        _ => Ok(()),
    }
}

/// Makes the source a body key names from the id it gives.
type MakeSource = fn(String) -> SourceRequest;

fn source(map: &mut Map<String, Value>) -> Result<Option<SourceRequest>> {
    let kinds: [(&str, MakeSource); 5] = [
        ("imageRef", SourceRequest::Image),
        ("image_id", SourceRequest::Image),
        ("snapshot_id", SourceRequest::Snapshot),
        ("source_volid", SourceRequest::Volume),
        ("backup_id", SourceRequest::Backup),
    ];
    let mut found = None;
    for (key, make) in kinds {
        match map.remove(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(id)) if found.is_none() => found = Some(make(id)),
            Some(Value::String(_)) => {
                return Err(Error::invalid_input(
                    "only one of imageRef, snapshot_id, source_volid and backup_id may be given",
                ));
            }
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "Invalid input for field/attribute {key}. Value: {other}. is not of type 'string', 'null'"
                )));
            }
        }
    }
    Ok(found)
}

fn new_volume(body: Value, ctx: &Ctx) -> Result<NewVolume> {
    let mut map = input::object(body, "volume")?;
    let new = NewVolume {
        size: match map.remove("size") {
            None | Some(Value::Null) => None,
            Some(v) => Some(size("size", &v)?),
        },
        name: input::text_field(&mut map, "name", "display_name")?.flatten(),
        description: input::text_field(&mut map, "description", "display_description")?.flatten(),
        volume_type: map
            .remove("volume_type")
            .map(|v| text("volume_type", v))
            .transpose()?
            .flatten(),
        availability_zone: map
            .remove("availability_zone")
            .map(|v| text("availability_zone", v))
            .transpose()?
            .flatten(),
        metadata: match map.remove("metadata") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => string_map("metadata", v)?,
        },
        source: source(&mut map)?,
    };
    if let Some(v) = map.remove("multiattach")
        && flag("multiattach", &v)?
    {
        return Err(Error::Invalid(
            "multiattach parameter has been removed. The default behavior is to use multiattach enabled volume types. Contact your administrator to create a multiattach enabled volume type and use it to create multiattach volumes.".into(),
        ));
    }
    for key in ["consistencygroup_id", "group_id"] {
        match map.remove(key) {
            None | Some(Value::Null) => {}
            Some(_) => {
                return Err(Error::invalid_input(format!(
                    "{key}: volume groups are not supported"
                )));
            }
        }
    }
    refuse_rest(map, ctx, "volume")?;
    Ok(new)
}

fn volume_update(body: Value, ctx: &Ctx) -> Result<VolumeUpdate> {
    let mut map = input::object(body, "volume")?;
    let update = VolumeUpdate {
        name: input::text_field(&mut map, "name", "display_name")?,
        description: input::text_field(&mut map, "description", "display_description")?,
        metadata: map
            .remove("metadata")
            .map(|v| string_map("metadata", v))
            .transpose()?,
    };
    refuse_rest(map, ctx, "volume")?;
    Ok(update)
}

/// 3.42: `os-extend` of an in-use volume.
const EXTEND_ATTACHED: u16 = 42;

fn action(body: Value, ctx: &Ctx) -> Result<VolumeAction> {
    let Value::Object(map) = body else {
        return Err(Error::Invalid(
            "The request body must be a JSON object.".into(),
        ));
    };
    let mut entries = map.into_iter();
    let (Some((name, args)), None) = (entries.next(), entries.next()) else {
        return Err(Error::Invalid(
            "An action body names exactly one action.".into(),
        ));
    };
    let arg = |key: &str| args.get(key).cloned().unwrap_or(Value::Null);
    let required = |key: &str| -> Result<Value> {
        match args.get(key) {
            Some(v) if !v.is_null() => Ok(v.clone()),
            _ => Err(Error::Invalid(format!("'{key}' is a required property"))),
        }
    };
    Ok(match name.as_str() {
        "os-extend" => VolumeAction::Extend {
            new_size: size("new_size", &required("new_size")?)?,
            attached_ok: ctx.version.at_least(EXTEND_ATTACHED),
        },
        "os-set_bootable" => VolumeAction::SetBootable(flag("bootable", &required("bootable")?)?),
        "os-update_readonly_flag" => {
            VolumeAction::SetReadOnly(flag("readonly", &required("readonly")?)?)
        }
        "os-reset_status" => VolumeAction::ResetStatus {
            status: match arg("status") {
                Value::Null => None,
                Value::String(s) => Some(s.parse::<VolumeStatus>().map_err(|_| {
                    Error::Invalid(format!("Must specify a valid status; '{s}' is not one"))
                })?),
                other => {
                    return Err(Error::Invalid(format!(
                        "Invalid input for field/attribute status. Value: {other}. is not of type 'string'"
                    )));
                }
            },
        },
        "os-force_delete" => VolumeAction::ForceDelete,
        "os-volume_upload_image" => VolumeAction::UploadImage(upload_image(&args)?),
        "os-attach" => VolumeAction::Attach {
            server_id: match required("instance_uuid")? {
                Value::String(s) => s,
                other => {
                    return Err(Error::Invalid(format!(
                        "Invalid input for field/attribute instance_uuid. Value: {other}. is not of type 'string'"
                    )));
                }
            },
        },
        "os-detach" => VolumeAction::Detach {
            attachment_id: match arg("attachment_id") {
                Value::Null => None,
                Value::String(s) => Some(s),
                other => {
                    return Err(Error::Invalid(format!(
                        "Invalid input for field/attribute attachment_id. Value: {other}. is not of type 'string'"
                    )));
                }
            },
        },
        other => {
            return Err(Error::Invalid(format!(
                "There is no such action: {other}. Verify the request body and Content-Type header and try again."
            )));
        }
    })
}

/// `os-volume_upload_image`'s arguments (`visibility` and `protected` are 3.1's, and
/// accepted at any version as Cinder's schema does).
fn upload_image(args: &Value) -> Result<UploadImage> {
    let text = |key: &str| -> Result<Option<String>> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(Error::Invalid(format!(
                "Invalid input for field/attribute {key}. Value: {other}. is not of type 'string'"
            ))),
        }
    };
    let image_name = text("image_name")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Error::Invalid("'image_name' is a required property".into()))?;
    if image_name.chars().count() > 255 {
        return Err(Error::Invalid(
            "Invalid input for field/attribute image_name: longer than 255 characters.".into(),
        ));
    }
    let bool_arg = |key: &str| -> Result<bool> {
        match args.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(v) => flag(key, v),
        }
    };
    Ok(UploadImage {
        image_name,
        disk_format: text("disk_format")?.unwrap_or_else(|| "raw".into()),
        container_format: text("container_format")?.unwrap_or_else(|| "bare".into()),
        force: bool_arg("force")?,
        visibility: text("visibility")?,
        protected: bool_arg("protected")?,
    })
}

fn delete_request(params: &Params, ctx: &Ctx) -> Result<DeleteRequest> {
    let read = |key: &str| -> Result<bool> {
        paging::first(params, key)
            .map(|v| flag(key, &Value::String(v.to_owned())))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    Ok(DeleteRequest {
        cascade: read("cascade")?,
        force: ctx.version.at_least(23) && read("force")?,
    })
}

// ---- the listing ----

/// Query parameters that are not filters.
const PAGING: [&str; 8] = [
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "with_count",
    "offset",
    "all_tenants",
];
/// What a non-admin may filter on.
const FILTERS: [&str; 6] = [
    "name",
    "status",
    "metadata",
    "bootable",
    "availability_zone",
    "size",
];

fn matches(volume: &Volume, key: &str, value: &str) -> Result<bool> {
    Ok(match key {
        "name" | "display_name" => volume.name.as_deref() == Some(value),
        "status" => volume.status.as_str() == value,
        "availability_zone" => volume.availability_zone == value,
        "size" => volume.size.to_string() == value,
        "bootable" => Some(volume.bootable) == flag("bootable", &json!(value)).ok(),
        "metadata" => {
            // A dict literal, `{"k": "v"}` (Python's quotes accepted).
            let wanted: BTreeMap<String, String> = serde_json::from_str(&value.replace('\'', "\""))
                .map_err(|_| Error::Invalid(format!("Invalid metadata filter: {value}")))?;
            wanted
                .iter()
                .all(|(k, v)| volume.metadata.get(k) == Some(v))
        }
        _ => true,
    })
}

fn sort_keys(params: &Params) -> Result<Vec<(String, bool)>> {
    let legacy =
        paging::first(params, "sort_key").is_some() || paging::first(params, "sort_dir").is_some();
    let keys: Vec<(String, bool)> = match paging::first(params, "sort") {
        Some(_) if legacy => {
            return Err(Error::Invalid(
                "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.".into(),
            ));
        }
        Some(sort) => sort
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|item| {
                let (key, dir) = item.split_once(':').unwrap_or((item, "desc"));
                Ok((key.trim().to_owned(), descending(dir.trim())?))
            })
            .collect::<Result<_>>()?,
        None => match paging::first(params, "sort_key") {
            Some(key) => vec![(
                key.to_owned(),
                descending(paging::first(params, "sort_dir").unwrap_or("desc"))?,
            )],
            None => Vec::new(),
        },
    };
    for (key, _) in &keys {
        if ![
            "created_at",
            "updated_at",
            "name",
            "size",
            "status",
            "id",
            "availability_zone",
        ]
        .contains(&key.as_str())
        {
            return Err(Error::Invalid(format!("Invalid sort key {key}")));
        }
    }
    Ok(keys)
}

fn descending(dir: &str) -> Result<bool> {
    match dir {
        "desc" => Ok(true),
        "asc" => Ok(false),
        other => Err(Error::Invalid(format!(
            "Unknown sort direction, must be 'desc' or 'asc': {other}"
        ))),
    }
}

fn compare(a: &Volume, b: &Volume, key: &str) -> Ordering {
    match key {
        "created_at" => a.created_at.cmp(&b.created_at),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        "name" => a.name.cmp(&b.name),
        "size" => a.size.cmp(&b.size),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "availability_zone" => a.availability_zone.cmp(&b.availability_zone),
        _ => a.id.cmp(&b.id),
    }
}

/// The caller's volumes, filtered and in order, one page of them, the next link and count.
async fn volume_page(
    volumes: &Volumes,
    ctx: &Ctx,
    params: &Params,
    path: &str,
) -> Result<(Vec<Volume>, Option<Value>, usize)> {
    let mut items = volumes
        .list_volumes(&ctx.caller, listing::all_projects(params))
        .await?;
    for (key, value) in params {
        if PAGING.contains(&key.as_str()) {
            continue;
        }
        let known = FILTERS.contains(&key.as_str()) || key == "display_name";
        if !known && !ctx.caller.admin && ctx.version.at_least(31) {
            return Err(Error::Invalid(format!(
                "Invalid filters {key} are found in query options."
            )));
        }
        let mut kept = Vec::with_capacity(items.len());
        for v in items {
            if matches(&v, key, value)? {
                kept.push(v);
            }
        }
        items = kept;
    }
    let mut keys = sort_keys(params)?;
    if keys.is_empty() {
        keys.push(("created_at".into(), true));
    }
    items.sort_by(|a, b| {
        keys.iter()
            .map(|(key, desc)| {
                let order = compare(a, b, key);
                if *desc { order.reverse() } else { order }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| b.id.cmp(&a.id))
    });
    let keyed = items.into_iter().map(|v| (v.id.clone(), v)).collect();
    listing::page(keyed, params, ctx, path)
}

pub async fn list_volumes(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Reply {
    let (page, next, count) = volume_page(&v, &ctx, &params, "volumes").await?;
    let items: Vec<Value> = page
        .iter()
        .map(|vol| views::volume_summary(vol, &ctx.view))
        .collect();
    Ok(Json(listing::body(
        "volumes", items, next, count, &ctx, &params,
    )))
}

pub async fn list_volumes_detail(
    State(v): State<Shared>,
    ctx: Ctx,
    Query(params): Query<Params>,
) -> Result<Response, ApiError> {
    let (page, next, count) = volume_page(&v, &ctx, &params, "volumes/detail").await?;
    let names = v.type_names().await?;
    let items: Vec<VolumeJson> = page
        .iter()
        .map(|vol| VolumeJson::new(vol, type_name(vol, &names), &ctx.view, VolumeView::Detail))
        .collect();
    Ok(Json(listing::Listing::new(
        "volumes", items, next, count, &ctx, &params,
    ))
    .into_response())
}

fn type_name<'a>(volume: &'a Volume, names: &'a BTreeMap<String, String>) -> &'a str {
    names
        .get(&volume.volume_type_id)
        .map_or(volume.volume_type_id.as_str(), String::as_str)
}

fn render(volume: &Volume, names: &BTreeMap<String, String>, ctx: &Ctx, view: VolumeView) -> Value {
    views::volume(volume, type_name(volume, names), &ctx.view, view)
}

async fn one(v: &Volumes, volume: &Volume, ctx: &Ctx, view: VolumeView) -> Result<Value> {
    let names = v.type_names().await?;
    Ok(json!({"volume": render(volume, &names, ctx, view)}))
}

pub async fn create_volume(
    State(v): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = new_volume(body, &ctx)?;
    let volume = v.create_volume(&ctx.caller, &ctx.auth, new).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(one(&v, &volume, &ctx, VolumeView::Answer).await?),
    ))
}

pub async fn show_volume(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let volume = v.get_volume(&ctx.caller, &id).await?;
    Ok(Json(one(&v, &volume, &ctx, VolumeView::Detail).await?))
}

pub async fn update_volume(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let update = volume_update(body, &ctx)?;
    let volume = v.update_volume(&ctx.caller, &id, update).await?;
    Ok(Json(one(&v, &volume, &ctx, VolumeView::Answer).await?))
}

pub async fn delete_volume(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<StatusCode, ApiError> {
    let request = delete_request(&params, &ctx)?;
    v.delete_volume(&ctx.caller, &id, request).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn volume_action(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let action = action(body, &ctx)?;
    // Cinder answers os-set_bootable with 200, an upload with what it started, and the
    // others with 202.
    let status = match action {
        VolumeAction::SetBootable(_) => StatusCode::OK,
        VolumeAction::UploadImage(request) => {
            let upload = v.upload_to_image(&ctx.caller, &id, request).await?;
            let view = views::upload(&upload, &ctx.view);
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"os-volume_upload_image": view})),
            )
                .into_response());
        }
        _ => StatusCode::ACCEPTED,
    };
    v.volume_action(&ctx.caller, &id, action).await?;
    Ok(status.into_response())
}
