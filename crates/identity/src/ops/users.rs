//! Users: made in a domain, named uniquely within it; a password change or disabling
//! revokes the user's tokens.

use onestack_api::{AuthContext, Scope};

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Extra, Group, Project, TargetType, User, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store::projects::ProjectFilter;
use crate::{password, store};

/// `GET /v3/users`'s filters (and a user's projects').
#[derive(Debug, Default)]
pub struct UserQuery {
    pub name: Option<String>,
    /// For `/v3/users`, defaults to the caller's domain with a domain-scoped token.
    pub domain_id: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug)]
pub struct NewUser {
    pub name: String,
    /// Defaults to the caller's domain.
    pub domain_id: Option<String>,
    pub attributes: Parsed<UserAttributes>,
}

/// What a new user's body holds besides its name and domain.
#[derive(Debug)]
pub struct UserAttributes {
    /// Of an acceptable length.
    pub password: Option<String>,
    pub default_project_id: Option<String>,
    /// Reported once the default project is found.
    pub rest: Parsed<UserSettings>,
}

#[derive(Debug)]
pub struct UserSettings {
    pub enabled: bool,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears the default project.
    pub default_project_id: Option<Option<String>>,
    /// Reported once the default project is found.
    pub rest: Parsed<UserUpdateRest>,
}

#[derive(Debug)]
pub struct UserUpdateRest {
    pub password: Option<String>,
    pub extra: Extra,
}

/// `POST /v3/users/{id}/password`: the new password, of an acceptable length, and the old.
#[derive(Debug)]
pub struct PasswordChange {
    pub original: String,
    pub new: String,
}

impl Identity {
    pub async fn list_users(&self, ctx: &AuthContext, query: UserQuery) -> Result<Vec<User>> {
        let domain_id = query
            .domain_id
            .or_else(|| ctx.domain_id().map(str::to_owned));
        enforce(
            ctx,
            "identity:list_users",
            Target {
                domain_id: domain_id.as_deref(),
                ..Target::default()
            },
        )?;
        Ok(store::users::list(
            &self.pool,
            query.name.as_deref(),
            domain_id.as_deref(),
            query.enabled,
            None,
        )
        .await?)
    }

    /// Refuses a non-admin reading another user before looking the user up, so ids cannot
    /// be probed.
    async fn visible_user(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: &'static str,
    ) -> Result<User> {
        if !ctx.is_admin() && ctx.user_id != id && ctx.domain_id().is_none() {
            return Err(Error::Forbidden(action));
        }
        let u = self.user(id).await?;
        enforce(
            ctx,
            action,
            Target {
                user_id: Some(&u.id),
                domain_id: Some(&u.domain_id),
                ..Target::default()
            },
        )?;
        Ok(u)
    }

    pub async fn get_user(&self, ctx: &AuthContext, id: &str) -> Result<User> {
        self.visible_user(ctx, id, "identity:get_user").await
    }

    async fn check_default_project(&self, project_id: Option<&str>) -> Result<()> {
        if let Some(id) = project_id
            && store::projects::get_project(&self.pool, id)
                .await?
                .is_none()
        {
            return Err(Error::validation(format!(
                "Could not find default project: {id}."
            )));
        }
        Ok(())
    }

    /// Checks a new password against the password rules and hashes it.
    async fn hash_new_password(
        &self,
        user: Option<&User>,
        password: String,
        self_service: bool,
    ) -> Result<String> {
        self.password_rules
            .check_new(&self.pool, user, &password, self_service)
            .await?;
        password::hash(password, self.config.password_hash_rounds).await
    }

    /// Records a password just stored, for the history and expiry rules.
    async fn record_password(&self, user: &mut User, hash: &str) -> Result<()> {
        self.password_rules
            .record(&self.pool, &user.id, hash)
            .await?;
        user.password_set_at = Some(onestack_db::now_micros());
        Ok(())
    }

    pub async fn create_user(&self, ctx: &AuthContext, input: NewUser) -> Result<User> {
        let domain_id = match (input.domain_id, &ctx.scope) {
            (Some(d), _) => d,
            (None, Scope::Project { domain_id, .. }) => domain_id.clone(),
            (None, Scope::Domain { id, .. }) => id.clone(),
            _ => "default".to_owned(),
        };
        enforce(ctx, "identity:create_user", Target::domain(&domain_id))?;
        self.existing_domain_id(&domain_id).await?;
        let attributes = input.attributes?;
        self.check_default_project(attributes.default_project_id.as_deref())
            .await?;
        let settings = attributes.rest?;
        let name = input.name;
        if store::users::find_by_name(&self.pool, &domain_id, &name)
            .await?
            .is_some()
        {
            return Err(Error::conflict(
                "user",
                format!("a user named {name} already exists in domain {domain_id}"),
            ));
        }
        let password_hash = match attributes.password {
            Some(p) => Some(self.hash_new_password(None, p, false).await?),
            None => None,
        };
        let mut u = User {
            id: new_id(),
            name,
            domain_id,
            enabled: settings.enabled,
            password_hash,
            default_project_id: attributes.default_project_id,
            extra: settings.extra,
            failed_auth_count: 0,
            last_failed_auth_at: None,
            password_set_at: None,
        };
        store::users::insert(&self.pool, &u).await?;
        if let Some(hash) = u.password_hash.clone() {
            self.record_password(&mut u, &hash).await?;
        }
        Ok(u)
    }

    pub async fn update_user(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<UserUpdate>,
    ) -> Result<User> {
        enforce(ctx, "identity:update_user", Target::user(id))?;
        let mut u = self.user(id).await?;
        let input = input?;
        if let Some(name) = input.name {
            u.name = name;
        }
        if let Some(enabled) = input.enabled {
            u.enabled = enabled;
        }
        if let Some(default_project_id) = input.default_project_id {
            self.check_default_project(default_project_id.as_deref())
                .await?;
            u.default_project_id = default_project_id;
        }
        let rest = input.rest?;
        u.extra.extend(rest.extra);
        if let Some(other) = store::users::find_by_name(&self.pool, &u.domain_id, &u.name).await?
            && other.id != u.id
        {
            return Err(Error::conflict(
                "user",
                format!("a user named {} already exists", u.name),
            ));
        }
        if let Some(p) = rest.password {
            let hash = self.hash_new_password(Some(&u), p, false).await?;
            u.password_hash = Some(hash.clone());
            u.failed_auth_count = 0;
            store::users::reset_failed_auth(&self.pool, &u.id).await?;
            store::users::update(&self.pool, &u).await?;
            self.record_password(&mut u, &hash).await?;
            self.revoke_user_tokens(&u.id).await?;
        } else {
            store::users::update(&self.pool, &u).await?;
            // As Keystone: disabling revokes the user's tokens, so re-enabling does not
            // revive them.
            if !u.enabled {
                self.revoke_user_tokens(&u.id).await?;
            }
        }
        Ok(u)
    }

    pub async fn delete_user(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_user", Target::user(id))?;
        self.user(id).await?;
        store::users::delete(&self.pool, id).await?;
        Ok(())
    }

    /// The user changes their own password, proving the old one.
    pub async fn change_password(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<PasswordChange>,
    ) -> Result<()> {
        if ctx.user_id != id {
            return Err(Error::Forbidden("identity:change_password"));
        }
        let input = input?;
        let mut u = self.user(id).await?;
        let cost = self.config.password_hash_rounds;
        if !password::verify(input.original, u.password_hash.clone(), cost).await? {
            return Err(Error::Unauthorized);
        }
        let hash = self.hash_new_password(Some(&u), input.new, true).await?;
        u.password_hash = Some(hash.clone());
        store::users::update(&self.pool, &u).await?;
        self.record_password(&mut u, &hash).await?;
        self.revoke_user_tokens(&u.id).await?;
        Ok(())
    }

    /// The projects a user has a role on, filtered.
    pub async fn user_projects(
        &self,
        ctx: &AuthContext,
        id: &str,
        query: UserQuery,
    ) -> Result<Vec<Project>> {
        let u = self
            .visible_user(ctx, id, "identity:list_user_projects")
            .await?;
        let ids =
            store::assignments::target_ids_for_user(&self.pool, &u.id, TargetType::Project).await?;
        let filter = ProjectFilter {
            ids: Some(ids),
            name: query.name,
            domain_id: query.domain_id,
            enabled: query.enabled,
            ..Default::default()
        };
        Ok(store::projects::list_projects(&self.pool, &filter).await?)
    }

    pub async fn user_groups(&self, ctx: &AuthContext, id: &str) -> Result<Vec<Group>> {
        let u = self
            .visible_user(ctx, id, "identity:list_groups_for_user")
            .await?;
        Ok(store::groups::list(&self.pool, None, None, Some(&u.id)).await?)
    }
}
