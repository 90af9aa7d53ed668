//! Creating, changing and deleting images, within the owner's image count quota.

use onestack_api::AuthContext;
use onestack_db::now_micros;
use serde_json::{Map, Value};

use super::access::project;
use super::attributes::{self, Patch, check_tag, set_attribute};
use crate::error::{Error, Result};
use crate::model::{Image, Status};
use crate::policy::{self, Action};
use crate::service::Images;
use crate::store;

/// A `POST /v2/images` body: the id the client chose, if any, and the other attributes.
#[derive(Debug)]
pub struct NewImage {
    pub id: Option<String>,
    pub attributes: Map<String, Value>,
}

impl Images {
    /// Creates a queued image owned by the caller's project. A body that did not parse is
    /// refused after the caller's checks, as it always has been.
    pub async fn create(&self, ctx: &AuthContext, request: Result<NewImage>) -> Result<Image> {
        let owner = project(ctx)?;
        policy::enforce(ctx, Action::AddImage, &owner)?;
        let NewImage { id, attributes } = request?;
        let now = now_micros();
        let mut image = Image {
            id: id.unwrap_or_else(onestack_db::ids::uuid),
            name: None,
            status: Status::Queued,
            visibility: "shared".into(),
            protected: false,
            os_hidden: false,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner,
            size: None,
            virtual_size: None,
            min_disk: 0,
            min_ram: 0,
            container_format: None,
            disk_format: None,
            properties: Map::new(),
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        for (key, value) in attributes {
            set_attribute(ctx, &mut image, &key, value)?;
        }
        self.insert(&image).await?;
        Ok(image)
    }

    /// Records a new image within the owner's image count quota (`quota_image_count_total`,
    /// 0 for none), which a compute snapshot counts against as an upload does.
    pub async fn insert(&self, image: &Image) -> Result<()> {
        let limit = self.config.quota_image_count_total;
        match store::insert(&self.pool, image, (limit > 0).then_some(limit)).await? {
            store::Inserted::Done => Ok(()),
            // Glance's 409 for an id in use, or used before: deleted ids are never given
            // out again.
            store::Inserted::IdTaken => Err(Error::Conflict(format!(
                "Image ID {} already exists!",
                image.id
            ))),
            store::Inserted::OverQuota => Err(Error::TooLarge(format!(
                "The project {} has reached its quota of {limit} images.",
                image.owner
            ))),
        }
    }

    /// Applies a JSON patch to an image, all of it or nothing.
    pub async fn update(&self, ctx: &AuthContext, id: &str, patch: Patch) -> Result<Image> {
        let Patch {
            changes,
            mut malformed,
        } = patch;
        self.modify(ctx, id, |image| {
            for change in changes.iter().cloned() {
                attributes::apply(ctx, image, change)?;
            }
            // Reported once the changes before it applied; an error is never retried.
            match malformed.take() {
                Some(error) => Err(error),
                None => Ok(true),
            }
        })
        .await
    }

    /// Reads image `id`, changes it with `change` (which says whether it changed anything)
    /// and writes it back only if no other write (an upload activating it, say) came in
    /// between; on such a race it starts again from the new record, so no write is lost.
    async fn modify(
        &self,
        ctx: &AuthContext,
        id: &str,
        mut change: impl FnMut(&mut Image) -> Result<bool>,
    ) -> Result<Image> {
        // Each lost race means another write went in, so this bounds the wait by how many
        // writers race for one image, not by time.
        const ATTEMPTS: usize = 64;
        for _ in 0..ATTEMPTS {
            let read = self.find_for(ctx, id, Action::ModifyImage).await?;
            let mut image = read.clone();
            if !change(&mut image)? {
                return Ok(image);
            }
            image.updated_at = now_micros().max(read.updated_at + 1);
            if store::update(&self.pool, &image, &read).await? {
                return Ok(image);
            }
        }
        Err(Error::Conflict(format!(
            "Image {id} kept changing while this request ran; retry."
        )))
    }

    /// Deletes an unprotected image and its data (and staged data).
    pub async fn delete(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        let image = self.find_for(ctx, id, Action::DeleteImage).await?;
        if image.protected {
            return Err(Error::Forbidden(format!(
                "Image {id} is protected and cannot be deleted."
            )));
        }
        if !store::delete(&self.pool, id, now_micros()).await? {
            return Err(Error::NotFound(id.to_owned()));
        }
        self.files.remove(&self.files.path(id)).await;
        self.files.remove(&self.files.staging_path(id)).await;
        Ok(())
    }

    pub async fn deactivate(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.switch(
            ctx,
            id,
            Status::Active,
            Status::Deactivated,
            "deactivate",
            Action::Deactivate,
        )
        .await
    }

    pub async fn reactivate(&self, ctx: &AuthContext, id: &str) -> Result<()> {
        self.switch(
            ctx,
            id,
            Status::Deactivated,
            Status::Active,
            "reactivate",
            Action::Reactivate,
        )
        .await
    }

    /// Moves an owned image between `active` and `deactivated`; repeating it is harmless.
    async fn switch(
        &self,
        ctx: &AuthContext,
        id: &str,
        from: Status,
        to: Status,
        verb: &str,
        action: Action,
    ) -> Result<()> {
        let image = self.find_for(ctx, id, action).await?;
        if image.status == to {
            return Ok(());
        }
        if image.status != from {
            return Err(Error::Forbidden(format!(
                "Not allowed to {verb} image in status '{}'.",
                image.status.as_str()
            )));
        }
        self.begin(image, &[from], to).await?;
        Ok(())
    }

    /// Tags an image; a tag it has already is no change.
    pub async fn add_tag(&self, ctx: &AuthContext, id: &str, tag: String) -> Result<()> {
        check_tag(&tag)?;
        self.modify(ctx, id, |image| {
            let new = !image.tags.contains(&tag);
            if new {
                image.tags.push(tag.clone());
            }
            Ok(new)
        })
        .await
        .map(drop)
    }

    pub async fn remove_tag(&self, ctx: &AuthContext, id: &str, tag: &str) -> Result<()> {
        self.modify(ctx, id, |image| {
            let before = image.tags.len();
            image.tags.retain(|t| t != tag);
            if image.tags.len() == before {
                return Err(Error::NotFound(format!("{id} (tag {tag})")));
            }
            Ok(true)
        })
        .await
        .map(drop)
    }
}
