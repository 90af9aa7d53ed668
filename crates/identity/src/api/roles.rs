//! `/v3/roles`, implied roles and `/v3/role_inferences`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, existing_domain_id, role};
use crate::error::{Error, Result};
use crate::model::{Role, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::{store, views};

/// Roles that may never be implied (Keystone's `prohibited_implied_role`).
const PROHIBITED_IMPLIED: [&str; 1] = ["admin"];

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:list_roles", Target::default())?;
    let domain = params
        .get("domain_id")
        .map(|d| Some(d.as_str()))
        .unwrap_or(None);
    let roles = store::roles::list(
        &identity.pool,
        params.get("name").map(String::as_str),
        Some(domain),
    )
    .await?;
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
    enforce(&ctx, "identity:get_role", Target::default())?;
    Ok(Json(
        json!({ "role": views::role(&base, &role(&identity, &id).await?) }),
    ))
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&ctx, "identity:create_role", Target::default())?;
    let mut fields = Fields::from_body(body, "role")?;
    let name = fields.string("name", 255)?;
    let domain_id = fields.opt_string("domain_id")?;
    if let Some(d) = &domain_id {
        existing_domain_id(&identity, d).await?;
    }
    let r = Role {
        id: new_id(),
        name,
        domain_id,
        description: fields
            .opt_string_max("description", 255)?
            .unwrap_or_default(),
        extra: {
            fields.ignore("options");
            fields.into_rest()
        },
    };
    if !store::roles::list(&identity.pool, Some(&r.name), Some(r.domain_id.as_deref()))
        .await?
        .is_empty()
    {
        return Err(Error::conflict(
            "role",
            format!("a role named {} already exists", r.name),
        ));
    }
    store::roles::insert(&identity.pool, &r).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "role": views::role(&base, &r) })),
    ))
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_role", Target::default())?;
    let mut r = role(&identity, &id).await?;
    let mut fields = Fields::from_body(body, "role")?;
    if fields.contains("name") {
        r.name = fields.string("name", 255)?;
    }
    if let Some(description) = fields.opt_string_max("description", 255)? {
        r.description = description;
    }
    if fields.contains("domain_id") {
        return Err(Error::validation("'domain_id' cannot be updated."));
    }
    fields.ignore("id");
    fields.ignore("options");
    r.extra.extend(fields.into_rest());
    if store::roles::list(&identity.pool, Some(&r.name), Some(r.domain_id.as_deref()))
        .await?
        .iter()
        .any(|o| o.id != r.id)
    {
        return Err(Error::conflict(
            "role",
            format!("a role named {} already exists", r.name),
        ));
    }
    store::roles::update(&identity.pool, &r).await?;
    Ok(Json(json!({ "role": views::role(&base, &r) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_role", Target::default())?;
    role(&identity, &id).await?;
    store::roles::delete(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn inference(base: &BaseUrl, prior: &Role, implied: Value) -> Value {
    json!({ "prior_role": views::role_ref(base, prior), "implies": implied })
}

pub async fn list_implied(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:list_implied_roles", Target::default())?;
    let prior = role(&identity, &id).await?;
    let graph = identity.role_graph().await?;
    let implied: Vec<Value> = graph
        .implies
        .get(&id)
        .into_iter()
        .flatten()
        .filter_map(|i| graph.roles.get(i))
        .map(|r| views::role_ref(&base, r))
        .collect();
    Ok(Json(json!({
        "role_inference": inference(&base, &prior, implied.into()),
        "links": { "self": views::url(&base, &format!("roles/{id}/implies")) },
    })))
}

async fn implication(
    identity: &Identity,
    prior_id: &str,
    implied_id: &str,
) -> Result<(Role, Role, bool)> {
    let prior = role(identity, prior_id).await?;
    let implied = role(identity, implied_id).await?;
    let exists = identity
        .role_graph()
        .await?
        .implies
        .get(prior_id)
        .is_some_and(|i| i.iter().any(|x| x == implied_id));
    Ok((prior, implied, exists))
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
    enforce(&ctx, "identity:create_implied_role", Target::default())?;
    let (prior, implied, exists) = implication(&identity, &prior_id, &implied_id).await?;
    if PROHIBITED_IMPLIED.contains(&implied.name.as_str()) {
        return Err(Error::ForbiddenBecause(format!(
            "{} may not be an implied role.",
            implied.name
        )));
    }
    if implied.domain_id.is_some() && prior.domain_id.is_none() {
        return Err(Error::ForbiddenBecause(
            "A global role may not imply a domain-specific role.".into(),
        ));
    }
    let graph = identity.role_graph().await?;
    if prior_id == implied_id
        || graph
            .expand([implied_id.clone()])
            .iter()
            .any(|r| r.id == prior_id)
    {
        return Err(Error::validation(
            "This implication would make a cycle of implied roles.",
        ));
    }
    if !exists {
        store::roles::add_implication(&identity.pool, &prior_id, &implied_id).await?;
    }
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
    enforce(&ctx, "identity:get_implied_role", Target::default())?;
    match implication(&identity, &prior_id, &implied_id).await? {
        (prior, implied, true) => Ok(Json(implication_body(&base, &prior, &implied))),
        _ => Err(Error::not_found(
            "implied role",
            format!("{prior_id} implies {implied_id}"),
        )),
    }
}

pub async fn check_implied(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:check_implied_role", Target::default())?;
    match implication(&identity, &prior_id, &implied_id).await? {
        (_, _, true) => Ok(StatusCode::NO_CONTENT),
        _ => Err(Error::not_found(
            "implied role",
            format!("{prior_id} implies {implied_id}"),
        )),
    }
}

pub async fn remove_implied(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((prior_id, implied_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_implied_role", Target::default())?;
    role(&identity, &prior_id).await?;
    role(&identity, &implied_id).await?;
    if store::roles::remove_implication(&identity.pool, &prior_id, &implied_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found(
            "implied role",
            format!("{prior_id} implies {implied_id}"),
        ))
    }
}

pub async fn inferences(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
) -> Result<Json<Value>> {
    enforce(
        &ctx,
        "identity:list_role_inference_rules",
        Target::default(),
    )?;
    let graph = identity.role_graph().await?;
    let mut rules: Vec<Value> = Vec::new();
    let mut priors: Vec<&String> = graph.implies.keys().collect();
    priors.sort();
    for prior_id in priors {
        let Some(prior) = graph.roles.get(prior_id) else {
            continue;
        };
        let implied: Vec<Value> = graph.implies[prior_id]
            .iter()
            .filter_map(|i| graph.roles.get(i))
            .map(|r| views::role_ref(&base, r))
            .collect();
        rules.push(inference(&base, prior, implied.into()));
    }
    Ok(Json(
        json!({ "role_inferences": rules, "links": { "self": views::url(&base, "role_inferences") } }),
    ))
}
