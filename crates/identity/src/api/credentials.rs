//! `/v3/credentials` and the EC2 view of them at `/v3/users/{id}/credentials/OS-EC2`.
//! Blobs are encrypted at rest with the credential keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Params, project, user};
use crate::error::{Error, Result};
use crate::model::{Credential, TargetType, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store::credentials::StoredCredential;
use crate::{store, views};

fn open(identity: &Identity, stored: StoredCredential) -> Result<Credential> {
    Ok(Credential {
        blob: identity.decrypt_credential(&stored.encrypted_blob)?,
        id: stored.id,
        user_id: stored.user_id,
        project_id: stored.project_id,
        credential_type: stored.credential_type,
        extra: stored.extra,
    })
}

/// EC2 credentials are found by access key: their id is the SHA-256 of it, as in Keystone.
fn ec2_id(access: &str) -> String {
    hex::encode(Sha256::digest(access.as_bytes()))
}

fn ec2_access(blob: &str) -> Result<String> {
    let parsed: Map<String, Value> = serde_json::from_str(blob)
        .map_err(|_| Error::validation("An ec2 credential's blob must be a JSON object."))?;
    parsed
        .get("access")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::validation("An ec2 credential's blob must have an 'access' key."))
}

async fn credential(
    identity: &Identity,
    ctx: &AuthContext,
    id: &str,
    action: &'static str,
) -> Result<Credential> {
    let stored = store::credentials::get_credential(&identity.pool, id).await?;
    let found = stored.filter(|c| ctx.is_admin() || c.user_id == ctx.user_id);
    let stored = found.ok_or_else(|| Error::not_found("credential", id))?;
    enforce(ctx, action, Target::user(&stored.user_id))?;
    open(identity, stored)
}

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    // Non-admins see their own credentials only, whatever they ask for.
    let user_id = if ctx.is_admin() {
        params.get("user_id").cloned()
    } else {
        Some(ctx.user_id.clone())
    };
    enforce(
        &ctx,
        "identity:list_credentials",
        Target {
            user_id: user_id.as_deref(),
            ..Target::default()
        },
    )?;
    let stored = store::credentials::list_credentials(
        &identity.pool,
        user_id.as_deref(),
        params.get("type").map(String::as_str),
    )
    .await?;
    let items = stored
        .into_iter()
        .map(|s| open(&identity, s).map(|c| views::credential(&base, &c)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(views::collection(
        &base,
        "credentials",
        "credentials",
        items,
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let c = credential(&identity, &ctx, &id, "identity:get_credential").await?;
    Ok(Json(json!({ "credential": views::credential(&base, &c) })))
}

async fn save(identity: &Identity, c: &Credential, new: bool) -> Result<()> {
    let sealed = identity.encrypt_credential(&c.blob);
    if new {
        store::credentials::insert_credential(&identity.pool, c, &sealed).await?;
    } else {
        store::credentials::update_credential(&identity.pool, c, &sealed).await?;
    }
    Ok(())
}

/// An EC2 credential signs in to its project: a user may only hold one for a project they
/// have a role on (an admin may make any). Without this check a user could name any
/// project and present the credential to services that trust its `project_id`.
async fn check_ec2_project(
    identity: &Identity,
    ctx: &AuthContext,
    user_id: &str,
    project_id: &str,
    action: &'static str,
) -> Result<()> {
    project(identity, project_id).await?;
    if ctx.is_admin() {
        return Ok(());
    }
    let roles = identity
        .effective_roles(user_id, TargetType::Project, project_id)
        .await?;
    if roles.is_empty() {
        return Err(Error::ForbiddenBecause(format!(
            "You are not authorized to perform the requested action: {action}: the user has no role on project {project_id}."
        )));
    }
    Ok(())
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let mut fields = Fields::from_body(body, "credential")?;
    let user_id = fields.string("user_id", 64)?;
    enforce(&ctx, "identity:create_credential", Target::user(&user_id))?;
    let credential_type = fields.string("type", 255)?;
    let blob = fields.string("blob", 65_535)?;
    let project_id = fields.opt_string("project_id")?;
    user(&identity, &user_id)
        .await
        .map_err(|_| Error::validation(format!("Could not find user: {user_id}.")))?;
    let id = if credential_type == "ec2" {
        let Some(project_id) = project_id.as_deref() else {
            return Err(Error::validation("An ec2 credential needs a 'project_id'."));
        };
        check_ec2_project(
            &identity,
            &ctx,
            &user_id,
            project_id,
            "identity:create_credential",
        )
        .await?;
        ec2_id(&ec2_access(&blob)?)
    } else {
        new_id()
    };
    let c = Credential {
        id,
        user_id,
        project_id,
        credential_type,
        blob,
        extra: fields.into_rest(),
    };
    if store::credentials::get_credential(&identity.pool, &c.id)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            "credential",
            "a credential with this access key already exists",
        ));
    }
    save(&identity, &c, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "credential": views::credential(&base, &c) })),
    ))
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let mut c = credential(&identity, &ctx, &id, "identity:update_credential").await?;
    let mut fields = Fields::from_body(body, "credential")?;
    if fields.contains("user_id") {
        let user_id = fields.string("user_id", 64)?;
        if user_id != c.user_id && !ctx.is_admin() {
            return Err(Error::Forbidden("identity:update_credential"));
        }
        c.user_id = user_id;
    }
    if fields.contains("project_id") {
        c.project_id = fields.opt_string("project_id")?;
    }
    if fields.contains("type") {
        c.credential_type = fields.string("type", 255)?;
    }
    if fields.contains("blob") {
        c.blob = fields.string("blob", 65_535)?;
    }
    if c.credential_type == "ec2" {
        if ec2_id(&ec2_access(&c.blob)?) != c.id {
            return Err(Error::validation(
                "The access key of an ec2 credential cannot change.",
            ));
        }
        let Some(project_id) = c.project_id.as_deref() else {
            return Err(Error::validation("An ec2 credential needs a 'project_id'."));
        };
        check_ec2_project(
            &identity,
            &ctx,
            &c.user_id,
            project_id,
            "identity:update_credential",
        )
        .await?;
    }
    fields.ignore("id");
    c.extra.extend(fields.into_rest());
    save(&identity, &c, false).await?;
    Ok(Json(json!({ "credential": views::credential(&base, &c) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let c = credential(&identity, &ctx, &id, "identity:delete_credential").await?;
    store::credentials::delete_credential(&identity.pool, &c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

pub async fn ec2_list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    enforce(
        &ctx,
        "identity:ec2_list_credentials",
        Target::user(&user_id),
    )?;
    let stored =
        store::credentials::list_credentials(&identity.pool, Some(&user_id), Some("ec2")).await?;
    let items = stored
        .into_iter()
        .map(|s| open(&identity, s).map(|c| views::ec2_credential(&base, &c)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(views::collection(
        &base,
        "credentials",
        &format!("users/{user_id}/credentials/OS-EC2"),
        items,
    )))
}

pub async fn ec2_create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(
        &ctx,
        "identity:ec2_create_credential",
        Target::user(&user_id),
    )?;
    user(&identity, &user_id).await?;
    let mut fields = Fields::from_object(body, "body")?;
    let project_id = fields.string("tenant_id", 64)?;
    check_ec2_project(
        &identity,
        &ctx,
        &user_id,
        &project_id,
        "identity:ec2_create_credential",
    )
    .await?;
    let access = random_hex();
    let blob = json!({ "access": access, "secret": random_hex(), "trust_id": null }).to_string();
    let c = Credential {
        id: ec2_id(&access),
        user_id,
        project_id: Some(project_id),
        credential_type: "ec2".into(),
        blob,
        extra: Map::new(),
    };
    save(&identity, &c, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "credential": views::ec2_credential(&base, &c) })),
    ))
}

async fn ec2_own(
    identity: &Identity,
    ctx: &AuthContext,
    user_id: &str,
    access: &str,
    action: &'static str,
) -> Result<Credential> {
    enforce(ctx, action, Target::user(user_id))?;
    let stored = store::credentials::get_credential(&identity.pool, &ec2_id(access))
        .await?
        .filter(|c| c.user_id == user_id && c.credential_type == "ec2")
        .ok_or_else(|| Error::not_found("credential", access))?;
    open(identity, stored)
}

pub async fn ec2_show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let c = ec2_own(
        &identity,
        &ctx,
        &user_id,
        &access,
        "identity:ec2_get_credential",
    )
    .await?;
    Ok(Json(
        json!({ "credential": views::ec2_credential(&base, &c) }),
    ))
}

pub async fn ec2_delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<StatusCode> {
    let c = ec2_own(
        &identity,
        &ctx,
        &user_id,
        &access,
        "identity:ec2_delete_credential",
    )
    .await?;
    store::credentials::delete_credential(&identity.pool, &c.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
