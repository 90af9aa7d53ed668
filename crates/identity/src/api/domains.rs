//! `/v3/domains`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, bool_param, domain};
use crate::error::{Error, Result};
use crate::model::{Domain, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::{store, views};

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:list_domains", Target::default())?;
    let domains = store::projects::list_domains(
        &identity.pool,
        params.get("name").map(String::as_str),
        bool_param(&params, "enabled"),
    )
    .await?;
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
    enforce(&ctx, "identity:get_domain", Target::domain(&id))?;
    Ok(Json(
        json!({ "domain": views::domain(&base, &domain(&identity, &id).await?) }),
    ))
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&ctx, "identity:create_domain", Target::default())?;
    let mut fields = Fields::from_body(body, "domain")?;
    let name = fields.string("name", 64)?;
    let explicit_id = fields.opt_string_max("explicit_domain_id", 64)?;
    let d = Domain {
        id: explicit_id.unwrap_or_else(new_id),
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        name,
        extra: {
            fields.ignore("tags");
            fields.ignore("options");
            fields.into_rest()
        },
    };
    if store::projects::find_domain_by_name(&identity.pool, &d.name)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "domain",
            format!("a domain named {} already exists", d.name),
        ));
    }
    store::projects::insert_domain(&identity.pool, &d).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "domain": views::domain(&base, &d) })),
    ))
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_domain", Target::domain(&id))?;
    let mut d = domain(&identity, &id).await?;
    let was_enabled = d.enabled;
    let mut fields = Fields::from_body(body, "domain")?;
    if fields.contains("name") {
        d.name = fields.string("name", 64)?;
    }
    if let Some(description) = fields.opt_string_max("description", 65_535)? {
        d.description = description;
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        d.enabled = enabled;
    }
    fields.ignore("id");
    fields.ignore("tags");
    fields.ignore("options");
    d.extra.extend(fields.into_rest());
    store::projects::update_domain(&identity.pool, &d).await?;
    if was_enabled && !d.enabled {
        revoke_domain_tokens(&identity, &d.id).await?;
    }
    Ok(Json(json!({ "domain": views::domain(&base, &d) })))
}

/// Revokes the tokens of the domain's users and of its projects, as Keystone does when a
/// domain is disabled: re-enabling it later must not bring them back.
async fn revoke_domain_tokens(identity: &Identity, domain_id: &str) -> Result<()> {
    let filter = store::projects::ProjectFilter {
        domain_id: Some(domain_id.to_owned()),
        ..Default::default()
    };
    for project in store::projects::list_projects(&identity.pool, &filter).await? {
        identity.revoke_project_tokens(&project.id, None).await?;
    }
    for user in store::users::list(&identity.pool, None, Some(domain_id), None, None).await? {
        identity.revoke_user_tokens(&user.id).await?;
    }
    Ok(())
}

/// Keystone deletes only disabled domains, and everything in them goes too.
pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_domain", Target::domain(&id))?;
    let d = domain(&identity, &id).await?;
    if d.enabled {
        return Err(Error::ForbiddenBecause(format!(
            "Cannot delete a domain that is enabled, please disable it first: {id}."
        )));
    }
    store::projects::delete_domain(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
