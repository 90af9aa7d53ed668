//! Projects: made in a domain (under an optional parent of the same domain), named
//! uniquely within it; disabling one revokes the tokens scoped to it.

use onestack_api::{AuthContext, Scope};

use super::Parsed;
use crate::error::{Error, Result};
use crate::model::{Extra, Project, new_id};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;
use crate::store::projects::ProjectFilter;

/// `GET /v3/projects`'s filters.
#[derive(Debug, Default)]
pub struct ProjectQuery {
    pub name: Option<String>,
    /// Defaults to the caller's domain with a domain-scoped token.
    pub domain_id: Option<String>,
    pub enabled: Option<bool>,
    pub parent_id: Option<String>,
    pub is_domain: Option<bool>,
    pub tags: Vec<String>,
    pub tags_any: Vec<String>,
    pub not_tags: Vec<String>,
    pub not_tags_any: Vec<String>,
}

#[derive(Debug)]
pub struct NewProject {
    pub name: String,
    pub parent_id: Option<String>,
    /// Defaults to the parent's domain, else the caller's.
    pub domain_id: Parsed<Option<String>>,
    pub attributes: Parsed<ProjectAttributes>,
}

/// What a new project's body holds besides where the project goes.
#[derive(Debug)]
pub struct ProjectAttributes {
    pub description: String,
    pub enabled: bool,
    pub tags: Vec<String>,
    pub extra: Extra,
}

/// The attributes a PATCH sets; `None` leaves one as it is.
#[derive(Debug)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub extra: Extra,
}

impl Identity {
    pub async fn list_projects(
        &self,
        ctx: &AuthContext,
        query: ProjectQuery,
    ) -> Result<Vec<Project>> {
        let domain_id = query
            .domain_id
            .or_else(|| ctx.domain_id().map(str::to_owned));
        enforce(
            ctx,
            "identity:list_projects",
            Target {
                domain_id: domain_id.as_deref(),
                ..Target::default()
            },
        )?;
        // A top-level project's parent is its domain (as Keystone shows it), so filtering by
        // a domain as parent selects that domain's top-level projects.
        let mut domain_id = domain_id;
        let parent_id = match query.parent_id {
            Some(p)
                if domain_id.as_ref().is_none_or(|d| *d == p)
                    && store::projects::get_domain(&self.pool, &p).await?.is_some() =>
            {
                domain_id = Some(p);
                Some(None)
            }
            other => other.map(Some),
        };
        // Projects are never domains here, so `is_domain=true` matches nothing.
        if query.is_domain == Some(true) {
            return Ok(Vec::new());
        }
        let filter = ProjectFilter {
            name: query.name,
            domain_id,
            enabled: query.enabled,
            parent_id,
            ids: None,
            tags: query.tags,
            tags_any: query.tags_any,
            not_tags: query.not_tags,
            not_tags_any: query.not_tags_any,
        };
        Ok(store::projects::list_projects(&self.pool, &filter).await?)
    }

    /// A project the caller may read. A non-admin outside its project and domain is refused
    /// before the lookup, so that ids cannot be probed.
    pub(crate) async fn readable_project(
        &self,
        ctx: &AuthContext,
        id: &str,
        refusal: &'static str,
    ) -> Result<Project> {
        if !ctx.is_admin() && ctx.project_id() != Some(id) && ctx.domain_id().is_none() {
            return Err(Error::Forbidden(refusal));
        }
        let p = self.project(id).await?;
        enforce(
            ctx,
            "identity:get_project",
            Target::project(&p.id, &p.domain_id),
        )?;
        Ok(p)
    }

    pub async fn get_project(&self, ctx: &AuthContext, id: &str) -> Result<Project> {
        self.readable_project(ctx, id, "identity:get_project").await
    }

    pub async fn create_project(&self, ctx: &AuthContext, input: NewProject) -> Result<Project> {
        let parent = match &input.parent_id {
            Some(id) => Some(
                store::projects::get_project(&self.pool, id)
                    .await?
                    .ok_or_else(|| {
                        Error::validation(format!("Could not find parent project: {id}."))
                    })?,
            ),
            None => None,
        };
        let domain_id = match (input.domain_id?, &parent, &ctx.scope) {
            (Some(d), _, _) => d,
            (None, Some(p), _) => p.domain_id.clone(),
            (None, None, Scope::Project { domain_id, .. }) => domain_id.clone(),
            (None, None, Scope::Domain { id, .. }) => id.clone(),
            _ => "default".to_owned(),
        };
        enforce(ctx, "identity:create_project", Target::domain(&domain_id))?;
        self.existing_domain_id(&domain_id).await?;
        if parent.as_ref().is_some_and(|p| p.domain_id != domain_id) {
            return Err(Error::validation(
                "A project must be in the same domain as its parent.",
            ));
        }
        let attributes = input.attributes?;
        let p = Project {
            id: new_id(),
            name: input.name,
            domain_id,
            parent_id: input.parent_id,
            description: attributes.description,
            enabled: attributes.enabled,
            tags: attributes.tags,
            extra: attributes.extra,
        };
        if store::projects::find_project_by_name(&self.pool, &p.domain_id, &p.name)
            .await?
            .is_some()
        {
            return Err(Error::conflict(
                "project",
                format!(
                    "a project named {} already exists in domain {}",
                    p.name, p.domain_id
                ),
            ));
        }
        store::projects::insert_project(&self.pool, &p).await?;
        Ok(p)
    }

    pub async fn update_project(
        &self,
        ctx: &AuthContext,
        id: &str,
        input: Parsed<ProjectUpdate>,
    ) -> Result<Project> {
        enforce(ctx, "identity:update_project", Target::default())?;
        let mut p = self.project(id).await?;
        let was_enabled = p.enabled;
        let input = input?;
        if let Some(name) = input.name {
            p.name = name;
        }
        if let Some(description) = input.description {
            p.description = description;
        }
        if let Some(enabled) = input.enabled {
            p.enabled = enabled;
        }
        if let Some(tags) = input.tags {
            p.tags = tags;
        }
        p.extra.extend(input.extra);
        if let Some(other) =
            store::projects::find_project_by_name(&self.pool, &p.domain_id, &p.name).await?
            && other.id != p.id
        {
            return Err(Error::conflict(
                "project",
                format!("a project named {} already exists", p.name),
            ));
        }
        store::projects::update_project(&self.pool, &p).await?;
        if was_enabled && !p.enabled {
            // Re-enabling the project later must not bring its old tokens back.
            self.revoke_project_tokens(&p.id, None).await?;
        }
        Ok(p)
    }

    pub async fn delete_project(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_project", Target::default())?;
        self.project(id).await?;
        if store::projects::has_children(&self.pool, id).await? {
            return Err(Error::ForbiddenBecause(format!(
                "Cannot delete project {id}: it has child projects."
            )));
        }
        store::projects::delete_project(&self.pool, id).await?;
        Ok(())
    }
}
