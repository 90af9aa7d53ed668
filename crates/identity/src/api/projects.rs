//! `/v3/projects` and project tags.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{Fields, JsonBody};
use serde_json::{Value, json};

use super::{Call, Params, Reply, bool_param, present_string};
use crate::error::{Error, Result};
use crate::ops::Parsed;
use crate::ops::project_tags::check_tags;
use crate::ops::projects::{NewProject, ProjectAttributes, ProjectQuery, ProjectUpdate};
use crate::views;

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

pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let query = ProjectQuery {
        name: params.get("name").cloned(),
        domain_id: params.get("domain_id").cloned(),
        enabled: bool_param(&params, "enabled"),
        parent_id: params.get("parent_id").cloned(),
        is_domain: bool_param(&params, "is_domain"),
        tags: split(&params, "tags"),
        tags_any: split(&params, "tags-any"),
        not_tags: split(&params, "not-tags"),
        not_tags_any: split(&params, "not-tags-any"),
    };
    let projects = call.identity.list_projects(&call.ctx, query).await?;
    call.many("projects", "projects", views::project, &projects)
}

pub async fn show(call: Call, Path(id): Path<String>) -> Reply {
    let p = call.identity.get_project(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "project", views::project, &p)
}

/// The body's fields in the order Keystone reads them; all but the name and parent are
/// reported after the domain is known and the caller allowed.
fn new_project(body: Value) -> Result<NewProject> {
    let mut fields = Fields::from_body(body, "project")?;
    let name = fields.string("name", 64)?;
    let parent_id = fields.opt_string("parent_id")?;
    let domain_id = fields.opt_string("domain_id").map_err(Error::from);
    let attributes = project_attributes(fields);
    Ok(NewProject {
        name,
        parent_id,
        domain_id,
        attributes,
    })
}

fn project_attributes(mut fields: Fields) -> Parsed<ProjectAttributes> {
    if fields.opt_bool("is_domain")? == Some(true) {
        return Err(Error::validation(
            "Projects acting as domains are not supported; create a domain instead.",
        ));
    }
    let tags = fields.opt_string_list("tags", 255)?.unwrap_or_default();
    check_tags(&tags)?;
    Ok(ProjectAttributes {
        description: fields
            .opt_string_max("description", 65_535)?
            .unwrap_or_default(),
        enabled: fields.opt_bool("enabled")?.unwrap_or(true),
        tags,
        extra: {
            fields.ignore("options");
            fields.into_rest()
        },
    })
}

pub async fn create(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_project(body)?;
    let p = call.identity.create_project(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "project", views::project, &p)
}

fn project_update(body: Value) -> Parsed<ProjectUpdate> {
    let mut fields = Fields::from_body(body, "project")?;
    let name = present_string(&mut fields, "name", 64)?;
    let description = fields.opt_string_max("description", 65_535)?;
    let enabled = fields.opt_bool("enabled")?;
    let tags = fields.opt_string_list("tags", 255)?;
    if let Some(tags) = &tags {
        check_tags(tags)?;
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
    Ok(ProjectUpdate {
        name,
        description,
        enabled,
        tags,
        extra: fields.into_rest(),
    })
}

pub async fn update(call: Call, Path(id): Path<String>, JsonBody(body): JsonBody<Value>) -> Reply {
    let update = project_update(body);
    let p = call.identity.update_project(&call.ctx, &id, update).await?;
    call.one(StatusCode::OK, "project", views::project, &p)
}

pub async fn delete(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_project(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tags(call: Call, Path(id): Path<String>) -> Result<Json<Value>> {
    let tags = call.identity.project_tags(&call.ctx, &id).await?;
    Ok(Json(json!({ "tags": tags })))
}

pub async fn check_tag(call: Call, Path((id, tag)): Path<(String, String)>) -> Result<StatusCode> {
    call.identity.check_project_tag(&call.ctx, &id, tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"tags": [...]}`, sorted and without duplicates.
fn tag_list(body: Value) -> Parsed<Vec<String>> {
    let mut fields = Fields::from_object(body, "body")?;
    let mut tags = fields
        .opt_string_list("tags", 255)?
        .ok_or_else(|| Error::validation("'tags' is required."))?;
    fields.deny_unknown()?;
    tags.sort();
    tags.dedup();
    check_tags(&tags)?;
    Ok(tags)
}

pub async fn replace_tags(
    call: Call,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let tags = tag_list(body);
    let tags = call
        .identity
        .replace_project_tags(&call.ctx, &id, tags)
        .await?;
    Ok(Json(json!({ "tags": tags })))
}

pub async fn clear_tags(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.clear_project_tags(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_tag(call: Call, Path((id, tag)): Path<(String, String)>) -> Result<StatusCode> {
    call.identity.add_project_tag(&call.ctx, &id, tag).await?;
    Ok(StatusCode::CREATED)
}

pub async fn remove_tag(call: Call, Path((id, tag)): Path<(String, String)>) -> Result<StatusCode> {
    call.identity
        .remove_project_tag(&call.ctx, &id, tag)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
