//! The data path upload, import and the in-process interface share: data streamed into the
//! temporary area within the storage quota, checked against its disk format, and kept.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::Stream;
use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::files::Written;
use crate::format::{self, FormatError};
use crate::model::{Image, Status};
use crate::quota::Reservation;
use crate::service::Images;
use crate::store;

/// Data received into the temporary area, with its hold on the owner's quota (released if
/// this is dropped, settled when the data is kept).
#[derive(Debug)]
pub struct Received {
    pub written: Written,
    reservation: Reservation,
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

/// Checks the data at `path` against `disk_format` (on a blocking thread: it reads the
/// file); returns its virtual size. `size` is the data's length, read from the file if
/// `None`.
pub(crate) async fn inspect(path: PathBuf, size: Option<u64>, disk_format: String) -> Result<i64> {
    let inspection = tokio::task::spawn_blocking(move || -> Result<_, FormatError> {
        let mut file = std::fs::File::open(&path).map_err(|_| FormatError::Damaged("image"))?;
        let size = match size {
            Some(size) => size,
            None => file
                .metadata()
                .map_err(|_| FormatError::Damaged("image"))?
                .len(),
        };
        format::inspect(&mut file, size, &disk_format)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?;
    inspection
        .map(|i| i.virtual_size)
        .map_err(|e| Error::BadRequest(format!("Image rejected: {e}.")))
}

impl Images {
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

    /// The received data's size as the database records it; one past `i64::MAX` is over any
    /// quota.
    fn recorded_size(&self, image: &Image, written: &Written) -> Result<i64> {
        i64::try_from(written.size).map_err(|_| self.quota_exceeded(&image.owner))
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
        image.size = Some(self.recorded_size(&image, &written)?);
        image.virtual_size = Some(virtual_size);
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
        image.size = Some(self.recorded_size(&image, &written)?);
        image.updated_at = now_micros();
        self.save_data(&image, reservation, &staged, Status::Uploading)
            .await
    }

    /// The data's md5 against the declared one, then its content against its disk format;
    /// returns its virtual size.
    async fn check(
        &self,
        image: &Image,
        written: &Written,
        declared_md5: Option<String>,
    ) -> Result<i64> {
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
        inspect(written.temp.clone(), Some(written.size), disk_format).await
    }
}
