//! `/v3/credentials` and the EC2 view of them at `/v3/users/{id}/credentials/OS-EC2`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl, Fields, JsonBody};
use serde_json::{Value, json};

use super::{Params, present_nullable, present_string};
use crate::error::Result;
use crate::ops::Parsed;
use crate::ops::credentials::{
    CredentialAttributes, CredentialChanges, CredentialQuery, CredentialUpdate, NewCredential,
};
use crate::service::Identity;
use crate::views;

pub async fn list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Query(params): Query<Params>,
) -> Result<Json<Value>> {
    let query = CredentialQuery {
        user_id: params.get("user_id").cloned(),
        credential_type: params.get("type").cloned(),
    };
    let credentials = identity.list_credentials(&ctx, query).await?;
    Ok(Json(views::collection(
        &base,
        "credentials",
        "credentials",
        credentials
            .iter()
            .map(|c| views::credential(&base, c))
            .collect(),
    )))
}

pub async fn show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let c = identity.get_credential(&ctx, &id).await?;
    Ok(Json(json!({ "credential": views::credential(&base, &c) })))
}

/// The owner comes first; the rest is reported once the caller is allowed.
fn new_credential(body: Value) -> Result<NewCredential> {
    let mut fields = Fields::from_body(body, "credential")?;
    let user_id = fields.string("user_id", 64)?;
    Ok(NewCredential {
        user_id,
        attributes: credential_attributes(fields),
    })
}

fn credential_attributes(mut fields: Fields) -> Parsed<CredentialAttributes> {
    Ok(CredentialAttributes {
        credential_type: fields.string("type", 255)?,
        blob: fields.string("blob", 65_535)?,
        project_id: fields.opt_string("project_id")?,
        extra: fields.into_rest(),
    })
}

pub async fn create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let c = identity
        .create_credential(&ctx, new_credential(body)?)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "credential": views::credential(&base, &c) })),
    ))
}

fn credential_update(body: Value) -> Parsed<CredentialUpdate> {
    let mut fields = Fields::from_body(body, "credential")?;
    let user_id = present_string(&mut fields, "user_id", 64)?;
    Ok(CredentialUpdate {
        user_id,
        changes: credential_changes(fields),
    })
}

fn credential_changes(mut fields: Fields) -> Parsed<CredentialChanges> {
    let project_id = present_nullable(&mut fields, "project_id")?;
    let credential_type = present_string(&mut fields, "type", 255)?;
    let blob = present_string(&mut fields, "blob", 65_535)?;
    fields.ignore("id");
    Ok(CredentialChanges {
        project_id,
        credential_type,
        blob,
        extra: fields.into_rest(),
    })
}

pub async fn update(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>> {
    let c = identity
        .update_credential(&ctx, &id, credential_update(body))
        .await?;
    Ok(Json(json!({ "credential": views::credential(&base, &c) })))
}

pub async fn delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    identity.delete_credential(&ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn ec2_list(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
) -> Result<Json<Value>> {
    let credentials = identity.list_ec2_credentials(&ctx, &user_id).await?;
    Ok(Json(views::collection(
        &base,
        "credentials",
        &format!("users/{user_id}/credentials/OS-EC2"),
        credentials
            .iter()
            .map(|c| views::ec2_credential(&base, c))
            .collect(),
    )))
}

/// `{"tenant_id": ...}`: the project the new credential signs in to.
fn ec2_project(body: Value) -> Parsed<String> {
    let mut fields = Fields::from_object(body, "body")?;
    Ok(fields.string("tenant_id", 64)?)
}

pub async fn ec2_create(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    let c = identity
        .create_ec2_credential(&ctx, &user_id, ec2_project(body))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "credential": views::ec2_credential(&base, &c) })),
    ))
}

pub async fn ec2_show(
    State(identity): State<Arc<Identity>>,
    base: BaseUrl,
    ctx: AuthContext,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let c = identity.get_ec2_credential(&ctx, &user_id, &access).await?;
    Ok(Json(
        json!({ "credential": views::ec2_credential(&base, &c) }),
    ))
}

pub async fn ec2_delete(
    State(identity): State<Arc<Identity>>,
    ctx: AuthContext,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<StatusCode> {
    identity
        .delete_ec2_credential(&ctx, &user_id, &access)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
