//! The image service's state and its start-up. The operations live in `ops/`; the errors in
//! `error.rs` (re-exported here, where other services have always named them).

use std::path::Path;
use std::sync::Arc;

use onestack_db::{Pool, now_micros};

use crate::config::ImageConfig;
use crate::files::FileStore;
use crate::model::Status;
use crate::quota::Ledger;
use crate::store;

pub use crate::error::{Error, Result};
pub use crate::ops::data::Received;

pub struct Images {
    pub pool: Pool,
    pub config: ImageConfig,
    pub files: FileStore,
    /// The storage quota of transfers under way.
    pub ledger: Arc<Ledger>,
}

/// Removes data files that no image holds: a stop between committing a file and recording
/// the image `active` (the image is then `killed`), or between deleting an image and its
/// file, leaves one behind. Committed data belongs to an active or deactivated image,
/// staged data to an `uploading` one. Returns how many were removed.
async fn remove_orphan_files(pool: &Pool, files: &FileStore) -> std::io::Result<usize> {
    let mut removed = 0;
    for (name, path) in files.entries()? {
        let (id, staged) = match name.strip_suffix(".staged") {
            Some(id) => (id, true),
            None => (name.as_str(), false),
        };
        let status = store::get(pool, id)
            .await
            .map_err(std::io::Error::other)?
            .map(|image| image.status);
        let held = match status {
            Some(Status::Active | Status::Deactivated) => !staged,
            Some(Status::Uploading) => staged,
            _ => false,
        };
        if !held {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl Images {
    /// Opens the image service; uploads a crash interrupted are cleaned up and their images
    /// marked `killed`.
    pub async fn open(pool: Pool, config: ImageConfig, data_dir: &Path) -> std::io::Result<Self> {
        let (files, interrupted) = FileStore::open(data_dir.join("images"))?;
        let killed = store::kill_interrupted(&pool, now_micros())
            .await
            .map_err(std::io::Error::other)?;
        let orphans = remove_orphan_files(&pool, &files).await?;
        if killed > 0 || !interrupted.is_empty() || orphans > 0 {
            tracing::warn!(
                killed,
                leftovers = interrupted.len(),
                orphans,
                "cleaned up image uploads interrupted by a stop"
            );
        }
        Ok(Self {
            pool,
            config,
            files,
            ledger: Arc::default(),
        })
    }
}
