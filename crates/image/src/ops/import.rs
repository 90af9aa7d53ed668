//! The interoperable import workflow (`POST /v2/images/{id}/import`): glance-direct imports
//! what `PUT /stage` uploaded, web-download fetches a URL; either runs in the background.

use std::sync::Arc;

use onestack_api::AuthContext;
use onestack_db::now_micros;

use super::web_download;
use crate::error::{Error, Result};
use crate::model::{Image, Status};
use crate::policy::Action;
use crate::service::Images;
use crate::store;

/// An import method a request names.
#[derive(Debug, Clone)]
pub enum ImportMethod {
    GlanceDirect,
    WebDownload { uri: String },
}

impl Images {
    /// Starts an import; the caller gets its answer (202) before the data arrives. A method
    /// that did not parse is refused after the image's checks.
    pub async fn import(
        self: Arc<Self>,
        ctx: &AuthContext,
        id: &str,
        method: Result<ImportMethod>,
    ) -> Result<()> {
        let image = self.find_for(ctx, id, Action::ModifyImage).await?;
        // Glance's import refuses an image without formats with a 409 and these words.
        for (name, value) in [
            ("container_format", &image.container_format),
            ("disk_format", &image.disk_format),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(Error::Conflict(format!(
                    "'{name}' needs to be set before import"
                )));
            }
        }
        match method? {
            ImportMethod::GlanceDirect => {
                let image = self
                    .begin(image, &[Status::Uploading], Status::Importing)
                    .await?;
                tokio::spawn(async move {
                    let result = self.import_staged(&image).await;
                    self.finish_import(&image.id, result).await;
                });
            }
            ImportMethod::WebDownload { uri } => {
                let target = web_download::check(&self, &uri).await?;
                let image = self
                    .begin(image, &[Status::Queued], Status::Importing)
                    .await?;
                tokio::spawn(async move {
                    let result = web_download::fetch(&self, &image, target).await;
                    self.finish_import(&image.id, result).await;
                });
            }
        }
        Ok(())
    }

    /// Copies the staged data in and activates the image; the staged file goes either way.
    async fn import_staged(&self, image: &Image) -> Result<Image> {
        let staged = self.files.staging_path(&image.id);
        let result = async {
            let file = tokio::fs::File::open(&staged)
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            let written = self
                .receive(
                    image,
                    tokio_util::io::ReaderStream::with_capacity(file, 1 << 20),
                    None,
                )
                .await?;
            self.activate(image.clone(), written, None).await
        }
        .await;
        self.files.remove(&staged).await;
        result
    }

    /// A failed import leaves the image `killed`, as Glance's does.
    async fn finish_import(&self, id: &str, result: Result<Image>) {
        if let Err(error) = result {
            tracing::warn!(image_id = %id, %error, "image import failed");
            let _ = store::transition(
                &self.pool,
                id,
                &[Status::Importing],
                Status::Killed,
                now_micros(),
            )
            .await;
        }
    }
}
