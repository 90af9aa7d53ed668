//! Finding an image for a caller, and moving it between statuses: the checks every other
//! operation starts with.

use onestack_api::AuthContext;
use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::model::{Image, Status};
use crate::policy::{self, Action};
use crate::service::Images;
use crate::store;

/// The project a caller acts for; Glance needs a project-scoped token.
pub(crate) fn project(ctx: &AuthContext) -> Result<String> {
    ctx.project_id().map(str::to_owned).ok_or_else(|| {
        Error::Forbidden("A project-scoped token is required for the image service.".into())
    })
}

impl Images {
    /// Whether the caller may see the image at all (else it is a 404 for them).
    pub async fn visible(&self, ctx: &AuthContext, image: &Image) -> Result<bool> {
        if ctx.is_admin() || image.visibility == "public" || image.visibility == "community" {
            return Ok(true);
        }
        let Some(project) = ctx.project_id() else {
            return Ok(false);
        };
        if image.owner == project {
            return Ok(true);
        }
        Ok(image.visibility == "shared"
            && store::get_member(&self.pool, &image.id, project)
                .await?
                .is_some())
    }

    /// The image, if it exists and the caller may see it (else 404), and may read it
    /// (`get_image`, else 403).
    pub async fn find(&self, ctx: &AuthContext, id: &str) -> Result<Image> {
        policy::enforce(ctx, Action::GetImage, "")?;
        let not_found = || Error::NotFound(id.to_owned());
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        let image = store::get(&self.pool, id).await?.ok_or_else(not_found)?;
        if self.visible(ctx, &image).await? {
            Ok(image)
        } else {
            Err(not_found())
        }
    }

    /// The image, if the caller may see it (else 404) and may do `action` to it by Glance's
    /// policy (else 403).
    pub async fn find_for(&self, ctx: &AuthContext, id: &str, action: Action) -> Result<Image> {
        let image = self.find(ctx, id).await?;
        policy::enforce(ctx, action, &image.owner)?;
        Ok(image)
    }

    /// Moves an image from one of `from` to `to` (compare-and-set, so two uploads or imports
    /// can never both start); a 409 naming the current status when it is not in `from`.
    pub async fn begin(&self, image: Image, from: &[Status], to: Status) -> Result<Image> {
        if store::transition(&self.pool, &image.id, from, to, now_micros()).await? {
            return Ok(Image {
                status: to,
                ..image
            });
        }
        let current = store::get(&self.pool, &image.id)
            .await?
            .map_or(image.status, |i| i.status);
        Err(Error::Conflict(format!(
            "Image status transition from {} to {} is not allowed.",
            current.as_str(),
            to.as_str()
        )))
    }
}
