//! `/v2.0/quotas`: a project reads its own limits, admins read and set anyone's.

use axum::Json;
use axum::extract::{Path, State};
use http::StatusCode;
use onestack_api::body::JsonBody;
use onestack_api::{ApiError, AuthContext, Fields};
use serde_json::{Map, Value, json};

use super::{Shared, caller};
use crate::config::QUOTA_RESOURCES;

fn as_object(limits: impl IntoIterator<Item = (String, i64)>, project_id: Option<&str>) -> Value {
    let mut map: Map<String, Value> = limits.into_iter().map(|(k, v)| (k, json!(v))).collect();
    if let Some(p) = project_id {
        map.insert("project_id".into(), json!(p));
        map.insert("tenant_id".into(), json!(p));
    }
    Value::Object(map)
}

pub async fn list(State(n): State<Shared>, ctx: AuthContext) -> Result<Json<Value>, ApiError> {
    let quotas: Vec<Value> = n
        .quotas(&caller(&ctx)?)
        .await?
        .into_iter()
        .map(|(project, limits)| as_object(limits, Some(&project)))
        .collect();
    Ok(Json(json!({"quotas": quotas})))
}

pub async fn show(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let limits = n.quota(&caller(&ctx)?, &project_id).await?;
    Ok(Json(json!({"quota": as_object(limits, None)})))
}

pub async fn defaults(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let limits = n.default_quota(&caller(&ctx)?, &project_id).await?;
    Ok(Json(json!({"quota": as_object(limits, None)})))
}

pub async fn details(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (limits, used) = n.quota_usage(&caller(&ctx)?, &project_id).await?;
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
    let limits = n.set_quota(&caller, &project_id, &limits).await?;
    Ok(Json(json!({"quota": as_object(limits, None)})))
}

pub async fn reset(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(project_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.reset_quota(&caller(&ctx)?, &project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
