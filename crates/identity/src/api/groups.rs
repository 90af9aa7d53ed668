//! `/v3/groups` and group membership.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{Fields, JsonBody};
use serde_json::Value;

use super::users::user_view;
use super::{Call, Params, Reply, present_string};
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::groups::{GroupAttributes, GroupQuery, GroupUpdate, NewGroup};
use crate::views;

pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let query = GroupQuery {
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
    };
    let groups = call.identity.list_groups(&call.ctx, query).await?;
    call.many("groups", "groups", views::group, &groups)
}

pub async fn show(call: Call, Path(id): Path<String>) -> Reply {
    let g = call.identity.get_group(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "group", views::group, &g)
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

pub async fn create(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_group(body)?;
    let g = call.identity.create_group(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "group", views::group, &g)
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

pub async fn update(call: Call, Path(id): Path<String>, JsonBody(body): JsonBody<Value>) -> Reply {
    let update = group_update(body);
    let g = call.identity.update_group(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "group", views::group, &g)
}

pub async fn delete(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_group(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn members(call: Call, Path(id): Path<String>) -> Reply {
    let users = call.identity.group_members(&call.ctx, &id).await?;
    let path = format!("groups/{id}/users");
    call.many("users", &path, user_view(&call.identity), &users)
}

pub async fn add_member(
    call: Call,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    call.identity
        .add_group_member(&call.ctx, &id, &user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_member(
    call: Call,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    call.identity
        .check_group_member(&call.ctx, &id, &user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_member(
    call: Call,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    call.identity
        .remove_group_member(&call.ctx, &id, &user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
