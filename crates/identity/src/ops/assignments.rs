//! Role grants on projects, domains and the system: granting, checking, revoking and
//! listing the roles an actor holds on one target.

use onestack_api::AuthContext;

use crate::error::{Error, Result};
use crate::model::{ActorType, Assignment, Role, TargetType};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;
use crate::store::assignments::AssignmentFilter;

fn no_assignment(a: &Assignment) -> Error {
    Error::not_found(
        "role assignment",
        format!("role {} for {} on {}", a.role_id, a.actor_id, a.target_id),
    )
}

impl Identity {
    /// Checks that a grant's target and actor exist (404 naming the missing one).
    async fn check_target_and_actor(
        &self,
        target: (TargetType, &str),
        actor: (ActorType, &str),
    ) -> Result<()> {
        match target {
            (TargetType::Project, id) => drop(self.project(id).await?),
            (TargetType::Domain, id) => drop(self.domain(id).await?),
            (TargetType::System, _) => {}
        }
        match actor {
            (ActorType::User, id) => drop(self.user(id).await?),
            (ActorType::Group, id) => drop(self.group(id).await?),
        }
        Ok(())
    }

    /// Checks the policy for `action`, and that the grant's target, actor and role exist.
    async fn check_grant_parts(
        &self,
        ctx: &AuthContext,
        action: &'static str,
        a: &Assignment,
    ) -> Result<()> {
        enforce(ctx, action, Target::default())?;
        self.check_target_and_actor((a.target_type, &a.target_id), (a.actor_type, &a.actor_id))
            .await?;
        self.role(&a.role_id).await?;
        Ok(())
    }

    pub async fn grant_role(&self, ctx: &AuthContext, a: Assignment) -> Result<()> {
        self.check_grant_parts(ctx, "identity:create_grant", &a)
            .await?;
        store::assignments::grant(&self.pool, &a).await?;
        Ok(())
    }

    pub async fn check_grant(&self, ctx: &AuthContext, a: Assignment) -> Result<()> {
        self.check_grant_parts(ctx, "identity:check_grant", &a)
            .await?;
        if store::assignments::exists(&self.pool, &a).await? {
            Ok(())
        } else {
            Err(no_assignment(&a))
        }
    }

    pub async fn revoke_grant(&self, ctx: &AuthContext, a: Assignment) -> Result<()> {
        self.check_grant_parts(ctx, "identity:revoke_grant", &a)
            .await?;
        if store::assignments::revoke(&self.pool, &a).await? {
            self.revoke_affected_tokens(&a).await
        } else {
            Err(no_assignment(&a))
        }
    }

    /// Tokens that relied on a removed grant stay invalid even if it is granted again, as
    /// in Keystone: the user's (or each group member's) tokens on that project, or all
    /// their tokens for a domain or system grant.
    async fn revoke_affected_tokens(&self, a: &Assignment) -> Result<()> {
        let users = match a.actor_type {
            ActorType::User => vec![a.actor_id.clone()],
            ActorType::Group => store::groups::member_ids(&self.pool, &a.actor_id).await?,
        };
        for user_id in &users {
            match a.target_type {
                TargetType::Project => {
                    self.revoke_project_tokens(&a.target_id, Some(user_id))
                        .await?
                }
                TargetType::Domain | TargetType::System => self.revoke_user_tokens(user_id).await?,
            }
        }
        Ok(())
    }

    /// The roles granted directly (not inherited) to an actor on a target.
    pub async fn list_grants(
        &self,
        ctx: &AuthContext,
        target: (TargetType, &str),
        actor: (ActorType, &str),
    ) -> Result<Vec<Role>> {
        enforce(ctx, "identity:list_grants", Target::default())?;
        self.check_target_and_actor(target, actor).await?;
        let filter = AssignmentFilter {
            actor: Some((actor.0, actor.1.to_owned())),
            target: Some((target.0, Some(target.1.to_owned()))),
            role_id: None,
        };
        let graph = self.role_graph().await?;
        Ok(store::assignments::list(&self.pool, &filter)
            .await?
            .iter()
            .filter(|a| !a.inherited)
            .filter_map(|a| graph.roles.get(&a.role_id))
            .cloned()
            .collect())
    }
}
