//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Call, Params, Reply, present_string};
use crate::error::{Error, Result};
use crate::model::Role;
use crate::ops::Parsed;
use crate::ops::roles::{Inference, NewRole, RoleAttributes, RoleQuery, RoleUpdate};
use crate::views;

pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let query = RoleQuery {
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
    };
    let roles = call.identity.list_roles(&call.ctx, query).await?;
    call.many("roles", "roles", views::role, &roles)
}

pub async fn show(call: Call, Path(id): Path<String>) -> Reply {
    let r = call.identity.get_role(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "role", views::role, &r)
}

fn new_role(body: Value) -> Parsed<NewRole> {
    let mut fields = Fields::from_body(body, "role")?;
    let name = fields.string("name", 255)?;
    let domain_id = fields.opt_string("domain_id")?;
    Ok(NewRole {
        name,
        domain_id,
        attributes: role_attributes(fields),
    })
}

fn role_attributes(mut fields: Fields) -> Parsed<RoleAttributes> {
    Ok(RoleAttributes {
        description: fields
            .opt_string_max("description", 255)?
            .unwrap_or_default(),
        extra: {
            fields.ignore("options");
            fields.into_rest()
        },
    })
}

pub async fn create(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_role(body);
    let r = call.identity.create_role(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "role", views::role, &r)
}

fn role_update(body: Value) -> Parsed<RoleUpdate> {
    let mut fields = Fields::from_body(body, "role")?;
    let name = present_string(&mut fields, "name", 255)?;
    let description = fields.opt_string_max("description", 255)?;
    if fields.contains("domain_id") {
        return Err(Error::validation("'domain_id' cannot be updated."));
    }
    fields.ignore("id");
    fields.ignore("options");
    Ok(RoleUpdate {
        name,
        description,
        extra: fields.into_rest(),
    })
}

pub async fn update(call: Call, Path(id): Path<String>, JsonBody(body): JsonBody<Value>) -> Reply {
    let update = role_update(body);
    let r = call.identity.update_role(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "role", views::role, &r)
}

pub async fn delete(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_role(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn inference(base: &BaseUrl, prior: &Role, implied: Value) -> Value {
    json!({ "prior_role": views::role_ref(base, prior), "implies": implied })
}

fn inference_list(base: &BaseUrl, (prior, implied): &Inference) -> Value {
    let implied: Vec<Value> = implied.iter().map(|r| views::role_ref(base, r)).collect();
    inference(base, prior, implied.into())
}

pub async fn list_implied(call: Call, Path(id): Path<String>) -> Result<Json<Value>> {
    let found = call.identity.implied_roles(&call.ctx, &id).await?;
    Ok(Json(json!({
        "role_inference": inference_list(&call.base, &found),
        "links": { "self": views::url(&call.base, &format!("roles/{id}/implies")) },
    })))
}

fn implication_body(base: &BaseUrl, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": inference(base, prior, views::role_ref(base, implied)),
        "links": { "self": views::url(base, &format!("roles/{}/implies/{}", prior.id, implied.id)) },
    })
}

pub async fn add_implied(
    call: Call,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>)> {
    let (prior, implied) = call
        .identity
        .add_implied_role(&call.ctx, &prior_id, &implied_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(implication_body(&call.base, &prior, &implied)),
    ))
}

pub async fn show_implied(
    call: Call,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let (prior, implied) = call
        .identity
        .get_implied_role(&call.ctx, &prior_id, &implied_id)
        .await?;
    Ok(Json(implication_body(&call.base, &prior, &implied)))
}

pub async fn check_implied(
    call: Call,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    call.identity
        .check_implied_role(&call.ctx, &prior_id, &implied_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_implied(
    call: Call,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    call.identity
        .remove_implied_role(&call.ctx, &prior_id, &implied_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn inferences(call: Call) -> Result<Json<Value>> {
    let rules: Vec<Value> = call
        .identity
        .role_inferences(&call.ctx)
        .await?
        .iter()
        .map(|found| inference_list(&call.base, found))
        .collect();
    Ok(Json(
        json!({ "role_inferences": rules, "links": { "self": views::url(&call.base, "role_inferences") } }),
    ))
}
