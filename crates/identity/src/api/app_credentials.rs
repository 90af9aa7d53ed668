//! `/v3/users/{id}/application_credentials`: the secret is shown once, at creation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use onestack_db::now_micros;
use serde_json::{Value, json};

use super::Params;
use crate::error::{Error, Result};
use crate::model::{AppCredential, Role, TargetType, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::{password, store, views};

async fn roles_of(identity: &Identity, credential: &AppCredential) -> Result<Vec<Role>> {
    let graph = identity.role_graph().await?;
    Ok(credential
        .role_ids
        .iter()
        .filter_map(|id| graph.roles.get(id).cloned())
        .collect())
}

async fn own(
    identity: &Identity,
    ctx: &AuthContext,
    user_id: &str,
    id: &str,
    action: &'static str,
) -> Result<AppCredential> {
    enforce(ctx, action, Target::user(user_id))?;
    store::credentials::get_app_credential(&identity.pool, id)
        .await?
        .filter(|a| a.user_id == user_id)
        .ok_or_else(|| Error::not_found("application credential", id))
}

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    enforce(
        &ctx,
        "identity:list_application_credentials",
        Target::user(&user_id),
    )?;
    let credentials = store::credentials::list_app_credentials(
        &identity.pool,
        &user_id,
        params.get("name").map(String::as_str),
    )
    .await?;
    let mut items = Vec::with_capacity(credentials.len());
    for c in &credentials {
        items.push(views::app_credential(
            &base,
            c,
            &roles_of(&identity, c).await?,
            None,
        ));
    }
    let path = format!("users/{user_id}/application_credentials");
    Ok(Json(views::collection(
        &base,
        "application_credentials",
        &path,
        items,
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let c = own(
        &identity,
        &ctx,
        &user_id,
        &id,
        "identity:get_application_credential",
    )
    .await?;
    let roles = roles_of(&identity, &c).await?;
    Ok(Json(
        json!({ "application_credential": views::app_credential(&base, &c, &roles, None) }),
    ))
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(
        &ctx,
        "identity:create_application_credential",
        Target::user(&user_id),
    )?;
    if ctx.user_id != user_id {
        return Err(Error::Forbidden("identity:create_application_credential"));
    }
    if let Some(id) = &ctx.application_credential_id {
        let restricted = store::credentials::get_app_credential(&identity.pool, id)
            .await?
            .is_none_or(|a| !a.unrestricted);
        if restricted {
            return Err(Error::ForbiddenBecause(
                "A restricted application credential cannot create another application credential."
                    .into(),
            ));
        }
    }
    let project_id = ctx
        .project_id()
        .ok_or_else(|| {
            Error::validation("Creating an application credential needs a project-scoped token.")
        })?
        .to_owned();
    let mut fields = Fields::from_body(body, "application_credential")?;
    let name = fields.string("name", 255)?;
    let description = fields.opt_string_max("description", 255)?;
    let secret = fields.opt_string("secret")?;
    let expires_at = match fields.opt_string("expires_at")? {
        Some(text) => {
            let at = views::parse_timestamp(&text)
                .ok_or_else(|| Error::validation(format!("Invalid expires_at '{text}'.")))?;
            if at <= now_micros() {
                return Err(Error::validation("'expires_at' is in the past."));
            }
            Some(at)
        }
        None => None,
    };
    let unrestricted = fields.opt_bool("unrestricted")?.unwrap_or(false);
    let requested = fields.opt_array("roles")?;
    if fields
        .opt_array("access_rules")?
        .is_some_and(|rules| !rules.is_empty())
    {
        return Err(Error::validation("Access rules are not supported."));
    }
    fields.ignore("system");
    fields.deny_unknown()?;

    let held = identity
        .effective_roles(&user_id, TargetType::Project, &project_id)
        .await?;
    // No roles, or an empty list (what the openstack CLI sends), means all the caller holds.
    let role_ids = match requested.filter(|r| !r.is_empty()) {
        None => held.iter().map(|r| r.id.clone()).collect(),
        Some(items) => {
            let mut ids = Vec::new();
            for item in items {
                let mut role = Fields::from_object(item, "role")?;
                let id = role.opt_string("id")?;
                let name = role.opt_string("name")?;
                let found = held
                    .iter()
                    .find(|r| Some(&r.id) == id.as_ref() || Some(&r.name) == name.as_ref());
                match found {
                    Some(r) if !ids.contains(&r.id) => ids.push(r.id.clone()),
                    Some(_) => {}
                    None => {
                        return Err(Error::validation(format!(
                            "The user does not hold the role {} on project {project_id}.",
                            id.or(name).unwrap_or_default()
                        )));
                    }
                }
            }
            ids
        }
    };
    if !store::credentials::list_app_credentials(&identity.pool, &user_id, Some(&name))
        .await?
        .is_empty()
    {
        return Err(Error::conflict(
            "application credential",
            format!("one named {name} already exists"),
        ));
    }
    let (secret, secret_hash) = match secret {
        Some(s) => {
            let hash = password::hash(s.clone(), identity.config.password_hash_rounds).await?;
            (s, hash)
        }
        None => {
            let s = password::generate_secret();
            let hash = password::hash_fast(&s);
            (s, hash)
        }
    };
    let credential = AppCredential {
        id: new_id(),
        name,
        user_id,
        project_id,
        secret_hash,
        description,
        expires_at,
        unrestricted,
        role_ids,
    };
    store::credentials::insert_app_credential(&identity.pool, &credential).await?;
    let roles = roles_of(&identity, &credential).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "application_credential": views::app_credential(&base, &credential, &roles, Some(&secret)) }),
        ),
    ))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((user_id, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let c = own(
        &identity,
        &ctx,
        &user_id,
        &id,
        "identity:delete_application_credential",
    )
    .await?;
    store::credentials::delete_app_credential(&identity.pool, &c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
