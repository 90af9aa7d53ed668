//! A project's tags: at most 80, each 1 to 255 characters without '/' or ','.

use onestack_api::AuthContext;

use super::Parsed;
use crate::error::{Error, Result};
use crate::policy::{Target, enforce};
use crate::service::Identity;
use crate::store;

const MAX_TAGS: usize = 80;

pub fn validate_tag(tag: &str) -> Result<()> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains('/') || tag.contains(',') {
        return Err(Error::validation(format!(
            "Invalid tag '{tag}': tags are 1 to 255 characters and contain neither '/' nor ','."
        )));
    }
    Ok(())
}

pub fn check_tags(tags: &[String]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::validation(format!(
            "A project has at most {MAX_TAGS} tags."
        )));
    }
    tags.iter().try_for_each(|t| validate_tag(t))
}

fn tag_not_found(tag: String) -> Error {
    Error::not_found("tag", tag)
}

impl Identity {
    pub async fn project_tags(&self, ctx: &AuthContext, id: &str) -> Result<Vec<String>> {
        let p = self
            .readable_project(ctx, id, "identity:get_project_tags")
            .await?;
        Ok(p.tags)
    }

    pub async fn check_project_tag(&self, ctx: &AuthContext, id: &str, tag: String) -> Result<()> {
        let p = self
            .readable_project(ctx, id, "identity:get_project_tags")
            .await?;
        if p.tags.contains(&tag) {
            Ok(())
        } else {
            Err(tag_not_found(tag))
        }
    }

    /// Replaces the tags with `tags` (valid, sorted and without duplicates).
    pub async fn replace_project_tags(
        &self,
        ctx: &AuthContext,
        id: &str,
        tags: Parsed<Vec<String>>,
    ) -> Result<Vec<String>> {
        enforce(ctx, "identity:update_project_tags", Target::default())?;
        let mut p = self.project(id).await?;
        p.tags = tags?;
        store::projects::update_project(&self.pool, &p).await?;
        Ok(p.tags)
    }

    pub async fn clear_project_tags(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        enforce(ctx, "identity:delete_project_tags", Target::default())?;
        let mut p = self.project(id).await?;
        p.tags.clear();
        store::projects::update_project(&self.pool, &p).await?;
        Ok(())
    }

    pub async fn add_project_tag(&self, ctx: &AuthContext, id: &str, tag: String) -> Result<()> {
        enforce(ctx, "identity:create_project_tag", Target::default())?;
        let mut p = self.project(id).await?;
        validate_tag(&tag)?;
        if !p.tags.contains(&tag) {
            p.tags.push(tag);
            check_tags(&p.tags)?;
            store::projects::update_project(&self.pool, &p).await?;
        }
        Ok(())
    }

    pub async fn remove_project_tag(&self, ctx: &AuthContext, id: &str, tag: String) -> Result<()> {
        enforce(ctx, "identity:delete_project_tag", Target::default())?;
        let mut p = self.project(id).await?;
        let before = p.tags.len();
        p.tags.retain(|t| *t != tag);
        if p.tags.len() == before {
            return Err(tag_not_found(tag));
        }
        store::projects::update_project(&self.pool, &p).await?;
        Ok(())
    }
}
