//! The image service's state, its errors, and the data path shared by upload, import and
//! the in-process interface other services use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use http::StatusCode;
use onestack_api::{ApiError, AuthContext};
use onestack_db::{Pool, now_micros};

use crate::config::ImageConfig;
use crate::files::{FileStore, StoreError, Written};
use crate::format::{self, FormatError};
use crate::model::{Image, Status};
use crate::policy::{self, Action};
use crate::quota::{Ledger, Reservation};
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No image found with ID {0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let message = error.to_string();
        match error {
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Forbidden(_) => ApiError::forbidden(message),
            Error::Conflict(_) => ApiError::conflict(message),
            Error::BadRequest(_) => ApiError::bad_request(message),
            Error::TooLarge(_) => ApiError::too_large(message),
            Error::UnsupportedMediaType(_) => {
                ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
            }
            Error::Api(api) => api,
            Error::Db(db) => ApiError::internal(db),
            Error::Internal(m) => ApiError::internal(m),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::TooLarge(_) | StoreError::Quota(_) => Error::TooLarge(e.to_string()),
            StoreError::Truncated { .. } | StoreError::Client(_) => {
                Error::BadRequest(e.to_string())
            }
            StoreError::Io(io) => Error::Internal(io.to_string()),
        }
    }
}

/// Glance's 409 for an id in use, or used before: deleted ids are never given out again.
pub fn id_taken(id: &str) -> Error {
    Error::Conflict(format!("Image ID {id} already exists!"))
}

/// Data goes only into an image whose formats say what it is (Glance's rule, with its
/// words): the inspection needs the disk format, and compute the container format.
pub fn require_formats(image: &Image) -> Result<()> {
    let missing: Vec<&str> = [
        ("disk_format", &image.disk_format),
        ("container_format", &image.container_format),
    ]
    .into_iter()
    .filter(|(_, value)| value.as_deref().is_none_or(str::is_empty))
    .map(|(name, _)| name)
    .collect();
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(Error::BadRequest(format!(
            "Property {one} must be set prior to saving data."
        ))),
        _ => Err(Error::BadRequest(format!(
            "Properties {} must be set prior to saving data.",
            missing.join(", ")
        ))),
    }
}

pub struct Images {
    pub pool: Pool,
    pub config: ImageConfig,
    pub files: FileStore,
    /// The storage quota of transfers under way.
    pub ledger: Arc<Ledger>,
}

/// Data received into the temporary area, with its hold on the owner's quota (released if
/// this is dropped, settled when the data is kept).
#[derive(Debug)]
pub struct Received {
    pub written: Written,
    reservation: Reservation,
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

    /// The per-project storage limit, `None` when unlimited.
    fn quota_limit(&self) -> Option<u64> {
        (self.config.quota_image_size_total > 0).then_some(self.config.quota_image_size_total)
    }

    fn quota_exceeded(&self, owner: &str) -> Error {
        Error::TooLarge(format!(
            "The project {owner} has used its image storage quota of {} bytes.",
            self.config.quota_image_size_total
        ))
    }

    /// Streams data into the temporary area within the image size cap, each chunk taken from
    /// a reservation on the owner's storage quota (so uploads side by side share it).
    pub async fn receive<S, E>(
        &self,
        image: &Image,
        body: S,
        expected: Option<u64>,
    ) -> Result<Received>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (limit, settled) = match self.quota_limit() {
            None => (u64::MAX, 0),
            Some(limit) => {
                let (used, _) = store::usage(&self.pool, &image.owner).await?;
                (limit, u64::try_from(used).unwrap_or(0))
            }
        };
        // Staged data being imported already counts; its copy replaces it.
        let credit = image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
        if settled.saturating_sub(credit) >= limit {
            return Err(self.quota_exceeded(&image.owner));
        }
        let mut reservation = self.ledger.reserve(&image.owner, limit, settled, credit);
        let written = self
            .files
            .receive(
                &image.id,
                body,
                expected,
                self.config.image_size_cap,
                &mut reservation,
            )
            .await?;
        Ok(Received {
            written,
            reservation,
        })
    }

    /// Writes an image whose data has arrived (size set), within the quota as the database
    /// has it now (under the write lock); the reservation becomes settled bytes. If the
    /// image went away: 404; over the quota: 413 and the image is queued again, as Glance
    /// restores it. `data` is the file to remove in both cases.
    async fn save_data(
        &self,
        image: &Image,
        reservation: Reservation,
        data: &Path,
        from: Status,
    ) -> Result<()> {
        match store::save_data(&self.pool, image, self.quota_limit()).await? {
            store::Saved::Done => {
                reservation.settle();
                Ok(())
            }
            store::Saved::Gone => {
                self.files.remove(data).await;
                Err(Error::NotFound(image.id.clone()))
            }
            store::Saved::OverQuota => {
                self.files.remove(data).await;
                store::transition(&self.pool, &image.id, &[from], Status::Queued, now_micros())
                    .await?;
                Err(self.quota_exceeded(&image.owner))
            }
        }
    }

    /// Checks received data against the image's disk format and what the client declared,
    /// then makes the image active with its hashes and sizes. On any failure the data is
    /// discarded and the image is `killed` (`queued` when it would pass the quota).
    pub async fn activate(
        &self,
        mut image: Image,
        received: Received,
        declared_md5: Option<String>,
    ) -> Result<Image> {
        let Received {
            written,
            reservation,
        } = received;
        let from = image.status;
        let result = self.check(&image, &written, declared_md5).await;
        let virtual_size = match result {
            Ok(v) => v,
            Err(e) => {
                self.files.remove(&written.temp).await;
                store::transition(
                    &self.pool,
                    &image.id,
                    &[Status::Saving, Status::Importing],
                    Status::Killed,
                    now_micros(),
                )
                .await?;
                return Err(e);
            }
        };
        let destination = self.files.path(&image.id);
        self.files
            .commit(&written.temp, &destination)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        image.status = Status::Active;
        image.size =
            Some(i64::try_from(written.size).map_err(|_| self.quota_exceeded(&image.owner))?);
        image.virtual_size = virtual_size;
        image.checksum = Some(written.md5);
        image.os_hash_algo = Some("sha512".into());
        image.os_hash_value = Some(written.sha512);
        image.updated_at = now_micros();
        self.save_data(&image, reservation, &destination, from)
            .await?;
        Ok(image)
    }

    /// Keeps staged data (`PUT /stage`) for a later glance-direct import: the image records
    /// its size, which counts against the quota as Glance counts staged data.
    pub async fn keep_staged(&self, mut image: Image, received: Received) -> Result<()> {
        let Received {
            written,
            reservation,
        } = received;
        let staged = self.files.staging_path(&image.id);
        self.files
            .commit(&written.temp, &staged)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        image.size =
            Some(i64::try_from(written.size).map_err(|_| self.quota_exceeded(&image.owner))?);
        image.updated_at = now_micros();
        self.save_data(&image, reservation, &staged, Status::Uploading)
            .await
    }

    async fn check(
        &self,
        image: &Image,
        written: &Written,
        declared_md5: Option<String>,
    ) -> Result<Option<i64>> {
        if let Some(md5) = declared_md5
            && !md5.eq_ignore_ascii_case(&written.md5)
        {
            return Err(Error::BadRequest(format!(
                "The data's md5 {} does not match the declared {md5}.",
                written.md5
            )));
        }
        require_formats(image)?;
        let disk_format = image.disk_format.clone().unwrap_or_default();
        let path = written.temp.clone();
        let size = written.size;
        let inspection =
            tokio::task::spawn_blocking(move || -> std::result::Result<_, FormatError> {
                let mut file =
                    std::fs::File::open(&path).map_err(|_| FormatError::Damaged("image"))?;
                format::inspect(&mut file, size, &disk_format)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        match inspection {
            Ok(i) => Ok(Some(i.virtual_size)),
            Err(e) => Err(Error::BadRequest(format!("Image rejected: {e}."))),
        }
    }

    /// Records a new image within the owner's image count quota (`quota_image_count_total`,
    /// 0 for none), which a compute snapshot counts against as an upload does.
    pub async fn insert(&self, image: &Image) -> Result<()> {
        let limit = self.config.quota_image_count_total;
        match store::insert(&self.pool, image, (limit > 0).then_some(limit)).await? {
            store::Inserted::Done => Ok(()),
            store::Inserted::IdTaken => Err(id_taken(&image.id)),
            store::Inserted::OverQuota => Err(Error::TooLarge(format!(
                "The project {} has reached its quota of {limit} images.",
                image.owner
            ))),
        }
    }

    /// Records a queued image (a compute snapshot announces its image before the data).
    pub async fn create_queued(&self, image: Image) -> Result<Image> {
        let image = Image {
            status: Status::Queued,
            ..image
        };
        self.insert(&image).await?;
        Ok(image)
    }

    /// Fills a queued image from a local file, copying it in, and activates it.
    pub async fn upload_from_file(&self, id: &str, source: &Path) -> Result<Image> {
        let image = store::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        require_formats(&image)?;
        let image = self.begin(image, &[Status::Queued], Status::Saving).await?;
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        let written = self.receive(&image, stream, None).await?;
        self.activate(image, written, None).await
    }

    /// Removes an image that never received its data (a compute snapshot that failed).
    pub async fn discard(&self, id: &str) -> Result<()> {
        let unfinished = store::get(&self.pool, id)
            .await?
            .is_some_and(|i| matches!(i.status, Status::Queued | Status::Saving | Status::Killed));
        if !unfinished {
            return Ok(());
        }
        store::delete(&self.pool, id, now_micros()).await?;
        self.files.remove(&self.files.path(id)).await;
        Ok(())
    }

    /// Creates an active image from a local file, copying it in.
    pub async fn create_from_file(&self, image: Image, source: &Path) -> Result<Image> {
        let image = self.create_queued(image).await?;
        self.upload_from_file(&image.id, source).await
    }

    /// An active image's data checked again as at upload (its header against its disk
    /// format, in case it was stored before a rule existed), for a host about to hand it to
    /// `qemu-img`, which must never be shown a file that names other files. Returns the
    /// image, the path of its data and its virtual size.
    pub async fn open_checked(&self, id: &str) -> Result<(Image, PathBuf, i64)> {
        let (image, path) = self.open_data(id).await?;
        require_formats(&image)?;
        let disk_format = image.disk_format.clone().unwrap_or_default();
        let file = path.clone();
        let inspection =
            tokio::task::spawn_blocking(move || -> std::result::Result<_, FormatError> {
                let mut data =
                    std::fs::File::open(&file).map_err(|_| FormatError::Damaged("image"))?;
                let size = data
                    .metadata()
                    .map_err(|_| FormatError::Damaged("image"))?
                    .len();
                format::inspect(&mut data, size, &disk_format)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::BadRequest(format!("Image rejected: {e}.")))?;
        Ok((image, path, inspection.virtual_size))
    }

    /// The path of an active image's data, for reading in process.
    pub async fn open_data(&self, id: &str) -> Result<(Image, PathBuf)> {
        let image = store::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_owned()))?;
        if image.status != Status::Active {
            return Err(Error::Conflict(format!(
                "Image {id} is {}, not active.",
                image.status.as_str()
            )));
        }
        Ok((image, self.files.path(id)))
    }
}
