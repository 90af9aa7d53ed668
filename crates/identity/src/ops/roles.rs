//! Roles and which imply which.

use onestack_api::AuthContext;

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Extra, Role, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;

/// Roles that may never be implied (Keystone's `prohibited_implied_role`).
const PROHIBITED_IMPLIED: [&str; 1] = ["admin"];

/// `GET /v3/roles`'s filters.
#[derive(Debug, Default)]
pub struct RoleQuery {
    pub name: Option<String>,
    /// `None` lists the global roles.
    pub domain_id: Option<String>,
}

#[derive(Debug)]
pub struct NewRole {
    pub name: String,
    /// `None` for a global role.
    pub domain_id: Option<String>,
    /// Reported once the domain is found.
    pub attributes: Parsed<RoleAttributes>,
}

#[derive(Debug)]
pub struct RoleAttributes {
    pub description: String,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct RoleUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub extra: Extra,
}

/// A role and the roles it implies directly.
pub type Inference = (Role, Vec<Role>);

fn no_implication(prior_id: &str, implied_id: &str) -> Error {
    Error::not_found("implied role", format!("{prior_id} implies {implied_id}"))
}

impl Identity {
    pub async fn list_roles(&self, ctx: &AuthContext, query: RoleQuery) -> Result<Vec<Role>> {
        enforce(ctx, "identity:list_roles", Target::default())?;
        Ok(store::roles::list(
            &self.pool,
            query.name.as_deref(),
            Some(query.domain_id.as_deref()),
        )
        .await?)
    }

    pub async fn get_role(&self, ctx: &AuthContext, id: &str) -> Result<Role> {
        enforce(ctx, "identity:get_role", Target::default())?;
        self.role(id).await
    }

    /// Whether another role of this name exists in the role's domain (or among global roles).
    async fn role_name_taken(&self, r: &Role) -> Result<bool> {
        Ok(
            store::roles::list(&self.pool, Some(&r.name), Some(r.domain_id.as_deref()))
                .await?
                .iter()
                .any(|o| o.id != r.id),
        )
    }

    pub async fn create_role(&self, ctx: &AuthContext, input: Parsed<NewRole>) -> Result<Role> {
        enforce(ctx, "identity:create_role", Target::default())?;
        let input = input?;
        if let Some(d) = &input.domain_id {
            self.existing_domain_id(d).await?;
        }
        let attributes = input.attributes?;
        let r = Role {
            id: new_id(),
            name: input.name,
            domain_id: input.domain_id,
            description: attributes.description,
            extra: attributes.extra,
        };
        if self.role_name_taken(&r).await? {
            return Err(Error::conflict(
                "role",
                format!("a role named {} already exists", r.name),
            ));
        }
        store::roles::insert(&self.pool, &r).await?;
        Ok(r)
    }

    pub async fn update_role(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<RoleUpdate>,
    ) -> Result<Role> {
        enforce(ctx, "identity:update_role", Target::default())?;
        let mut r = self.role(id).await?;
        let input = input?;
        if let Some(name) = input.name {
            r.name = name;
        }
        if let Some(description) = input.description {
            r.description = description;
        }
        r.extra.extend(input.extra);
        if self.role_name_taken(&r).await? {
            return Err(Error::conflict(
                "role",
                format!("a role named {} already exists", r.name),
            ));
        }
        store::roles::update(&self.pool, &r).await?;
        Ok(r)
    }

    pub async fn delete_role(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_role", Target::default())?;
        self.role(id).await?;
        store::roles::delete(&self.pool, id).await?;
        Ok(())
    }

    pub async fn implied_roles(&self, ctx: &AuthContext, id: &str) -> Result<Inference> {
        enforce(ctx, "identity:list_implied_roles", Target::default())?;
        let prior = self.role(id).await?;
        let graph = self.role_graph().await?;
        let implied = graph
            .implies
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|i| graph.roles.get(i))
            .cloned()
            .collect();
        Ok((prior, implied))
    }

    /// Both roles, and whether the first implies the second.
    async fn implication(&self, prior_id: &str, implied_id: &str) -> Result<(Role, Role, bool)> {
        let prior = self.role(prior_id).await?;
        let implied = self.role(implied_id).await?;
        let exists = self
            .role_graph()
            .await?
            .implies
            .get(prior_id)
            .is_some_and(|i| i.iter().any(|x| x == implied_id));
        Ok((prior, implied, exists))
    }

    pub async fn add_implied_role(
        &self,
        ctx: &AuthContext,
        prior_id: &str,
        implied_id: &str,
    ) -> Result<(Role, Role)> {
        enforce(ctx, "identity:create_implied_role", Target::default())?;
        let (prior, implied, exists) = self.implication(prior_id, implied_id).await?;
        if PROHIBITED_IMPLIED.contains(&implied.name.as_str()) {
            return Err(Error::ForbiddenBecause(format!(
                "{} may not be an implied role.",
                implied.name
            )));
        }
        if implied.domain_id.is_some() && prior.domain_id.is_none() {
            return Err(Error::ForbiddenBecause(
                "A global role may not imply a domain-specific role.".into(),
            ));
        }
        let graph = self.role_graph().await?;
        if prior_id == implied_id
            || graph
                .expand([implied_id.to_owned()])
                .iter()
                .any(|r| r.id == prior_id)
        {
            return Err(Error::validation(
                "This implication would make a cycle of implied roles.",
            ));
        }
        if !exists {
            store::roles::add_implication(&self.pool, prior_id, implied_id).await?;
        }
        Ok((prior, implied))
    }

    pub async fn get_implied_role(
        &self,
        ctx: &AuthContext,
        prior_id: &str,
        implied_id: &str,
    ) -> Result<(Role, Role)> {
        enforce(ctx, "identity:get_implied_role", Target::default())?;
        match self.implication(prior_id, implied_id).await? {
            (prior, implied, true) => Ok((prior, implied)),
            _ => Err(no_implication(prior_id, implied_id)),
        }
    }

    pub async fn check_implied_role(
        &self,
        ctx: &AuthContext,
        prior_id: &str,
        implied_id: &str,
    ) -> Result<()> {
        enforce(ctx, "identity:check_implied_role", Target::default())?;
        match self.implication(prior_id, implied_id).await? {
            (_, _, true) => Ok(()),
            _ => Err(no_implication(prior_id, implied_id)),
        }
    }

    pub async fn remove_implied_role(
        &self,
        ctx: &AuthContext,
        prior_id: &str,
        implied_id: &str,
    ) -> Result<()> {
        enforce(ctx, "identity:delete_implied_role", Target::default())?;
        self.role(prior_id).await?;
        self.role(implied_id).await?;
        if store::roles::remove_implication(&self.pool, prior_id, implied_id).await? {
            Ok(())
        } else {
            Err(no_implication(prior_id, implied_id))
        }
    }

    /// Every role that implies others, by id.
    pub async fn role_inferences(&self, ctx: &AuthContext) -> Result<Vec<Inference>> {
        enforce(ctx, "identity:list_role_inference_rules", Target::default())?;
        let graph = self.role_graph().await?;
        let mut priors: Vec<&String> = graph.implies.keys().collect();
        priors.sort();
        Ok(priors
            .into_iter()
            .filter_map(|prior_id| {
                let prior = graph.roles.get(prior_id)?;
                let implied = graph.implies[prior_id]
                    .iter()
                    .filter_map(|i| graph.roles.get(i))
                    .cloned()
                    .collect();
                Some((prior.clone(), implied))
            })
            .collect())
    }
}
