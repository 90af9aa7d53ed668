//! Handlers for networks, subnets, ports, security groups and their rules: each parses the
//! request, calls the operation, and renders Neutron's view.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use http::StatusCode;
use onestack_api::body::JsonBody;
use onestack_api::{ApiError, AuthContext, BaseUrl};
use serde_json::{Value, json};

use super::query::{self, Params};
use super::{Created, Reply, Shared, caller, href, one, resource_fields};
use crate::views;

pub async fn list_networks(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let networks = n.list_networks(&caller).await?;
    let mut subnets: HashMap<String, Vec<String>> = HashMap::new();
    for (network, subnet) in n.subnet_ids(None).await? {
        subnets.entry(network).or_default().push(subnet);
    }
    let views = networks
        .iter()
        .map(|net| {
            views::network(
                net,
                subnets.get(&net.id).map(Vec::as_slice).unwrap_or(&[]),
                &caller,
            )
        })
        .collect();
    Ok(Json(query::respond(
        views,
        &params,
        "networks",
        &href(&base, "networks"),
    )?))
}

async fn network_view(
    n: &Shared,
    caller: &crate::policy::Caller,
    network: &crate::model::Network,
) -> Result<Value, ApiError> {
    let subnets: Vec<String> = n
        .subnet_ids(Some(&network.id))
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    Ok(views::network(network, &subnets, caller))
}

pub async fn show_network(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let network = n.get_network(&caller, &id).await?;
    Ok(one(
        "network",
        network_view(&n, &caller, &network).await?,
        &params,
    ))
}

pub async fn create_network(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let caller = caller(&ctx)?;
    let network = n
        .create_network(&caller, resource_fields(body, "network")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        one(
            "network",
            network_view(&n, &caller, &network).await?,
            &Vec::new(),
        ),
    ))
}

pub async fn update_network(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let caller = caller(&ctx)?;
    let network = n
        .update_network(&caller, &id, resource_fields(body, "network")?)
        .await?;
    Ok(one(
        "network",
        network_view(&n, &caller, &network).await?,
        &Vec::new(),
    ))
}

pub async fn delete_network(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_network(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_subnets(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let subnets = n.list_subnets(&caller(&ctx)?).await?;
    let views = subnets.iter().map(views::subnet).collect();
    Ok(Json(query::respond(
        views,
        &params,
        "subnets",
        &href(&base, "subnets"),
    )?))
}

pub async fn show_subnet(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let subnet = n.get_subnet(&caller(&ctx)?, &id).await?;
    Ok(one("subnet", views::subnet(&subnet), &params))
}

pub async fn create_subnet(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let subnet = n
        .create_subnet(&caller(&ctx)?, resource_fields(body, "subnet")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        one("subnet", views::subnet(&subnet), &Vec::new()),
    ))
}

pub async fn update_subnet(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let subnet = n
        .update_subnet(&caller(&ctx)?, &id, resource_fields(body, "subnet")?)
        .await?;
    Ok(one("subnet", views::subnet(&subnet), &Vec::new()))
}

pub async fn delete_subnet(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_subnet(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_ports(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let ports = n.list_ports(&caller).await?;
    let views = ports.iter().map(|p| views::port(p, &caller)).collect();
    Ok(Json(query::respond(
        views,
        &params,
        "ports",
        &href(&base, "ports"),
    )?))
}

pub async fn show_port(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let caller = caller(&ctx)?;
    let port = n.get_port(&caller, &id).await?;
    Ok(one("port", views::port(&port, &caller), &params))
}

pub async fn create_port(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let caller = caller(&ctx)?;
    let port = n
        .create_port(&caller, resource_fields(body, "port")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        one("port", views::port(&port, &caller), &Vec::new()),
    ))
}

pub async fn update_port(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let caller = caller(&ctx)?;
    let port = n
        .update_port(&caller, &id, resource_fields(body, "port")?)
        .await?;
    Ok(one("port", views::port(&port, &caller), &Vec::new()))
}

pub async fn delete_port(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_port(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_groups(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let groups = n.list_groups(&caller(&ctx)?).await?;
    let views = groups.iter().map(|(g, r)| views::group(g, r)).collect();
    Ok(Json(query::respond(
        views,
        &params,
        "security_groups",
        &href(&base, "security-groups"),
    )?))
}

pub async fn show_group(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let (g, r) = n.get_group(&caller(&ctx)?, &id).await?;
    Ok(one("security_group", views::group(&g, &r), &params))
}

pub async fn create_group(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let (g, r) = n
        .create_group(&caller(&ctx)?, resource_fields(body, "security_group")?)
        .await?;
    Ok((
        StatusCode::CREATED,
        one("security_group", views::group(&g, &r), &Vec::new()),
    ))
}

pub async fn update_group(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let (g, r) = n
        .update_group(
            &caller(&ctx)?,
            &id,
            resource_fields(body, "security_group")?,
        )
        .await?;
    Ok(one("security_group", views::group(&g, &r), &Vec::new()))
}

pub async fn delete_group(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_group(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_rules(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let rules = n.list_rules(&caller(&ctx)?).await?;
    let views = rules.iter().map(views::rule).collect();
    Ok(Json(query::respond(
        views,
        &params,
        "security_group_rules",
        &href(&base, "security-group-rules"),
    )?))
}

pub async fn show_rule(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let rule = n.get_rule(&caller(&ctx)?, &id).await?;
    Ok(one("security_group_rule", views::rule(&rule), &params))
}

pub async fn create_rule(
    State(n): State<Shared>,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Created {
    let rule = n
        .create_rule(
            &caller(&ctx)?,
            resource_fields(body, "security_group_rule")?,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        one("security_group_rule", views::rule(&rule), &Vec::new()),
    ))
}

pub async fn update_rule(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let rule = n
        .update_rule_description(
            &caller(&ctx)?,
            &id,
            resource_fields(body, "security_group_rule")?,
        )
        .await?;
    Ok(one("security_group_rule", views::rule(&rule), &Vec::new()))
}

pub async fn delete_rule(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    n.delete_rule(&caller(&ctx)?, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_availabilities(
    State(n): State<Shared>,
    ctx: AuthContext,
    BaseUrl(base): BaseUrl,
    Query(params): Query<Params>,
) -> Reply {
    let mut views = n.ip_availabilities(&caller(&ctx)?).await?;
    // Pagination keys on `id`; availabilities are keyed by network.
    for v in &mut views {
        v["id"] = v["network_id"].clone();
    }
    let mut body = query::respond(
        views,
        &params,
        "network_ip_availabilities",
        &href(&base, "network-ip-availabilities"),
    )?;
    if let Some(items) = body["network_ip_availabilities"].as_array_mut() {
        for item in items {
            if let Some(map) = item.as_object_mut() {
                map.remove("id");
            }
        }
    }
    Ok(Json(body))
}

pub async fn show_availability(
    State(n): State<Shared>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Reply {
    let views = n.ip_availabilities(&caller(&ctx)?).await?;
    views
        .into_iter()
        .find(|v| v["network_id"] == id.as_str())
        .map(|v| Json(json!({"network_ip_availability": v})))
        .ok_or_else(|| crate::error::Error::network_not_found(&id).into())
}
