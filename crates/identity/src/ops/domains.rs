//! Domains: only the cloud admin makes and changes them; disabling one revokes the tokens
//! of everything in it, and only a disabled domain may be deleted.

use onestack_api::AuthContext;

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Domain, Extra, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;

#[derive(Debug, Default)]
pub struct DomainFilter {
    pub name: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug)]
pub struct NewDomain {
    pub name: String,
    /// Keystone's `explicit_domain_id`: the id to use instead of a new one.
    pub explicit_id: Option<String>,
    pub description: String,
    pub enabled: bool,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct DomainUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub extra: Extra,
}

impl Identity {
    pub async fn list_domains(
        &self,
        ctx: &AuthContext,
        filter: DomainFilter,
    ) -> Result<Vec<Domain>> {
        enforce(ctx, "identity:list_domains", Target::default())?;
        Ok(
            store::projects::list_domains(&self.pool, filter.name.as_deref(), filter.enabled)
                .await?,
        )
    }

    pub async fn get_domain(&self, ctx: &AuthContext, id: &str) -> Result<Domain> {
        enforce(ctx, "identity:get_domain", Target::domain(id))?;
        self.domain(id).await
    }

    pub async fn create_domain(
        &self,
        ctx: &AuthContext,
        input: Parsed<NewDomain>,
    ) -> Result<Domain> {
        enforce(ctx, "identity:create_domain", Target::default())?;
        let input = input?;
        let d = Domain {
            id: input.explicit_id.unwrap_or_else(new_id),
            name: input.name,
            description: input.description,
            enabled: input.enabled,
            extra: input.extra,
        };
        if store::projects::find_domain_by_name(&self.pool, &d.name)
            .await?
            .is_some()
        {
            return Err(Error::conflict(
                "domain",
                format!("a domain named {} already exists", d.name),
            ));
        }
        store::projects::insert_domain(&self.pool, &d).await?;
        Ok(d)
    }

    pub async fn update_domain(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<DomainUpdate>,
    ) -> Result<Domain> {
        enforce(ctx, "identity:update_domain", Target::domain(id))?;
        let mut d = self.domain(id).await?;
        let was_enabled = d.enabled;
        let input = input?;
        if let Some(name) = input.name {
            d.name = name;
        }
        if let Some(description) = input.description {
            d.description = description;
        }
        if let Some(enabled) = input.enabled {
            d.enabled = enabled;
        }
        d.extra.extend(input.extra);
        store::projects::update_domain(&self.pool, &d).await?;
        if was_enabled && !d.enabled {
            self.revoke_domain_tokens(&d.id).await?;
        }
        Ok(d)
    }

    /// Revokes the tokens of the domain's users and of its projects, as Keystone does when
    /// a domain is disabled: re-enabling it later must not bring them back.
    async fn revoke_domain_tokens(&self, domain_id: &str) -> Result<()> {
        let filter = store::projects::ProjectFilter {
            domain_id: Some(domain_id.to_owned()),
            ..Default::default()
        };
        for project in store::projects::list_projects(&self.pool, &filter).await? {
            self.revoke_project_tokens(&project.id, None).await?;
        }
        for user in store::users::list(&self.pool, None, Some(domain_id), None, None).await? {
            self.revoke_user_tokens(&user.id).await?;
        }
        Ok(())
    }

    /// Keystone deletes only disabled domains, and everything in them goes too.
    pub async fn delete_domain(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_domain", Target::domain(id))?;
        let d = self.domain(id).await?;
        if d.enabled {
            return Err(Error::ForbiddenBecause(format!(
                "Cannot delete a domain that is enabled, please disable it first: {id}."
            )));
        }
        store::projects::delete_domain(&self.pool, id).await?;
        Ok(())
    }
}
