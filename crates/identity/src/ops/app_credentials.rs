//! Application credentials: a user's secret for their current project, carrying some or
//! all of the roles they hold there. The secret is shown once, at creation.

use onestack_api::AuthContext;

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{AppCredential, Role, TargetType, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::{password, store};

#[derive(Debug)]
pub struct NewAppCredential {
    pub name: String,
    pub description: Option<String>,
    /// Generated when not given.
    pub secret: Option<String>,
    /// In the future.
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
    /// `None` (or an empty list, what the openstack CLI sends) means every role the user
    /// holds on the project.
    pub roles: Option<Vec<Parsed<RoleRef>>>,
}

/// A requested role, by id or name.
#[derive(Debug)]
pub struct RoleRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// A credential with its roles and, only when just made, its secret.
pub struct AppCredentialView {
    pub credential: AppCredential,
    pub roles: Vec<Role>,
    pub secret: Option<String>,
}

impl Identity {
    async fn with_roles(&self, credential: AppCredential) -> Result<AppCredentialView> {
        let graph = self.role_graph().await?;
        let roles = credential
            .role_ids
            .iter()
            .filter_map(|id| graph.roles.get(id).cloned())
            .collect();
        Ok(AppCredentialView {
            credential,
            roles,
            secret: None,
        })
    }

    async fn own_app_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        id: &str,
        action: &'static str,
    ) -> Result<AppCredential> {
        enforce(ctx, action, Target::user(user_id))?;
        store::credentials::get_app_credential(&self.pool, id)
            .await?
            .filter(|a| a.user_id == user_id)
            .ok_or_else(|| Error::not_found("application credential", id))
    }

    pub async fn list_app_credentials(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        name: Option<&str>,
    ) -> Result<Vec<AppCredentialView>> {
        enforce(
            ctx,
            "identity:list_application_credentials",
            Target::user(user_id),
        )?;
        let credentials =
            store::credentials::list_app_credentials(&self.pool, user_id, name).await?;
        let mut views = Vec::with_capacity(credentials.len());
        for c in credentials {
            views.push(self.with_roles(c).await?);
        }
        Ok(views)
    }

    pub async fn get_app_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        id: &str,
    ) -> Result<AppCredentialView> {
        let c = self
            .own_app_credential(ctx, user_id, id, "identity:get_application_credential")
            .await?;
        self.with_roles(c).await
    }

    /// The ids of the requested roles, each of which the user must hold.
    fn requested_roles(
        held: &[Role],
        requested: Vec<Parsed<RoleRef>>,
        project_id: &str,
    ) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for item in requested {
            let RoleRef { id, name } = item?;
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
        Ok(ids)
    }

    pub async fn create_app_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        input: Parsed<NewAppCredential>,
    ) -> Result<AppCredentialView> {
        enforce(
            ctx,
            "identity:create_application_credential",
            Target::user(user_id),
        )?;
        if ctx.user_id != user_id {
            return Err(Error::Forbidden("identity:create_application_credential"));
        }
        if let Some(id) = &ctx.application_credential_id {
            let restricted = store::credentials::get_app_credential(&self.pool, id)
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
                Error::validation(
                    "Creating an application credential needs a project-scoped token.",
                )
            })?
            .to_owned();
        let input = input?;
        let held = self
            .effective_roles(user_id, TargetType::Project, &project_id)
            .await?;
        let role_ids = match input.roles.filter(|r| !r.is_empty()) {
            None => held.iter().map(|r| r.id.clone()).collect(),
            Some(requested) => Self::requested_roles(&held, requested, &project_id)?,
        };
        if !store::credentials::list_app_credentials(&self.pool, user_id, Some(&input.name))
            .await?
            .is_empty()
        {
            return Err(Error::conflict(
                "application credential",
                format!("one named {} already exists", input.name),
            ));
        }
        // A chosen secret may be weak, so it gets the password hash; a generated one is
        // strong enough for a fast hash.
        let (secret, secret_hash) = match input.secret {
            Some(s) => {
                let hash = password::hash(s.clone(), self.config.password_hash_rounds).await?;
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
            name: input.name,
            user_id: user_id.to_owned(),
            project_id,
            secret_hash,
            description: input.description,
            expires_at: input.expires_at,
            unrestricted: input.unrestricted,
            role_ids,
        };
        store::credentials::insert_app_credential(&self.pool, &credential).await?;
        let mut view = self.with_roles(credential).await?;
        view.secret = Some(secret);
        Ok(view)
    }

    pub async fn delete_app_credential(
        &self,
        ctx: &AuthContext,
        user_id: &str,
        id: &str,
    ) -> Result<()> {
        let c = self
            .own_app_credential(ctx, user_id, id, "identity:delete_application_credential")
            .await?;
        store::credentials::delete_app_credential(&self.pool, &c.id).await?;
        Ok(())
    }
}
