//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, present_string};
use crate::error::{Error, Result};
use crate::model::Role;
use crate::ops::Parsed;
use crate::ops::roles::{Inference, NewRole, RoleAttributes, RoleQuery, RoleUpdate};
use crate::service::Identity;
use crate::views;

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let query = RoleQuery {
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
    };
    let roles = identity.list_roles(&ctx, query).await?;
    Ok(Json(views::collection(
        &base,
        "roles",
        "roles",
        roles.iter().map(|r| views::role(&base, r)).collect(),
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let r = identity.get_role(&ctx, &id).await?;
    Ok(Json(json!({ "role": views::role(&base, &r) })))
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

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let r = identity.create_role(&ctx, new_role(body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "role": views::role(&base, &r) })),
    ))
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

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let r = identity.update_role(&ctx, &id, role_update(body)).await?;
    Ok(Json(json!({ "role": views::role(&base, &r) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_role(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn inference(base: &BaseUrl, prior: &Role, implied: Value) -> Value {
    json!({ "prior_role": views::role_ref(base, prior), "implies": implied })
}

fn inference_list(base: &BaseUrl, (prior, implied): &Inference) -> Value {
    let implied: Vec<Value> = implied.iter().map(|r| views::role_ref(base, r)).collect();
    inference(base, prior, implied.into())
}

pub async fn list_implied(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let found = identity.implied_roles(&ctx, &id).await?;
    Ok(Json(json!({
        "role_inference": inference_list(&base, &found),
        "links": { "self": views::url(&base, &format!("roles/{id}/implies")) },
    })))
}

fn implication_body(base: &BaseUrl, prior: &Role, implied: &Role) -> Value {
    json!({
        "role_inference": inference(base, prior, views::role_ref(base, implied)),
        "links": { "self": views::url(base, &format!("roles/{}/implies/{}", prior.id, implied.id)) },
    })
}

pub async fn add_implied(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>)> {
    let (prior, implied) = identity
        .add_implied_role(&ctx, &prior_id, &implied_id)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(implication_body(&base, &prior, &implied)),
    ))
}

pub async fn show_implied(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let (prior, implied) = identity
        .get_implied_role(&ctx, &prior_id, &implied_id)
        .await?;
    Ok(Json(implication_body(&base, &prior, &implied)))
}

pub async fn check_implied(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity
        .check_implied_role(&ctx, &prior_id, &implied_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_implied(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity
        .remove_implied_role(&ctx, &prior_id, &implied_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn inferences(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
) -> Result<Json<Value>> {
    let rules: Vec<Value> = identity
        .role_inferences(&ctx)
        .await?
        .iter()
        .map(|found| inference_list(&base, found))
        .collect();
    Ok(Json(
        json!({ "role_inferences": rules, "links": { "self": views::url(&base, "role_inferences") } }),
    ))
}
