//! Validating, checking and revoking tokens, and what a token may see: its catalog, the
//! projects and domains its user has a role on, and the system.

use std::sync::Arc;

use onestack_api::{AuthContext, Scope};

use crate::error::{Error, Result};
use crate::model::{Domain, Project, SYSTEM_ALL, TargetType};
use crate::policy::{Target, enforce};
use crate::service::{CatalogEntry, Identity, ValidatedToken};
use crate::store;

/// A validated token and, when its response is still to be rendered with one, the catalog.
pub struct TokenView {
    pub validated: Arc<ValidatedToken>,
    pub catalog: Option<Arc<Vec<CatalogEntry>>>,
}

impl Identity {
    /// Validates another token (the subject) on behalf of the caller.
    async fn subject(
        &self,
        ctx: &AuthContext,
        token: &str,
        action: &'static str,
    ) -> Result<Arc<ValidatedToken>> {
        let validated = self.validate(token).await?;
        enforce(ctx, action, Target::user(&validated.user.id))?;
        Ok(validated)
    }

    /// `GET /v3/auth/tokens`. The response is rendered once per cached token (in
    /// `ValidatedToken::rendered`), so the catalog is loaded only when that is still to do.
    pub async fn validate_token(
        &self,
        ctx: &AuthContext,
        token: &str,
        with_catalog: bool,
    ) -> Result<TokenView> {
        let validated = self.subject(ctx, token, "identity:validate_token").await?;
        let rendered = validated.rendered[usize::from(!with_catalog)]
            .get()
            .is_some();
        let catalog = if with_catalog && !rendered {
            Some(self.catalog().await?)
        } else {
            None
        };
        Ok(TokenView { validated, catalog })
    }

    pub async fn check_token(&self, ctx: &AuthContext, token: &str) -> Result<()> {
        self.subject(ctx, token, "identity:check_token").await?;
        Ok(())
    }

    /// Revokes the token and every token re-scoped from it.
    pub async fn revoke_token(&self, ctx: &AuthContext, token: &str) -> Result<()> {
        let validated = self.subject(ctx, token, "identity:revoke_token").await?;
        self.revoke_audit_id(
            &validated.payload.audit_ids[0],
            validated.payload.expires_at,
        )
        .await
    }

    pub async fn auth_catalog(&self, ctx: &AuthContext) -> Result<Arc<Vec<CatalogEntry>>> {
        enforce(ctx, "identity:get_auth_catalog", Target::default())?;
        if ctx.project_id().is_none() && ctx.domain_id().is_none() && ctx.scope != Scope::System {
            return Err(Error::ForbiddenBecause(
                "A scoped token is required to read the catalog.".into(),
            ));
        }
        self.catalog().await
    }

    /// The enabled projects the caller has a role on.
    pub async fn auth_projects(&self, ctx: &AuthContext) -> Result<Vec<Project>> {
        enforce(ctx, "identity:get_auth_projects", Target::default())?;
        let ids =
            store::assignments::target_ids_for_user(&self.pool, &ctx.user_id, TargetType::Project)
                .await?;
        let filter = store::projects::ProjectFilter {
            ids: Some(ids),
            enabled: Some(true),
            ..Default::default()
        };
        Ok(store::projects::list_projects(&self.pool, &filter).await?)
    }

    /// The enabled domains the caller has a role on.
    pub async fn auth_domains(&self, ctx: &AuthContext) -> Result<Vec<Domain>> {
        enforce(ctx, "identity:get_auth_domains", Target::default())?;
        let ids =
            store::assignments::target_ids_for_user(&self.pool, &ctx.user_id, TargetType::Domain)
                .await?;
        let mut domains = Vec::new();
        for id in ids {
            if let Some(d) = store::projects::get_domain(&self.pool, &id)
                .await?
                .filter(|d| d.enabled)
            {
                domains.push(d);
            }
        }
        Ok(domains)
    }

    /// Whether the caller has a role on the system.
    pub async fn auth_system(&self, ctx: &AuthContext) -> Result<bool> {
        enforce(ctx, "identity:get_auth_system", Target::default())?;
        let roles = self
            .effective_roles(&ctx.user_id, TargetType::System, SYSTEM_ALL)
            .await?;
        Ok(!roles.is_empty())
    }
}
