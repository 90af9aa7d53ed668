//! Groups and their members.

use onestack_api::{AuthContext, Scope};

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Extra, Group, User, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;

/// `GET /v3/groups`'s filters.
#[derive(Debug, Default)]
pub struct GroupQuery {
    pub name: Option<String>,
    /// Defaults to the caller's domain with a domain-scoped token.
    pub domain_id: Option<String>,
}

#[derive(Debug)]
pub struct NewGroup {
    pub name: String,
    /// Defaults to the caller's domain.
    pub domain_id: Option<String>,
    pub attributes: Parsed<GroupAttributes>,
}

#[derive(Debug)]
pub struct GroupAttributes {
    pub description: String,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub extra: Extra,
}

fn not_a_member(group_id: &str, user_id: &str) -> Error {
    Error::NotFound {
        kind: "user in group",
        id: format!("{user_id} in {group_id}"),
    }
}

impl Identity {
    pub async fn list_groups(&self, ctx: &AuthContext, query: GroupQuery) -> Result<Vec<Group>> {
        let domain_id = query
            .domain_id
            .or_else(|| ctx.domain_id().map(str::to_owned));
        enforce(
            ctx,
            "identity:list_groups",
            Target {
                domain_id: domain_id.as_deref(),
                ..Target::default()
            },
        )?;
        Ok(store::groups::list(
            &self.pool,
            query.name.as_deref(),
            domain_id.as_deref(),
            None,
        )
        .await?)
    }

    /// Only the admin and readers of the group's domain may read a group.
    async fn readable_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        action: &'static str,
    ) -> Result<Group> {
        if !ctx.is_admin() && ctx.domain_id().is_none() {
            return Err(Error::Forbidden(action));
        }
        let g = self.group(id).await?;
        enforce(ctx, action, Target::domain(&g.domain_id))?;
        Ok(g)
    }

    pub async fn get_group(&self, ctx: &AuthContext, id: &str) -> Result<Group> {
        self.readable_group(ctx, id, "identity:get_group").await
    }

    pub async fn create_group(&self, ctx: &AuthContext, input: NewGroup) -> Result<Group> {
        let domain_id = match (input.domain_id, &ctx.scope) {
            (Some(d), _) => d,
            (None, Scope::Domain { id, .. }) => id.clone(),
            (None, Scope::Project { domain_id, .. }) => domain_id.clone(),
            _ => "default".to_owned(),
        };
        enforce(ctx, "identity:create_group", Target::domain(&domain_id))?;
        self.existing_domain_id(&domain_id).await?;
        let attributes = input.attributes?;
        let g = Group {
            id: new_id(),
            name: input.name,
            domain_id,
            description: attributes.description,
            extra: attributes.extra,
        };
        if !store::groups::list(&self.pool, Some(&g.name), Some(&g.domain_id), None)
            .await?
            .is_empty()
        {
            return Err(Error::conflict(
                "group",
                format!("a group named {} already exists", g.name),
            ));
        }
        store::groups::insert(&self.pool, &g).await?;
        Ok(g)
    }

    pub async fn update_group(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<GroupUpdate>,
    ) -> Result<Group> {
        enforce(ctx, "identity:update_group", Target::default())?;
        let mut g = self.group(id).await?;
        let input = input?;
        if let Some(name) = input.name {
            g.name = name;
        }
        if let Some(description) = input.description {
            g.description = description;
        }
        g.extra.extend(input.extra);
        store::groups::update(&self.pool, &g).await?;
        Ok(g)
    }

    pub async fn delete_group(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_group", Target::default())?;
        self.group(id).await?;
        store::groups::delete(&self.pool, id).await?;
        Ok(())
    }

    pub async fn group_members(&self, ctx: &AuthContext, id: &str) -> Result<Vec<User>> {
        let g = self
            .readable_group(ctx, id, "identity:list_users_in_group")
            .await?;
        Ok(store::users::list(&self.pool, None, None, None, Some(&g.id)).await?)
    }

    /// Checks the policy for `action` and that both the group and the user exist.
    async fn membership(
        &self,
        ctx: &AuthContext,
        action: &'static str,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        enforce(ctx, action, Target::default())?;
        self.group(group_id).await?;
        self.user(user_id).await?;
        Ok(())
    }

    pub async fn add_group_member(
        &self,
        ctx: &AuthContext,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        self.membership(ctx, "identity:add_user_to_group", group_id, user_id)
            .await?;
        store::groups::add_member(&self.pool, group_id, user_id).await?;
        Ok(())
    }

    pub async fn check_group_member(
        &self,
        ctx: &AuthContext,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        self.membership(ctx, "identity:check_user_in_group", group_id, user_id)
            .await?;
        if store::groups::is_member(&self.pool, group_id, user_id).await? {
            Ok(())
        } else {
            Err(not_a_member(group_id, user_id))
        }
    }

    pub async fn remove_group_member(
        &self,
        ctx: &AuthContext,
        group_id: &str,
        user_id: &str,
    ) -> Result<()> {
        self.membership(ctx, "identity:remove_user_from_group", group_id, user_id)
            .await?;
        if store::groups::remove_member(&self.pool, group_id, user_id).await? {
            Ok(())
        } else {
            Err(not_a_member(group_id, user_id))
        }
    }
}
