//! `/v3/projects` and project tags.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody, Scope};
use serde_json::{Value, json};

use super::{Params, bool_param, existing_domain_id, project};
use crate::error::{Error, Result};
use crate::model::{Project, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store::projects::ProjectFilter;
use crate::{store, views};

const MAX_TAGS: usize = 80;

fn validate_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains('/') || tag.contains(',') {
        return Err(Error::validation(format!(
            "Invalid tag '{tag}': tags are 1 to 255 characters and contain neither '/' nor ','."
        )));
    }
    Ok(())
}

fn check_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(format!(
            "A project has at most {MAX_TAGS} tags."
        )));
    }
    tags.iter().try_for_each(|t| validate_tag(t))
}

fn split(params: &Params, key: &str) -> Vec<String> {
    params
        .get(key)
        .map(|v| {
            v.split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let domain_id = params
        .get("domain_id")
        .cloned()
        .or_else(|| ctx.domain_id().map(str::to_owned));
    enforce(
        &ctx,
        "identity:list_projects",
        Target {
            domain_id: domain_id.as_deref(),
            ..Target::default()
        },
    )?;
    // A top-level project's parent is its domain (as Keystone shows it), so filtering by a
    // domain as parent selects that domain's top-level projects.
    let mut domain_id = domain_id;
    let parent_id = match params.get("parent_id") {
        Some(p)
            if domain_id.as_ref().is_none_or(|d| d == p)
                && store::projects::get_domain(&identity.pool, p)
                    .await?
                    .is_some() =>
        {
            domain_id = Some(p.clone());
            Some(None)
        }
        other => other.map(|p| Some(p.clone())),
    };
    let filter = ProjectFilter {
        name: params.get("name").cloned(),
        domain_id,
        enabled: bool_param(&params, "enabled"),
        parent_id,
        ids: None,
        tags: split(&params, "tags"),
        tags_any: split(&params, "tags-any"),
        not_tags: split(&params, "not-tags"),
        not_tags_any: split(&params, "not-tags-any"),
    };
    // Projects are never domains here, so `is_domain=true` matches nothing.
    let projects = if bool_param(&params, "is_domain") == Some(true) {
        Vec::new()
    } else {
        store::projects::list_projects(&identity.pool, &filter).await?
    };
    Ok(Json(views::collection(
        &base,
        "projects",
        "projects",
        projects.iter().map(|p| views::project(&base, p)).collect(),
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    if !ctx.is_admin() && ctx.project_id() != Some(id.as_str()) && ctx.domain_id().is_none() {
        // Refuse before looking, so that a non-admin cannot probe which ids exist.
        return Err(Error::Forbidden("identity:get_project"));
    }
    let p = project(&identity, &id).await?;
    enforce(
        &ctx,
        "identity:get_project",
        Target::project(&p.id, &p.domain_id),
    )?;
    Ok(Json(json!({ "project": views::project(&base, &p) })))
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let mut fields = Fields::from_body(body, "project")?;
    let name = fields.string("name", 64)?;
    let parent_id = fields.opt_string("parent_id")?;
    let parent = match &parent_id {
        Some(id) => Some(
            store::projects::get_project(&identity.pool, id)
                .await?
                .ok_or_else(|| {
                    Error::validation(format!("Could not find parent project: {id}."))
                })?,
        ),
        None => None,
    };
    let domain_id = match (fields.opt_string("domain_id")?, &parent, &ctx.scope) {
        (Some(d), _, _) => d,
        (None, Some(p), _) => p.domain_id.clone(),
        (None, None, Scope::Project { domain_id, .. }) => domain_id.clone(),
        (None, None, Scope::Domain { id, .. }) => id.clone(),
        _ => "default".to_owned(),
    };
    enforce(&ctx, "identity:create_project", Target::domain(&domain_id))?;
    existing_domain_id(&identity, &domain_id).await?;
    if parent.as_ref().is_some_and(|p| p.domain_id != domain_id) {
        return Err(Error::validation(
            "A project must be in the same domain as its parent.",
        ));
    }
    if fields.opt_bool("is_domain")? == Some(true) {
        return Err(Error::validation(
            "Projects acting as domains are not supported; create a domain instead.",
        ));
    }
    let tags = fields.opt_string_list("tags", 255)?.unwrap_or_default();
    check_tags(&tags)?;
    let p = Project {
        id: new_id(),
        name,
        domain_id,
        parent_id,
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        tags,
        extra: {
            fields.ignore("options");
            fields.into_rest()
        },
    };
    if store::projects::find_project_by_name(&identity.pool, &p.domain_id, &p.name)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "project",
            format!(
                "a project named {} already exists in domain {}",
                p.name, p.domain_id
            ),
        ));
    }
    store::projects::insert_project(&identity.pool, &p).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "project": views::project(&base, &p) })),
    ))
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_project", Target::default())?;
    let mut p = project(&identity, &id).await?;
    let was_enabled = p.enabled;
    let mut fields = Fields::from_body(body, "project")?;
    if fields.contains("name") {
        p.name = fields.string("name", 64)?;
    }
    if let Some(description) = fields.opt_string_max("description", 65_535)? {
        p.description = description;
    }
    if let Some(enabled) = fields.opt_bool("enabled")? {
        p.enabled = enabled;
    }
    if let Some(tags) = fields.opt_string_list("tags", 255)? {
        check_tags(&tags)?;
        p.tags = tags;
    }
    for immutable in ["domain_id", "parent_id", "is_domain"] {
        if fields.contains(immutable) {
            return Err(Error::validation(format!(
                "'{immutable}' cannot be updated."
            )));
        }
    }
    fields.ignore("id");
    fields.ignore("options");
    p.extra.extend(fields.into_rest());
    if let Some(other) =
        store::projects::find_project_by_name(&identity.pool, &p.domain_id, &p.name).await?
        && other.id != p.id
    {
        return Err(Error::conflict(
            "project",
            format!("a project named {} already exists", p.name),
        ));
    }
    store::projects::update_project(&identity.pool, &p).await?;
    if was_enabled && !p.enabled {
        // Re-enabling the project later must not bring its old tokens back.
        identity.revoke_project_tokens(&p.id, None).await?;
    }
    Ok(Json(json!({ "project": views::project(&base, &p) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_project", Target::default())?;
    project(&identity, &id).await?;
    if store::projects::has_children(&identity.pool, &id).await? {
        return Err(Error::ForbiddenBecause(format!(
            "Cannot delete project {id}: it has child projects."
        )));
    }
    store::projects::delete_project(&identity.pool, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn readable_project(identity: &Identity, ctx: &AuthContext, id: &str) -> Result<Project> {
    if !ctx.is_admin() && ctx.project_id() != Some(id) && ctx.domain_id().is_none() {
        return Err(Error::Forbidden("identity:get_project_tags"));
    }
    let p = project(identity, id).await?;
    enforce(
        ctx,
        "identity:get_project",
        Target::project(&p.id, &p.domain_id),
    )?;
    Ok(p)
}

pub async fn list_tags(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let p = readable_project(&identity, &ctx, &id).await?;
    Ok(Json(json!({ "tags": p.tags })))
}

pub async fn check_tag(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    let p = readable_project(&identity, &ctx, &id).await?;
    if p.tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::not_found("tag", tag))
    }
}

pub async fn replace_tags(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    enforce(&ctx, "identity:update_project_tags", Target::default())?;
    let mut p = project(&identity, &id).await?;
    let mut fields = Fields::from_object(body, "body")?;
    let mut tags = fields
        .opt_string_list("tags", 255)?
        .ok_or_else(|| Error::validation("'tags' is required."))?;
    fields.deny_unknown()?;
    tags.sort();
    tags.dedup();
    check_tags(&tags)?;
    p.tags = tags;
    store::projects::update_project(&identity.pool, &p).await?;
    Ok(Json(json!({ "tags": p.tags })))
}

pub async fn clear_tags(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_project_tags", Target::default())?;
    let mut p = project(&identity, &id).await?;
    p.tags.clear();
    store::projects::update_project(&identity.pool, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_tag(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:create_project_tag", Target::default())?;
    let mut p = project(&identity, &id).await?;
    validate_tag(&tag)?;
    if !p.tags.contains(&tag) {
        p.tags.push(tag);
        check_tags(&p.tags)?;
        store::projects::update_project(&identity.pool, &p).await?;
    }
    Ok(StatusCode::CREATED)
}

pub async fn remove_tag(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    enforce(&ctx, "identity:delete_project_tag", Target::default())?;
    let mut p = project(&identity, &id).await?;
    let before = p.tags.len();
    p.tags.retain(|t| *t != tag);
    if p.tags.len() == before {
        return Err(Error::not_found("tag", tag));
    }
    store::projects::update_project(&identity.pool, &p).await?;
    Ok(StatusCode::NO_CONTENT)
}
