//! Credentials (`/v3/credentials`) and their EC2 view. Blobs are encrypted at rest with
//! the credential keys; an EC2 credential's id is the SHA-256 of its access key, as in
//! Keystone, so that it is found by access key.

use onestack_api::AuthContext;
use rand::RngCore;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Credential, Extra, TargetType, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;
use crate::store::credentials::StoredCredential;

/// `GET /v3/credentials`'s filters.
#[derive(Debug, Default)]
pub struct CredentialQuery {
    /// Only the admin may choose; others see their own credentials whatever they ask.
    pub user_id: Option<String>,
    pub credential_type: Option<String>,
}

#[derive(Debug)]
pub struct NewCredential {
    pub user_id: String,
    pub attributes: Parsed<CredentialAttributes>,
}

#[derive(Debug)]
pub struct CredentialAttributes {
    pub credential_type: String,
    pub blob: String,
    pub project_id: Option<String>,
    pub extra: Extra,
}

/// A PATCH: the new owner is checked before the rest of the body is.
#[derive(Debug)]
pub struct CredentialUpdate {
    pub user_id: Option<String>,
    pub changes: Parsed<CredentialChanges>,
}

/// The attributes a PATCH sets besides the owner; `None` leaves one as it is.
#[derive(Debug)]
pub struct CredentialChanges {
    /// `Some(None)` clears the project.
    pub project_id: Option<Option<String>>,
    pub credential_type: Option<String>,
    pub blob: Option<String>,
    pub extra: Extra,
}

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

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Identity {
    fn open(&self, stored: StoredCredential) -> Result<Credential> {
        Ok(Credential {
            blob: self.decrypt_credential(&stored.encrypted_blob)?,
            id: stored.id,
            user_id: stored.user_id,
            project_id: stored.project_id,
            credential_type: stored.credential_type,
            extra: stored.extra,
        })
    }

    async fn save(&self, c: &Credential, new: bool) -> Result<()> {
        let sealed = self.encrypt_credential(&c.blob);
        if new {
            store::credentials::insert_credential(&self.pool, c, &sealed).await?;
        } else {
            store::credentials::update_credential(&self.pool, c, &sealed).await?;
        }
        Ok(())
    }

    /// A credential the caller may act on: another user's is a 404 to a non-admin.
    async fn credential(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: &'static str,
    ) -> Result<Credential> {
        let stored = store::credentials::get_credential(&self.pool, id).await?;
        let found = stored.filter(|c| ctx.is_admin() || c.user_id == ctx.user_id);
        let stored = found.ok_or_else(|| Error::not_found("credential", id))?;
        enforce(ctx, action, Target::user(&stored.user_id))?;
        self.open(stored)
    }

    /// An EC2 credential signs in to its project: a user may only hold one for a project
    /// they have a role on (an admin may make any). Without this check a user could name
    /// any project and present the credential to services that trust its `project_id`.
    async fn check_ec2_project(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        project_id: &str,
        action: &'static str,
    ) -> Result<()> {
        self.project(project_id).await?;
        if ctx.is_admin() {
            return Ok(());
        }
        let roles = self
            .effective_roles(user_id, TargetType::Project, project_id)
            .await?;
        if roles.is_empty() {
            return Err(Error::ForbiddenBecause(format!(
                "You are not authorized to perform the requested action: {action}: the user has no role on project {project_id}."
            )));
        }
        Ok(())
    }

    pub async fn list_credentials(
        &self,
        ctx: &AuthContext,
        query: CredentialQuery,
    ) -> Result<Vec<Credential>> {
        let user_id = if ctx.is_admin() {
            query.user_id
        } else {
            Some(ctx.user_id.clone())
        };
        enforce(
            ctx,
            "identity:list_credentials",
            Target {
                user_id: user_id.as_deref(),
                ..Target::default()
            },
        )?;
        store::credentials::list_credentials(
            &self.pool,
            user_id.as_deref(),
            query.credential_type.as_deref(),
        )
        .await?
        .into_iter()
        .map(|s| self.open(s))
        .collect()
    }

    pub async fn get_credential(&self, ctx: &AuthContext, id: &str) -> Result<Credential> {
        self.credential(ctx, id, "identity:get_credential").await
    }

    pub async fn create_credential(
        &self,
        ctx: &AuthContext,
        input: NewCredential,
    ) -> Result<Credential> {
        let user_id = input.user_id;
        enforce(ctx, "identity:create_credential", Target::user(&user_id))?;
        let attributes = input.attributes?;
        self.user(&user_id)
            .await
            .map_err(|_| Error::validation(format!("Could not find user: {user_id}.")))?;
        let id = if attributes.credential_type == "ec2" {
            let Some(project_id) = attributes.project_id.as_deref() else {
                return Err(Error::validation("An ec2 credential needs a 'project_id'."));
            };
            self.check_ec2_project(ctx, &user_id, project_id, "identity:create_credential")
                .await?;
            ec2_id(&ec2_access(&attributes.blob)?)
        } else {
            new_id()
        };
        let c = Credential {
            id,
            user_id,
            project_id: attributes.project_id,
            credential_type: attributes.credential_type,
            blob: attributes.blob,
            extra: attributes.extra,
        };
        if store::credentials::get_credential(&self.pool, &c.id)
            .await?
            .is_some()
        {
            return Err(Error::conflict(
                "credential",
                "a credential with this access key already exists",
            ));
        }
        self.save(&c, true).await?;
        Ok(c)
    }

    pub async fn update_credential(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<CredentialUpdate>,
    ) -> Result<Credential> {
        let mut c = self
            .credential(ctx, id, "identity:update_credential")
            .await?;
        let input = input?;
        if let Some(user_id) = input.user_id {
            if user_id != c.user_id && !ctx.is_admin() {
                return Err(Error::Forbidden("identity:update_credential"));
            }
            c.user_id = user_id;
        }
        let changes = input.changes?;
        if let Some(project_id) = changes.project_id {
            c.project_id = project_id;
        }
        if let Some(credential_type) = changes.credential_type {
            c.credential_type = credential_type;
        }
        if let Some(blob) = changes.blob {
            c.blob = blob;
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
            self.check_ec2_project(ctx, &c.user_id, project_id, "identity:update_credential")
                .await?;
        }
        c.extra.extend(changes.extra);
        self.save(&c, false).await?;
        Ok(c)
    }

    pub async fn delete_credential(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let c = self
            .credential(ctx, id, "identity:delete_credential")
            .await?;
        store::credentials::delete_credential(&self.pool, &c.id).await?;
        Ok(())
    }

    pub async fn list_ec2_credentials(
        &self,
        ctx: &AuthContext,
        user_id: &str,
    ) -> Result<Vec<Credential>> {
        enforce(ctx, "identity:ec2_list_credentials", Target::user(user_id))?;
        store::credentials::list_credentials(&self.pool, Some(user_id), Some("ec2"))
            .await?
            .into_iter()
            .map(|s| self.open(s))
            .collect()
    }

    /// Makes an EC2 credential with a new access key and secret on `project_id`.
    pub async fn create_ec2_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        project_id: Parsed<String>,
    ) -> Result<Credential> {
        enforce(ctx, "identity:ec2_create_credential", Target::user(user_id))?;
        self.user(user_id).await?;
        let project_id = project_id?;
        self.check_ec2_project(ctx, user_id, &project_id, "identity:ec2_create_credential")
            .await?;
        let access = random_hex();
        let blob =
            json!({ "access": access, "secret": random_hex(), "trust_id": null }).to_string();
        let c = Credential {
            id: ec2_id(&access),
            user_id: user_id.to_owned(),
            project_id: Some(project_id),
            credential_type: "ec2".into(),
            blob,
            extra: Map::new(),
        };
        self.save(&c, true).await?;
        Ok(c)
    }

    /// The user's EC2 credential with this access key.
    async fn ec2_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        access: &str,
        action: &'static str,
    ) -> Result<Credential> {
        enforce(ctx, action, Target::user(user_id))?;
        let stored = store::credentials::get_credential(&self.pool, &ec2_id(access))
            .await?
            .filter(|c| c.user_id == user_id && c.credential_type == "ec2")
            .ok_or_else(|| Error::not_found("credential", access))?;
        self.open(stored)
    }

    pub async fn get_ec2_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        access: &str,
    ) -> Result<Credential> {
        self.ec2_credential(ctx, user_id, access, "identity:ec2_get_credential")
            .await
    }

    pub async fn delete_ec2_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        access: &str,
    ) -> Result<()> {
        let c = self
            .ec2_credential(ctx, user_id, access, "identity:ec2_delete_credential")
            .await?;
        store::credentials::delete_credential(&self.pool, &c.id).await?;
        Ok(())
    }
}
