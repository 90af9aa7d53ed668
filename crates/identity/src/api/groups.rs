//! `/v3/groups` and group membership.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, present_string};
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::groups::{GroupAttributes, GroupQuery, GroupUpdate, NewGroup};
use crate::service::Identity;
use crate::views;

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let query = GroupQuery {
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
    };
    let groups = identity.list_groups(&ctx, query).await?;
    Ok(Json(views::collection(
        &base,
        "groups",
        "groups",
        groups.iter().map(|g| views::group(&base, g)).collect(),
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let g = identity.get_group(&ctx, &id).await?;
    Ok(Json(json!({ "group": views::group(&base, &g) })))
}

/// The name and domain come first; the rest is reported once the caller is allowed.
fn new_group(body: Value) -> Result<NewGroup> {
    let mut fields = Fields::from_body(body, "group")?;
    let name = fields.string("name", 64)?;
    let domain_id = fields.opt_string("domain_id")?;
    Ok(NewGroup {
        name,
        domain_id,
        attributes: group_attributes(fields),
    })
}

fn group_attributes(mut fields: Fields) -> Parsed<GroupAttributes> {
    Ok(GroupAttributes {
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        extra: fields.into_rest(),
    })
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let g = identity.create_group(&ctx, new_group(body)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "group": views::group(&base, &g) })),
    ))
}

fn group_update(body: Value) -> Parsed<GroupUpdate> {
    let mut fields = Fields::from_body(body, "group")?;
    let name = present_string(&mut fields, "name", 64)?;
    let description = fields.opt_string_max("description", 65_535)?;
    if fields.contains("domain_id") {
        return Err(Error::validation("'domain_id' cannot be updated."));
    }
    fields.ignore("id");
    Ok(GroupUpdate {
        name,
        description,
        extra: fields.into_rest(),
    })
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let g = identity.update_group(&ctx, &id, group_update(body)).await?;
    Ok(Json(json!({ "group": views::group(&base, &g) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_group(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let users = identity.group_members(&ctx, &id).await?;
    let path = format!("groups/{id}/users");
    Ok(Json(views::users(
        &base,
        &path,
        &users,
        &identity.password_rules,
    )))
}

pub async fn add_member(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity.add_group_member(&ctx, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_member(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity.check_group_member(&ctx, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_member(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity.remove_group_member(&ctx, &id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
