//! `/v2.0/quotas`: a project reads its own limits, admins read and set anyone's.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use onestack_api::body::JsonBody;
use onestack_api::{ApiError, AuthContext, Fields};
use serde_json::{Map, Value, json};

use super::{Shared, caller};
use crate::config::QUOTA_RESOURCES;
use crate::policy::Caller;

fn may_read(caller: &Caller, project_id: &str) -> Result<(), ApiError> {
    if caller.owns(project_id) {
        Ok(())
    } else {
        Err(
            ApiError::forbidden("(rule:get_quota) is disallowed by policy")
                .with_kind("PolicyNotAuthorized"),
        )
    }
}

fn as_object(limits: impl IntoIterator<Item = (String, i64)>, project_id: Option<&str>) -> Value {
    let mut map: Map<String, Value> = limits.into_iter().map(|(k, v)| (k, json!(v))).collect();
    if let Some(p) = project_id {
        map.insert("project_id".into(), json!(p));
        map.insert("tenant_id".into(), json!(p));
    }
    Value::Object(map)
}

pub async fn list(State(n): State<Shared>, ctx: AuthContext) -> Result<Json<Value>, ApiError> {
    let caller = caller(&ctx)?;
    caller.require_admin("get_quota").map_err(ApiError::from)?;
    let mut quotas = Vec::new();
    for project in n.projects_with_quotas().await? {
        quotas.push(as_object(
            n.limits_in(&n.pool, &project).await?,
            Some(&project),
        ));
    }
    Ok(Json(json!({"quotas": quotas})))
}

pub async fn show(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    may_read(&caller(&ctx)?, &project_id)?;
    Ok(Json(
        json!({"quota": as_object(n.limits_in(&n.pool, &project_id).await?, None)}),
    ))
}

pub async fn defaults(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    may_read(&caller(&ctx)?, &project_id)?;
    Ok(Json(json!({"quota": as_object(n.default_limits(), None)})))
}

pub async fn details(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    may_read(&caller(&ctx)?, &project_id)?;
    let limits = n.limits_in(&n.pool, &project_id).await?;
    let used = n.usage(&project_id).await?;
    let detail: Map<String, Value> = limits
        .into_iter()
        .map(|(k, limit)| {
            let used = used.get(&k).copied().unwrap_or(0);
            (k, json!({"limit": limit, "used": used, "reserved": 0}))
        })
        .collect();
    Ok(Json(json!({"quota": detail})))
}

pub async fn update(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&ctx)?;
    caller
        .require_admin("update_quota")
        .map_err(ApiError::from)?;
    let fields = Fields::from_body(body, "quota")?;
    let mut limits = Vec::new();
    for (key, value) in fields.into_rest() {
        if !QUOTA_RESOURCES.contains(&key.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unrecognized attribute(s) '{key}'"
            )));
        }
        let limit = match &value {
            Value::Number(num) => num.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .filter(|l| *l >= -1)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid input for {key}. Reason: '{value}' is not a valid integer or is less than -1.")))?;
        limits.push((key, limit));
    }
    n.set_limits(&project_id, &limits).await?;
    Ok(Json(
        json!({"quota": as_object(n.limits_in(&n.pool, &project_id).await?, None)}),
    ))
}

pub async fn reset(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller(&ctx)?
        .require_admin("delete_quota")
        .map_err(ApiError::from)?;
    n.reset_limits(&project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
