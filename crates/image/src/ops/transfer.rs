//! Image data over the API: upload (`PUT /file`), staging for a later import (`PUT /stage`),
//! and download (`GET /file`).

use bytes::Bytes;
use futures_util::Stream;
use onestack_api::AuthContext;
use onestack_db::now_micros;

use super::data::{Received, require_formats};
use crate::error::{Error, Result};
use crate::model::{Image, Status};
use crate::policy::Action;
use crate::service::Images;
use crate::store;

/// Data a client sends: the body, and what its headers declare of it.
pub struct Incoming<S> {
    pub body: S,
    /// `Content-Length`.
    pub length: Option<u64>,
    /// `Content-MD5`, as hex.
    pub md5: Option<String>,
}

/// How upload and stage differ: the policy rule, the status while data arrives, and the
/// status a failed transfer leaves.
struct Receiving {
    action: Action,
    busy: Status,
    on_failure: Status,
}

/// `PUT /file`: queued → saving → active, or killed.
const UPLOAD: Receiving = Receiving {
    action: Action::UploadImage,
    busy: Status::Saving,
    on_failure: Status::Killed,
};
/// `PUT /stage` (Glance checks `modify_image`): queued → uploading, or back to queued.
const STAGE: Receiving = Receiving {
    action: Action::ModifyImage,
    busy: Status::Uploading,
    on_failure: Status::Queued,
};

/// An image's data as a download serves it.
pub struct Download {
    pub file: tokio::fs::File,
    pub size: u64,
    /// The data's md5, for `Content-MD5`.
    pub checksum: Option<String>,
}

impl Images {
    /// Upload: queued → saving → active (or killed).
    pub async fn upload<S, E>(&self, ctx: &AuthContext, id: &str, data: Incoming<S>) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let md5 = data.md5.clone();
        let (image, received) = self.receive_body(ctx, id, data, UPLOAD).await?;
        self.activate(image, received, md5).await?;
        Ok(())
    }

    /// Stage: queued → uploading, data kept for a later glance-direct import; a failed
    /// upload leaves the image queued, as Glance does.
    pub async fn stage<S, E>(&self, ctx: &AuthContext, id: &str, data: Incoming<S>) -> Result<()>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (image, received) = self.receive_body(ctx, id, data, STAGE).await?;
        self.keep_staged(image, received).await
    }

    /// The part upload and stage share: a queued image the caller may write moves to `busy`
    /// and the body is streamed in; if that fails the image moves to `on_failure` and the
    /// error is returned.
    async fn receive_body<S, E>(
        &self,
        ctx: &AuthContext,
        id: &str,
        data: Incoming<S>,
        how: Receiving,
    ) -> Result<(Image, Received)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let Receiving {
            action,
            busy,
            on_failure,
        } = how;
        let image = self.find_for(ctx, id, action).await?;
        require_formats(&image)?;
        let image = self.begin(image, &[Status::Queued], busy).await?;
        match self.receive(&image, data.body, data.length).await {
            Ok(received) => Ok((image, received)),
            Err(e) => {
                // Glance restores the image to queued when the data is too large for the
                // cap or the quota.
                let to = if matches!(e, Error::TooLarge(_)) {
                    Status::Queued
                } else {
                    on_failure
                };
                store::transition(&self.pool, id, &[busy], to, now_micros()).await?;
                Err(e)
            }
        }
    }

    /// The data of an image the caller may download; `None` when it has none (yet).
    /// Deactivated images' data is for admins only.
    pub async fn download(&self, ctx: &AuthContext, id: &str) -> Result<Option<Download>> {
        let image = self.find_for(ctx, id, Action::DownloadImage).await?;
        match image.status {
            Status::Active => {}
            Status::Deactivated if !ctx.is_admin() => {
                return Err(Error::Forbidden(
                    "The requested image has been deactivated. Image data download is forbidden."
                        .into(),
                ));
            }
            Status::Deactivated => {}
            _ => return Ok(None),
        }
        let path = self.files.path(id);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .len();
        Ok(Some(Download {
            file,
            size,
            checksum: image.checksum,
        }))
    }
}
