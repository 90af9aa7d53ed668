//! Handlers for servers, their actions and sub-resources (metadata, tags, ips, interfaces,
//! volume attachments, instance actions).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use onestack_api::ApiError;
use onestack_api::body::JsonBody;
use serde_json::{Value, json};

use super::input::string_map;
use super::{Ctx, Params, Reply, Shared, action_body, limited, paginate, server_body, volume_body};
use crate::error::Error;
use crate::model::Server;
use crate::ops::action_input::ServerAction;
use crate::ops::actions::Outcome;
use crate::ops::ports::Interface;
use crate::views::{self, ServerView};

fn view(ctx: &Ctx) -> ServerView<'_> {
    ServerView {
        version: ctx.version,
        base: &ctx.base,
        admin: ctx.caller.admin,
        floating: Default::default(),
    }
}

/// The view of `servers` in detail, their floating addresses read from the network service.
async fn detail_view<'a>(
    s: &Shared,
    ctx: &'a Ctx,
    servers: &[&Server],
) -> Result<ServerView<'a>, ApiError> {
    Ok(ServerView {
        floating: s.floating_addresses(servers).await?,
        ..view(ctx)
    })
}

async fn listing(s: Shared, ctx: Ctx, params: Params, detail: bool) -> Reply {
    let servers = s.list_servers(&ctx.caller, &params).await?;
    let path = if detail { "servers/detail" } else { "servers" };
    // Page first, then render only the page.
    let ids = servers.iter().map(|s| (s.id.clone(), s)).collect();
    let (page, links) = paginate(ids, &params, &format!("{}/v2.1/{path}", ctx.base))?;
    let v = if detail {
        detail_view(&s, &ctx, &page).await?
    } else {
        view(&ctx)
    };
    let items: Vec<Value> = page
        .into_iter()
        .map(|server| {
            if detail {
                v.detail(server)
            } else {
                v.brief(server)
            }
        })
        .collect();
    let mut out = json!({"servers": items});
    if let Some(l) = links {
        out["servers_links"] = l;
    }
    Ok(Json(out))
}

pub async fn list_servers(State(s): State<Shared>, ctx: Ctx, Query(p): Query<Params>) -> Reply {
    listing(s, ctx, p, false).await
}

pub async fn list_servers_detail(
    State(s): State<Shared>,
    ctx: Ctx,
    Query(p): Query<Params>,
) -> Reply {
    listing(s, ctx, p, true).await
}

pub async fn create_server(
    State(s): State<Shared>,
    ctx: Ctx,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let new = server_body::new_server(body, ctx.version)?;
    let created = s.create_server(&ctx.auth, &ctx.caller, new).await?;
    if created.return_reservation_id {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"reservation_id": created.reservation_id})),
        )
            .into_response());
    }
    let server = &created.server;
    let location = format!("{}/v2.1/servers/{}", ctx.base, server.id);
    let body = json!({"server": {
        "id": server.id,
        "links": views::links(&ctx.base, "servers", &server.id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": server.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
        "adminPass": created.admin_pass,
    }});
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

pub async fn show_server(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    let v = detail_view(&s, &ctx, &[&server]).await?;
    Ok(Json(json!({"server": v.detail(&server)})))
}

pub async fn update_server(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let change = server_body::server_update(body, ctx.version)?;
    let server = s.update_server(&ctx.caller, &id, change).await?;
    let v = detail_view(&s, &ctx, &[&server]).await?;
    Ok(Json(json!({"server": v.detail(&server)})))
}

pub async fn delete_server(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_server(&ctx.caller, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn server_action(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let action = action_body::server_action(body, ctx.version)?;
    let is_rebuild = matches!(action, ServerAction::Rebuild(_));
    let is_console = matches!(action, ServerAction::ConsoleOutput { .. });
    let outcome = s
        .server_action(&ctx.auth, &ctx.caller, ctx.version, &id, action)
        .await?;
    Ok(match outcome {
        Outcome::Accepted => StatusCode::ACCEPTED.into_response(),
        Outcome::Ok => StatusCode::OK.into_response(),
        Outcome::NoContent => StatusCode::NO_CONTENT.into_response(),
        Outcome::Body(body) if is_console => (StatusCode::OK, Json(body)).into_response(),
        Outcome::Body(extra) if is_rebuild => {
            let server = s.get_server(&ctx.caller, &id).await?.doc;
            let mut detail = detail_view(&s, &ctx, &[&server]).await?.detail(&server);
            detail["adminPass"] = extra["adminPass"].clone();
            (StatusCode::ACCEPTED, Json(json!({"server": detail}))).into_response()
        }
        Outcome::Body(body) => {
            let status = if body.get("adminPass").is_some() {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            (status, Json(body)).into_response()
        }
        Outcome::Location(image_id, _) => {
            let mut r = StatusCode::ACCEPTED.into_response();
            let base = ctx.base.trim_end_matches("/compute");
            if let Ok(v) = HeaderValue::from_str(&format!("{base}/image/v2/images/{image_id}")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    })
}

// ---- metadata ----

fn metadata_body(body: Value, key: &str) -> Result<Value, ApiError> {
    match body {
        Value::Object(mut m) if m.contains_key(key) => Ok(m.remove(key).unwrap_or(Value::Null)),
        _ => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. '{key}' is a required property"
        ))),
    }
}

pub async fn list_metadata(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    Ok(Json(json!({"metadata": server.metadata})))
}

/// `POST` merges the given metadata into the server's; `PUT` replaces it.
async fn write_metadata(s: &Shared, ctx: &Ctx, id: &str, body: Value, replace: bool) -> Reply {
    let new = string_map(metadata_body(body, "metadata")?, "metadata")?;
    let server = s
        .change_server(&ctx.caller, id, |srv| {
            if replace {
                srv.metadata = new;
            } else {
                srv.metadata.extend(new);
            }
            Ok(())
        })
        .await?;
    Ok(Json(json!({"metadata": server.metadata})))
}

pub async fn merge_metadata(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    write_metadata(&s, &ctx, &id, body, false).await
}

pub async fn replace_metadata(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    write_metadata(&s, &ctx, &id, body, true).await
}

pub async fn show_metadata_item(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Reply {
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    let value = server
        .metadata
        .get(&key)
        .ok_or_else(|| ApiError::not_found("Metadata item was not found"))?;
    Ok(Json(json!({"meta": {key: value}})))
}

pub async fn set_metadata_item(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let item = string_map(metadata_body(body, "meta")?, "meta")?;
    if item.len() != 1 || !item.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    s.change_server(&ctx.caller, &id, |srv| {
        srv.metadata.extend(item.clone());
        Ok(())
    })
    .await?;
    Ok(Json(json!({"meta": item})))
}

pub async fn delete_metadata_item(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.change_server(&ctx.caller, &id, |srv| {
        srv.metadata
            .remove(&key)
            .map(|_| ())
            .ok_or_else(|| Error::NotFound("Metadata item was not found".into()))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tags ----

/// Server tags came with microversion 2.26; before it the resource does not exist.
fn require_tags(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.version.at_least(26) {
        Ok(())
    } else {
        Err(ApiError::not_found("The resource could not be found."))
    }
}

fn check_tag_text(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.chars().count() > 60 || tag.contains(',') || tag.contains('/') {
        return Err(ApiError::bad_request(format!(
            "Invalid tag: '{tag}'. Tags are 1 to 60 characters without ',' or '/'."
        )));
    }
    Ok(())
}

pub async fn list_tags(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    require_tags(&ctx)?;
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    Ok(Json(json!({"tags": server.tags})))
}

pub async fn replace_tags(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    require_tags(&ctx)?;
    let tags: Vec<String> = match body.get("tags") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::bad_request("Tags must be strings."))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::bad_request(
                "Invalid input for field/attribute tags. 'tags' is a required property",
            ));
        }
    };
    for t in &tags {
        check_tag_text(t)?;
    }
    if tags.len() > 50 {
        return Err(ApiError::bad_request(
            "The number of tags exceeded the per-server limit 50",
        ));
    }
    let server = s
        .change_server(&ctx.caller, &id, |srv| {
            srv.tags = tags;
            srv.tags.dedup();
            Ok(())
        })
        .await?;
    Ok(Json(json!({"tags": server.tags})))
}

pub async fn clear_tags(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_tags(&ctx)?;
    s.change_server(&ctx.caller, &id, |srv| {
        srv.tags.clear();
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn check_tag(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_tags(&ctx)?;
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    if server.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "Tag '{tag}' could not be found for instance {id}."
        )))
    }
}

pub async fn add_tag(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    require_tags(&ctx)?;
    check_tag_text(&tag)?;
    let mut existed = false;
    s.change_server(&ctx.caller, &id, |srv| {
        existed = srv.tags.contains(&tag);
        if !existed {
            if srv.tags.len() >= 50 {
                return Err(Error::BadRequest(
                    "The number of tags exceeded the per-server limit 50".into(),
                ));
            }
            srv.tags.push(tag.clone());
        }
        Ok(())
    })
    .await?;
    let status = if existed {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::CREATED
    };
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{}/v2.1/servers/{id}/tags/{tag}", ctx.base)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

pub async fn remove_tag(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    require_tags(&ctx)?;
    s.change_server(&ctx.caller, &id, |srv| {
        let before = srv.tags.len();
        srv.tags.retain(|t| t != &tag);
        if srv.tags.len() == before {
            return Err(Error::NotFound(format!(
                "Tag '{tag}' could not be found for instance {}.",
                srv.id
            )));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- ips and interfaces ----

pub async fn list_ips(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    let floating = s.floating_addresses(&[&server]).await?;
    let mut addresses = views::addresses(&server, &floating);
    strip_extensions(&mut addresses);
    Ok(Json(json!({"addresses": addresses})))
}

fn strip_extensions(addresses: &mut Value) {
    if let Value::Object(nets) = addresses {
        for list in nets.values_mut() {
            if let Value::Array(items) = list {
                for item in items {
                    if let Value::Object(m) = item {
                        m.retain(|k, _| k == "addr" || k == "version");
                    }
                }
            }
        }
    }
}

pub async fn show_ips(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, network)): Path<(String, String)>,
) -> Reply {
    let server = s.get_server(&ctx.caller, &id).await?.doc;
    let floating = s.floating_addresses(&[&server]).await?;
    let mut addresses = views::addresses(&server, &floating);
    strip_extensions(&mut addresses);
    let list = addresses
        .get(&network)
        .cloned()
        .ok_or_else(|| ApiError::not_found("Instance is not a member of specified network"))?;
    Ok(Json(json!({ network: list })))
}

fn interface_view(interface: &Interface) -> Value {
    let (nic, port) = (&interface.nic, interface.port.as_ref());
    json!({
        "port_id": nic.port_id,
        "net_id": nic.network_id,
        "mac_addr": nic.mac,
        "port_state": port.map(|p| p.status.clone()).unwrap_or_else(|| "DOWN".into()),
        "fixed_ips": port.map(|p| p.fixed_ips.iter().map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address.to_string()})).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

pub async fn list_interfaces(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let interfaces = s.interfaces(&ctx.caller, &id).await?;
    let out: Vec<Value> = interfaces.iter().map(interface_view).collect();
    Ok(Json(json!({"interfaceAttachments": out})))
}

pub async fn show_interface(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, port_id)): Path<(String, String)>,
) -> Reply {
    let interface = s
        .interfaces(&ctx.caller, &id)
        .await?
        .into_iter()
        .find(|i| i.nic.port_id == port_id)
        .ok_or_else(|| ApiError::not_found(format!("Port {port_id} is not attached")))?;
    Ok(Json(
        json!({"interfaceAttachment": interface_view(&interface)}),
    ))
}

pub async fn attach_interface(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let request = server_body::interface(body)?;
    let interface = s.attach_interface(&ctx.caller, &id, request).await?;
    Ok(Json(
        json!({"interfaceAttachment": interface_view(&interface)}),
    ))
}

pub async fn detach_interface(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, port_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.detach_interface(&ctx.caller, &id, &port_id).await?;
    Ok(StatusCode::ACCEPTED)
}

// ---- instance actions ----

pub async fn list_actions(State(s): State<Shared>, ctx: Ctx, Path(id): Path<String>) -> Reply {
    let actions = s
        .server_actions(&ctx.caller, &id, ctx.version.at_least(21))
        .await?;
    Ok(Json(
        json!({"instanceActions": actions.iter().map(|a| views::action(a, ctx.version, false, ctx.caller.admin)).collect::<Vec<_>>()}),
    ))
}

pub async fn show_action(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, request)): Path<(String, String)>,
) -> Reply {
    let actions = s
        .server_actions(&ctx.caller, &id, ctx.version.at_least(21))
        .await?;
    let action = actions
        .iter()
        .find(|a| a.request_id == request)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Action for request_id {request} on instance {id} not found"
            ))
        })?;
    Ok(Json(
        json!({"instanceAction": views::action(action, ctx.version, true, ctx.caller.admin)}),
    ))
}

// ---- volume attachments ----

pub async fn list_volume_attachments(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Reply {
    let attachments = s.volume_attachments(&ctx.caller, &id).await?;
    let out: Vec<Value> = attachments
        .iter()
        .map(|a| views::volume_attachment(&id, a, ctx.version))
        .collect();
    Ok(Json(json!({"volumeAttachments": limited(out, &params)?})))
}

pub async fn show_volume_attachment(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, volume_id)): Path<(String, String)>,
) -> Reply {
    let attachment = s.volume_attachment(&ctx.caller, &id, &volume_id).await?;
    Ok(Json(
        json!({"volumeAttachment": views::volume_attachment(&id, &attachment, ctx.version)}),
    ))
}

pub async fn attach_volume(
    State(s): State<Shared>,
    ctx: Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let request = volume_body::attach(body, ctx.version)?;
    let attachment = s.attach_volume(&ctx.caller, &id, request).await?;
    Ok(Json(
        json!({"volumeAttachment": views::volume_attachment(&id, &attachment, ctx.version)}),
    ))
}

pub async fn update_volume_attachment(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, volume_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<StatusCode, ApiError> {
    let update = volume_body::update(body, ctx.version)?;
    s.update_volume_attachment(&ctx.caller, &id, &volume_id, update)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn detach_volume(
    State(s): State<Shared>,
    ctx: Ctx,
    Path((id, volume_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.detach_volume(&ctx.caller, &id, &volume_id).await?;
    Ok(StatusCode::ACCEPTED)
}
