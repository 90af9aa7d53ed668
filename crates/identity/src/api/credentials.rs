//! `/v3/credentials` and the EC2 view of them at `/v3/users/{id}/credentials/OS-EC2`.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use onestack_api::{Fields, JsonBody};
use serde_json::Value;

use super::{Call, Params, Reply, present_nullable, present_string};
use crate::error::Result;
use crate::ops::Parsed;
use crate::ops::credentials::{
    CredentialAttributes, CredentialChanges, CredentialQuery, CredentialUpdate, NewCredential,
};
use crate::views;

pub async fn list(call: Call, Query(params): Query<Params>) -> Reply {
    let query = CredentialQuery {
        user_id: params.get("user_id").cloned(),
        credential_type: params.get("type").cloned(),
    };
    let credentials = call.identity.list_credentials(&call.ctx, query).await?;
    call.many(
        "credentials",
        "credentials",
        views::credential,
        &credentials,
    )
}

pub async fn show(call: Call, Path(id): Path<String>) -> Reply {
    let c = call.identity.get_credential(&call.ctx, &id).await?;
    call.one(StatusCode::OK, "credential", views::credential, &c)
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

pub async fn create(call: Call, JsonBody(body): JsonBody<Value>) -> Reply {
    let new = new_credential(body)?;
    let c = call.identity.create_credential(&call.ctx, new).await?;
    call.one(StatusCode::CREATED, "credential", views::credential, &c)
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

pub async fn update(call: Call, Path(id): Path<String>, JsonBody(body): JsonBody<Value>) -> Reply {
    let update = credential_update(body);
    let c = call
        .identity
        .update_credential(&call.ctx, &id, update)
        .await?;
    call.one(StatusCode::OK, "credential", views::credential, &c)
}

pub async fn delete(call: Call, Path(id): Path<String>) -> Result<StatusCode> {
    call.identity.delete_credential(&call.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn ec2_list(call: Call, Path(user_id): Path<String>) -> Reply {
    let credentials = call
        .identity
        .list_ec2_credentials(&call.ctx, &user_id)
        .await?;
    call.many(
        "credentials",
        &format!("users/{user_id}/credentials/OS-EC2"),
        views::ec2_credential,
        &credentials,
    )
}

/// `{"tenant_id": ...}`: the project the new credential signs in to.
fn ec2_project(body: Value) -> Parsed<String> {
    let mut fields = Fields::from_object(body, "body")?;
    Ok(fields.string("tenant_id", 64)?)
}

pub async fn ec2_create(
    call: Call,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Reply {
    let project = ec2_project(body);
    let c = call
        .identity
        .create_ec2_credential(&call.ctx, &user_id, project)
        .await?;
    call.one(StatusCode::CREATED, "credential", views::ec2_credential, &c)
}

pub async fn ec2_show(call: Call, Path((user_id, access)): Path<(String, String)>) -> Reply {
    let c = call
        .identity
        .get_ec2_credential(&call.ctx, &user_id, &access)
        .await?;
    call.one(StatusCode::OK, "credential", views::ec2_credential, &c)
}

pub async fn ec2_delete(
    call: Call,
    Path((user_id, access)): Path<(String, String)>,
) -> Result<StatusCode> {
    call.identity
        .delete_ec2_credential(&call.ctx, &user_id, &access)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
