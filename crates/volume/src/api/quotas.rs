//! Quota and limit handlers.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use onestack_api::paging::{self, Params};
use serde_json::{Value, json};

use super::input::{self, flag};
use super::{Ctx, Reply, Shared};
use crate::config::QUOTA_RESOURCES;
use crate::error::{Error, Result};
use crate::ops::quotas::QuotaUsage;
use crate::views;

async fn type_names(v: &crate::service::Volumes) -> Result<Vec<String>> {
    Ok(v.type_names().await?.into_values().collect())
}

fn limits_only(limits: BTreeMap<&'static str, i64>) -> BTreeMap<&'static str, QuotaUsage> {
    limits
        .into_iter()
        .map(|(r, limit)| (r, QuotaUsage { limit, in_use: 0 }))
        .collect()
}

pub async fn show_quota(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(project): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let usage = paging::first(&params, "usage")
        .map(|u| flag("usage", &json!(u)))
        .transpose()?
        .unwrap_or(false);
    let quotas = v.quota_usage(&ctx.caller, &project).await?;
    let names = type_names(&v).await?;
    Ok(Json(
        json!({"quota_set": views::quota_set(Some(&project), &quotas, usage, &names)}),
    ))
}

pub async fn default_quota(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Reply {
    if !ctx.caller.owns(&project) {
        return Err(Error::Policy("volume_extension:quotas:show".into()).into());
    }
    let names = type_names(&v).await?;
    let quotas = limits_only(v.default_quotas());
    Ok(Json(
        json!({"quota_set": views::quota_set(Some(&project), &quotas, false, &names)}),
    ))
}

fn quota_body(body: Value) -> Result<BTreeMap<String, i64>> {
    let map = input::object(body, "quota_set")?;
    map.into_iter()
        .filter(|(key, _)| key != "id" && key != "tenant_id")
        .map(|(key, value)| {
            if !QUOTA_RESOURCES.contains(&key.as_str()) {
                return Err(Error::Invalid(format!("Bad key(s) {key} in quota_set")));
            }
            let limit = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match limit {
                Some(l) if l >= -1 => Ok((key, l)),
                _ => Err(Error::Invalid(format!(
                    "Quota limit {value} for {key} must be an integer of -1 or more."
                ))),
            }
        })
        .collect()
}

pub async fn update_quota(
    State(v): State<Shared>,
    ctx: Ctx,
    Path(project): Path<String>,
    onestack_api::body::JsonBody(body): onestack_api::body::JsonBody<Value>,
) -> Reply {
    let limits = quota_body(body)?;
    let result = v.update_quotas(&ctx.caller, &project, limits).await?;
    let names = type_names(&v).await?;
    Ok(Json(
        json!({"quota_set": views::quota_set(None, &limits_only(result), false, &names)}),
    ))
}

pub async fn reset_quota(State(v): State<Shared>, ctx: Ctx, Path(project): Path<String>) -> Reply {
    v.reset_quotas(&ctx.caller, &project).await?;
    Ok(Json(json!({})))
}

pub async fn limits(State(v): State<Shared>, ctx: Ctx) -> Reply {
    let project = ctx.caller.project_id.clone();
    let quotas = v.quota_usage(&ctx.caller, &project).await?;
    Ok(Json(views::limits(&quotas)))
}
