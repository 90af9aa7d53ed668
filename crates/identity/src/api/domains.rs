//! `/v3/domains`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, bool_param, present_string};
use crate::error::Result;
use crate::ops::domains::{DomainFilter, DomainUpdate, NewDomain};
use crate::service::Identity;
use crate::views;

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let filter = DomainFilter {
        name: params.get("name").cloned(),
        enabled: bool_param(&params, "enabled"),
    };
    let domains = identity.list_domains(&ctx, filter).await?;
    Ok(Json(views::collection(
        &base,
        "domains",
        "domains",
        domains.iter().map(|d| views::domain(&base, d)).collect(),
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let d = identity.get_domain(&ctx, &id).await?;
    Ok(Json(json!({ "domain": views::domain(&base, &d) })))
}

fn new_domain(body: Value) -> Result<NewDomain> {
    let mut fields = Fields::from_body(body, "domain")?;
    let name = fields.string("name", 64)?;
    let explicit_id = fields.opt_string_max("explicit_domain_id", 64)?;
    Ok(NewDomain {
        name,
        explicit_id,
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        extra: {
            fields.ignore("tags");
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
    let d = identity.create_domain(&ctx, new_domain(body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "domain": views::domain(&base, &d) })),
    ))
}

fn domain_update(body: Value) -> Result<DomainUpdate> {
    let mut fields = Fields::from_body(body, "domain")?;
    let name = present_string(&mut fields, "name", 64)?;
    let description = fields.opt_string_max("description", 65_535)?;
    let enabled = fields.opt_bool("enabled")?;
    fields.ignore("id");
    fields.ignore("tags");
    fields.ignore("options");
    Ok(DomainUpdate {
        name,
        description,
        enabled,
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
    let d = identity
        .update_domain(&ctx, &id, domain_update(body))
        .await?;
    Ok(Json(json!({ "domain": views::domain(&base, &d) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_domain(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
