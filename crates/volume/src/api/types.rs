//! Volume type handlers, with their extra specs.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use onestack_api::paging::{self, Params};
use serde_json::{Value, json};

use super::input::{self, flag, string_map, text};
use super::{Ctx, Reply, Shared};
use crate::error::{Error, Result};
use crate::ops::type_input::{NewType, TypeUpdate};
use crate::views;

fn name(value: Value) -> Result<String> {
    match text("name", value)? {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(Error::Invalid(
            "Invalid input for field/attribute name. The name must be 1 to 255 characters long"
                .into(),
        )),
    }
}

fn new_type(body: Value) -> Result<NewType> {
    let mut map = input::object(body, "volume_type")?;
    Ok(NewType {
        name: name(map.remove("name").unwrap_or(Value::Null))?,
        description: map
            .remove("description")
            .map(|v| text("description", v))
            .transpose()?
            .flatten(),
        is_public: map
            .remove("os-volume-type-access:is_public")
            .or_else(|| map.remove("is_public"))
            .map(|v| flag("is_public", &v))
            .transpose()?
            .unwrap_or(true),
        extra_specs: match map.remove("extra_specs") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => string_map("extra_specs", v)?,
        },
    })
}

fn type_update(body: Value) -> Result<TypeUpdate> {
    let mut map = input::object(body, "volume_type")?;
    let update = TypeUpdate {
        name: map.remove("name").map(name).transpose()?,
        description: map
            .remove("description")
            .map(|v| text("description", v))
            .transpose()?,
        is_public: map
            .remove("is_public")
            .map(|v| flag("is_public", &v))
            .transpose()?,
    };
    if update.name.is_none() && update.description.is_none() && update.is_public.is_none() {
        return Err(Error::Invalid(
            "Specify volume type name, description, is_public or a combination thereof.".into(),
        ));
    }
    Ok(update)
}

/// Cinder's `is_public` filter of an admin's listing: public types by default, `none` for
/// all of them.
fn public_filter(params: &Params) -> Result<Option<bool>> {
    match paging::first(params, "is_public") {
        None => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("none") => Ok(None),
        Some(v) => flag("is_public", &json!(v))
            .map(Some)
            .map_err(|_| Error::Invalid(format!("Invalid is_public filter [{v}]"))),
    }
}

pub async fn list_types(State(v): State<Shared>, ctx: Ctx, Query(params): Query<Params>) -> Reply {
    let types = v.list_types(&ctx.caller, public_filter(&params)?).await?;
    let items: Vec<Value> = types
        .iter()
        .map(|t| views::volume_type(t, ctx.caller.admin))
        .collect();
    Ok(Json(json!({"volume_types": items})))
}

pub async fn show_type(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let t = v.get_type(&ctx.caller, &id).await?;
    Ok(Json(
        json!({"volume_type": views::volume_type(&t, ctx.caller.admin)}),
    ))
}

pub async fn show_default_type(State(v): State<Shared>, ctx: Ctx) -> Reply {
    let t = v.default_type(&ctx.caller).await?;
    Ok(Json(
        json!({"volume_type": views::volume_type(&t, ctx.caller.admin)}),
    ))
}

pub async fn create_type(
    State(v): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let t = v.create_type(&ctx.caller, new_type(body)?).await?;
    Ok(Json(
        json!({"volume_type": views::volume_type(&t, ctx.caller.admin)}),
    ))
}

pub async fn update_type(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let t = v.update_type(&ctx.caller, &id, type_update(body)?).await?;
    Ok(Json(
        json!({"volume_type": views::volume_type(&t, ctx.caller.admin)}),
    ))
}

pub async fn delete_type(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    v.delete_type(&ctx.caller, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn list_extra_specs(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let specs = v.type_extra_specs(&ctx.caller, &id).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

pub async fn create_extra_specs(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let specs = string_map("extra_specs", input::object_value(body, "extra_specs")?)?;
    let specs = v.set_extra_specs(&ctx.caller, &id, specs).await?;
    Ok(Json(json!({"extra_specs": specs})))
}

pub async fn show_extra_spec(
    State(v): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Reply {
    let specs = v.type_extra_specs(&ctx.caller, &id).await?;
    match specs.get(&key) {
        Some(value) => Ok(Json(json!({ key: value }))),
        None => Err(Error::NotFound(format!(
            "Volume Type {id} has no extra specs with key {key}."
        ))
        .into()),
    }
}

pub async fn update_extra_spec(
    State(v): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let specs = string_map("extra_specs", body)?;
    if specs.len() != 1 || !specs.contains_key(&key) {
        return Err(Error::Invalid("Request body and URI mismatch".into()).into());
    }
    let specs = v.set_extra_specs(&ctx.caller, &id, specs).await?;
    Ok(Json(json!(specs)))
}

pub async fn delete_extra_spec(
    State(v): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    v.delete_extra_spec(&ctx.caller, &id, &key).await?;
    Ok(StatusCode::ACCEPTED)
}

// ---- access ----

pub async fn list_type_access(State(v): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let projects = v.type_access(&ctx.caller, &id).await?;
    let items: Vec<Value> = projects
        .iter()
        .map(|project| json!({"volume_type_id": id, "project_id": project}))
        .collect();
    Ok(Json(json!({"volume_type_access": items})))
}

/// `addProjectAccess` / `removeProjectAccess`.
pub async fn type_action(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let mut entries = body.as_object().into_iter().flatten();
    let (Some((name, args)), None) = (entries.next(), entries.next()) else {
        return Err(Error::Invalid("An action body names exactly one action.".into()).into());
    };
    let shared = match name.as_str() {
        "addProjectAccess" => true,
        "removeProjectAccess" => false,
        other => {
            return Err(Error::Invalid(format!(
                "There is no such action: {other}. Verify the request body and Content-Type header and try again."
            ))
            .into());
        }
    };
    let project = match args.get("project") {
        Some(Value::String(p)) if !p.is_empty() && p.len() <= 255 => p,
        _ => {
            return Err(Error::Invalid(
                "Invalid input for field/attribute project: a project id is required.".into(),
            )
            .into());
        }
    };
    v.set_type_access(&ctx.caller, &id, project, shared).await?;
    Ok(StatusCode::ACCEPTED)
}
