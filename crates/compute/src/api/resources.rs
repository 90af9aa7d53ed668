//! Handlers for flavors, keypairs, server groups, hosts (services, hypervisors, zones),
//! limits, quotas and usage.

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use serde_json::{Value, json};

use super::{Ctx, Params, Reply, Shared, paginate, param, resource_body};
use crate::ops::hosts::ServiceId;
use crate::views;

type Created = Result<(StatusCode, Json<Value>), ApiError>;

// ---- flavors ----

async fn flavor_listing(s: Shared, ctx: Ctx, params: Params, detail: bool) -> Reply {
    let flavors = s.list_flavors(&ctx.caller, &params).await?;
    let mut flavors = flavors;
    match (param(&params, "sort_key"), param(&params, "sort_dir")) {
        (Some("name"), dir) => {
            flavors.sort_by(|a, b| a.name.cmp(&b.name));
            if dir == Some("desc") {
                flavors.reverse();
            }
        }
        (Some("memory_mb" | "ram"), _) => flavors.sort_by_key(|f| f.ram),
        (Some("vcpus"), _) => flavors.sort_by_key(|f| f.vcpus),
        _ => flavors.sort_by(|a, b| a.id.cmp(&b.id)),
    }
    let items = flavors
        .iter()
        .map(|f| {
            (
                f.id.clone(),
                views::flavor(f, ctx.version, &ctx.base, detail),
            )
        })
        .collect();
    let path = if detail { "flavors/detail" } else { "flavors" };
    let (items, links) = paginate(items, &params, &format!("{}/v2.1/{path}", ctx.base))?;
    let mut out = json!({"flavors": items});
    if let Some(l) = links {
        out["flavors_links"] = l;
    }
    Ok(Json(out))
}

pub async fn list_flavors(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    flavor_listing(s, ctx, p, false).await
}

pub async fn list_flavors_detail(
    State(s): State<Shared>,
    ctx: Ctx,
    Query(p): Query<Params>,
) -> Reply {
    flavor_listing(s, ctx, p, true).await
}

pub async fn create_flavor(
    State(s): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let new = resource_body::new_flavor(body)?;
    let flavor = s.create_flavor(&ctx.caller, new).await?;
    Ok(Json(
        json!({"flavor": views::flavor(&flavor, ctx.version, &ctx.base, true)}),
    ))
}

pub async fn show_flavor(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let flavor = s.get_flavor(&ctx.caller, &id).await?;
    Ok(Json(
        json!({"flavor": views::flavor(&flavor, ctx.version, &ctx.base, true)}),
    ))
}

pub async fn update_flavor(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    if !ctx.version.at_least(55) {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Updating a flavor needs microversion 2.55 or later.",
        ));
    }
    let change = resource_body::flavor_update(body)?;
    let flavor = s.update_flavor(&ctx.caller, &id, change).await?;
    Ok(Json(
        json!({"flavor": views::flavor(&flavor, ctx.version, &ctx.base, true)}),
    ))
}

pub async fn delete_flavor(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_flavor(&ctx.caller, &id).await?;
    Ok(StatusCode::ACCEPTED)
}

fn access_view(flavor_id: &str, projects: &[String]) -> Value {
    json!({"flavor_access": projects.iter().map(|p| json!({"flavor_id": flavor_id, "tenant_id": p})).collect::<Vec<_>>()})
}

pub async fn flavor_access(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let projects = s.flavor_access(&ctx.caller, &id).await?;
    Ok(Json(access_view(&id, &projects)))
}

pub async fn flavor_action(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let (add, args) = match (body.get("addTenantAccess"), body.get("removeTenantAccess")) {
        (Some(a), None) => (true, a),
        (None, Some(r)) => (false, r),
        _ => {
            return Err(ApiError::bad_request(
                "The body must hold addTenantAccess or removeTenantAccess.",
            ));
        }
    };
    let tenant = args
        .get("tenant")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "Invalid input for field/attribute tenant. 'tenant' is a required property",
            )
        })?;
    let projects = s
        .change_flavor_access(&ctx.caller, &id, tenant, add)
        .await?;
    Ok(Json(access_view(&id, &projects)))
}

pub async fn list_extra_specs(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let flavor = s.get_flavor(&ctx.caller, &id).await?;
    Ok(Json(json!({"extra_specs": flavor.extra_specs})))
}

pub async fn create_extra_specs(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let specs = resource_body::extra_specs(&body)?;
    let keys: Vec<String> = specs.keys().cloned().collect();
    let flavor = s.set_extra_specs(&ctx.caller, &id, specs).await?;
    // Only what was asked for, as now stored.
    let echoed: serde_json::Map<String, Value> = flavor
        .extra_specs
        .iter()
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    Ok(Json(json!({"extra_specs": echoed})))
}

pub async fn show_extra_spec(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Reply {
    let flavor = s.get_flavor(&ctx.caller, &id).await?;
    let value = flavor.extra_specs.get(&key).ok_or_else(|| {
        ApiError::not_found(format!("Flavor {id} has no extra specs with key {key}."))
    })?;
    Ok(Json(json!({ key: value })))
}

pub async fn update_extra_spec(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let spec = resource_body::extra_spec(body, &key)?;
    let flavor = s.set_extra_specs(&ctx.caller, &id, spec).await?;
    Ok(Json(json!({ key.clone(): flavor.extra_specs.get(&key) })))
}

pub async fn delete_extra_spec(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.delete_extra_spec(&ctx.caller, &id, &key).await?;
    Ok(StatusCode::OK)
}

// ---- keypairs ----

pub async fn list_keypairs(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    let owner = s.keypair_owner(&ctx.caller, ctx.version, param(&p, "user_id"))?;
    let keypairs = s.list_keypairs(&owner).await?;
    let items = keypairs
        .iter()
        .map(|k| {
            (
                k.name.clone(),
                json!({"keypair": views::keypair(k, ctx.version, false)}),
            )
        })
        .collect();
    let (items, links) = if ctx.version.at_least(35) {
        paginate(items, &p, &format!("{}/v2.1/os-keypairs", ctx.base))?
    } else {
        (items.into_iter().map(|(_, v)| v).collect(), None)
    };
    let mut out = json!({"keypairs": items});
    if let Some(l) = links {
        out["keypairs_links"] = l;
    }
    Ok(Json(out))
}

pub async fn create_keypair(
    State(s): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let new = resource_body::new_keypair(body, ctx.version)?;
    let (keypair, private) = s.create_keypair(&ctx.caller, new).await?;
    let mut v = views::keypair(&keypair, ctx.version, false);
    v["user_id"] = json!(keypair.user_id);
    if let Some(p) = private {
        v["private_key"] = json!(p);
    }
    // 2.2 made create answer 201.
    let status = if ctx.version.at_least(2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"keypair": v}))))
}

pub async fn show_keypair(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(name): Path<String>,
    Query(p): Query<Params>,
) -> Reply {
    let owner = s.keypair_owner(&ctx.caller, ctx.version, param(&p, "user_id"))?;
    let keypair = s.get_keypair(&owner, &name).await?;
    Ok(Json(
        json!({"keypair": views::keypair(&keypair, ctx.version, true)}),
    ))
}

pub async fn delete_keypair(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(name): Path<String>,
    Query(p): Query<Params>,
) -> Result<StatusCode, ApiError> {
    let owner = s.keypair_owner(&ctx.caller, ctx.version, param(&p, "user_id"))?;
    s.delete_keypair(&owner, &name).await?;
    Ok(if ctx.version.at_least(2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}

// ---- server groups ----

pub async fn list_groups(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    let all =
        param(&p, "all_projects").is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let groups = s.list_groups(&ctx.caller, all).await?;
    let items = groups
        .iter()
        .map(|g| (g.id.clone(), views::server_group(g, ctx.version)))
        .collect();
    let (items, _) = paginate(items, &p, &format!("{}/v2.1/os-server-groups", ctx.base))?;
    Ok(Json(json!({"server_groups": items})))
}

pub async fn create_group(
    State(s): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let new = resource_body::new_group(body, ctx.version)?;
    let group = s.create_group(&ctx.caller, new).await?;
    Ok(Json(
        json!({"server_group": views::server_group(&group, ctx.version)}),
    ))
}

pub async fn show_group(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let group = s.get_group(&ctx.caller, &id).await?;
    Ok(Json(
        json!({"server_group": views::server_group(&group, ctx.version)}),
    ))
}

pub async fn delete_group(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_group(&ctx.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- aggregates ----

/// An aggregate's id in a path: Nova's integer id.
fn aggregate_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("Aggregate {id} could not be found.")))
}

pub async fn list_aggregates(State(s): State<Shared>, ctx: Ctx) -> Reply {
    let items: Vec<Value> = s
        .aggregates(&ctx.caller)
        .await?
        .iter()
        .map(|a| views::aggregate(a, ctx.version, false))
        .collect();
    Ok(Json(json!({"aggregates": items})))
}

pub async fn create_aggregate(
    State(s): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let (name, zone) = resource_body::new_aggregate(body)?;
    let aggregate = s.create_aggregate(&ctx.caller, name, zone).await?;
    Ok(Json(
        json!({"aggregate": views::aggregate(&aggregate, ctx.version, true)}),
    ))
}

pub async fn show_aggregate(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let aggregate = s.aggregate(&ctx.caller, aggregate_id(&id)?).await?;
    Ok(Json(
        json!({"aggregate": views::aggregate(&aggregate, ctx.version, false)}),
    ))
}

pub async fn update_aggregate(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let id = aggregate_id(&id)?;
    let (name, zone) = resource_body::aggregate_update(body)?;
    let aggregate = s.update_aggregate(&ctx.caller, id, name, zone).await?;
    Ok(Json(
        json!({"aggregate": views::aggregate(&aggregate, ctx.version, false)}),
    ))
}

/// `DELETE /os-aggregates/{id}`: 200 with no body, as Nova answers.
pub async fn delete_aggregate(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_aggregate(&ctx.caller, aggregate_id(&id)?).await?;
    Ok(StatusCode::OK)
}

pub async fn aggregate_action(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let id = aggregate_id(&id)?;
    let action = resource_body::aggregate_action(body)?;
    let aggregate = s.aggregate_action(&ctx.caller, id, action).await?;
    Ok(Json(
        json!({"aggregate": views::aggregate(&aggregate, ctx.version, false)}),
    ))
}

// ---- hosts ----

pub async fn zones(State(s): State<Shared>, ctx: Ctx) -> Reply {
    Ok(Json(
        json!({"availabilityZoneInfo": s.zones(&ctx.caller, false).await?}),
    ))
}

pub async fn zones_detail(State(s): State<Shared>, ctx: Ctx) -> Reply {
    Ok(Json(
        json!({"availabilityZoneInfo": s.zones(&ctx.caller, true).await?}),
    ))
}

pub async fn list_hypervisors(State(s): State<Shared>, ctx: Ctx) -> Reply {
    Ok(Json(
        json!({"hypervisors": s.hypervisors(&ctx.caller, ctx.version, false).await?}),
    ))
}

pub async fn list_hypervisors_detail(State(s): State<Shared>, ctx: Ctx) -> Reply {
    Ok(Json(
        json!({"hypervisors": s.hypervisors(&ctx.caller, ctx.version, true).await?}),
    ))
}

pub async fn show_hypervisor(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let all = s.hypervisors(&ctx.caller, ctx.version, true).await?;
    let found = all
        .into_iter()
        .find(|h| {
            h["id"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| h["id"].to_string())
                == id
        })
        .ok_or_else(|| {
            ApiError::not_found(format!("Hypervisor with ID {id} could not be found."))
        })?;
    Ok(Json(json!({"hypervisor": found})))
}

pub async fn list_services(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    let services = s.services(&ctx.caller, ctx.version).await?;
    let services: Vec<Value> = services
        .into_iter()
        .filter(|v| param(&p, "host").is_none_or(|h| v["host"] == h))
        .filter(|v| param(&p, "binary").is_none_or(|b| v["binary"] == b))
        .collect();
    Ok(Json(json!({"services": services})))
}

/// `PUT /os-services/{id}` (2.53+, by uuid) or the older `/os-services/enable|disable|
/// disable-log-reason|force-down` with host and binary in the body.
pub async fn update_service(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let legacy = matches!(
        id.as_str(),
        "enable" | "disable" | "disable-log-reason" | "force-down"
    );
    let (status, reason, forced) = if legacy {
        let status = match id.as_str() {
            "enable" => Some(false),
            "disable" | "disable-log-reason" => Some(true),
            _ => None,
        };
        (
            status,
            text("disabled_reason"),
            body.get("forced_down").and_then(Value::as_bool),
        )
    } else {
        let status = match text("status").as_deref() {
            Some("enabled") => Some(false),
            Some("disabled") => Some(true),
            None => None,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid input for field/attribute status. Value: {other}."
                )));
            }
        };
        (
            status,
            text("disabled_reason"),
            body.get("forced_down").and_then(Value::as_bool),
        )
    };
    let host_name = text("host");
    let host = s
        .update_service(
            &ctx.caller,
            |h| {
                if legacy {
                    host_name.as_deref() == Some(h.host.as_str())
                } else {
                    h.service_id == id
                }
            },
            status,
            reason,
            forced,
        )
        .await?;
    let mut service = json!({
        "binary": "nova-compute", "host": host.host,
        "status": if host.disabled { "disabled" } else { "enabled" },
        "disabled_reason": host.disabled_reason, "forced_down": host.forced_down,
    });
    if !legacy {
        service["id"] = json!(host.service_id);
        service["zone"] = json!(host.availability_zone());
        service["state"] = json!("up");
        service["updated_at"] = json!(views::time_micro(host.updated_at));
    }
    Ok(Json(json!({"service": service})))
}

/// `DELETE /os-services/{id}`: the service's uuid from 2.53, its number before.
pub async fn delete_service(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let service = if ctx.version.at_least(53) {
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(ApiError::bad_request(format!("Invalid uuid {id}")));
        }
        ServiceId::Uuid(id)
    } else {
        match id.parse() {
            Ok(number) => ServiceId::Number(number),
            Err(_) => return Err(ApiError::not_found(format!("Service {id} not found."))),
        }
    };
    s.delete_service(&ctx.caller, &service).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- limits, quotas, usage ----

pub async fn limits(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    Ok(Json(
        s.limits(&ctx.caller, ctx.version, param(&p, "tenant_id"))
            .await?,
    ))
}

pub async fn show_quota(State(s): State<Shared>, ctx: Ctx, Path(project): Path<String>) -> Reply {
    Ok(Json(
        json!({"quota_set": s.quota_set(&ctx.caller, &project, false).await?}),
    ))
}

pub async fn detail_quota(State(s): State<Shared>, ctx: Ctx, Path(project): Path<String>) -> Reply {
    Ok(Json(
        json!({"quota_set": s.quota_set(&ctx.caller, &project, true).await?}),
    ))
}

pub async fn default_quota(
    State(s): State<Shared>,
    _ctx: Ctx,
    Path(project): Path<String>,
) -> Reply {
    Ok(Json(json!({"quota_set": s.default_quota_set(&project)})))
}

pub async fn update_quota(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let change = resource_body::quota_update(&body)?;
    Ok(Json(
        json!({"quota_set": s.update_quota_set(&ctx.caller, &project, change).await?}),
    ))
}

pub async fn reset_quota(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.reset_quota_set(&ctx.caller, &project).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn list_usage(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    Ok(Json(
        json!({"tenant_usages": s.tenant_usage(&ctx.caller, None, &p).await?}),
    ))
}

pub async fn show_usage(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(project): Path<String>,
    Query(p): Query<Params>,
) -> Reply {
    let usage = s.tenant_usage(&ctx.caller, Some(&project), &p).await?;
    Ok(Json(
        json!({"tenant_usage": usage.into_iter().next().unwrap_or_else(|| json!({}))}),
    ))
}
