//! `/v3/domains`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{Fields, JsonBody};
use serde_json::Value;

use super::{Call, Params, Reply, bool_param, present_string};
use crate::error::Result;
use crate::ops::domains::{DomainFilter, DomainUpdate, NewDomain};
use crate::views;

pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let filter = DomainFilter {
        name: params.get("name").cloned(),
        enabled: bool_param(&params, "enabled"),
    };
    let domains = call.identity.list_domains(&call.ctx, filter).await?;
    call.many("domains", "domains", views::domain, &domains)
}

pub async fn show(call: Call, Path(id): Path<String>) -> Reply {
    let d = call.identity.get_domain(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "domain", views::domain, &d)
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

pub async fn create(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_domain(body);
    let d = call.identity.create_domain(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "domain", views::domain, &d)
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

pub async fn update(call: Call, Path(id): Path<String>, JsonBody(body): JsonBody<Value>) -> Reply {
    let update = domain_update(body);
    let d = call.identity.update_domain(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "domain", views::domain, &d)
}

pub async fn delete(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_domain(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
