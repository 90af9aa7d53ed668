//! What other services (compute, the host agent) do to images in process: a snapshot's
//! queued image filled from a local file, an image's data opened for a host.

use std::path::{Path, PathBuf};

use onestack_db::now_micros;

use super::data::{inspect, require_formats};
use crate::error::{Error, Result};
use crate::model::{Image, Status};
use crate::service::Images;
use crate::store;

impl Images {
    /// The image, whoever asks: in process there is no caller to check.
    async fn get(&self, id: &str) -> Result<Image> {
        store::get(&self.pool, id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_owned()))
    }

    /// Announces the image of a compute snapshot, before its data: private to `owner`, qcow2,
    /// queued. Returns its id.
    pub async fn create_snapshot(&self, snapshot: Snapshot) -> Result<String> {
        self.announce(Announced {
            name: snapshot.name,
            owner: snapshot.owner,
            disk_format: "qcow2".into(),
            container_format: "bare".into(),
            visibility: "private".into(),
            protected: false,
            min_disk: snapshot.min_disk,
            properties: snapshot.properties,
        })
        .await
    }

    /// Records an active image without data, for Nova's snapshot of a server that boots
    /// from a volume: the image is only a bucket of properties (the block device mapping of
    /// the volumes' snapshots), raw and empty as Nova makes it. Returns its id.
    pub async fn create_without_data(&self, snapshot: Snapshot) -> Result<String> {
        let id = self
            .announce(Announced {
                name: snapshot.name,
                owner: snapshot.owner,
                disk_format: "raw".into(),
                container_format: "bare".into(),
                visibility: "private".into(),
                protected: false,
                min_disk: snapshot.min_disk,
                properties: snapshot.properties,
            })
            .await?;
        let image = self.get(&id).await?;
        let image = self.begin(image, &[Status::Queued], Status::Saving).await?;
        let nothing = futures_util::stream::empty::<std::io::Result<bytes::Bytes>>();
        let received = self.receive(&image, nothing, Some(0)).await?;
        self.activate(image, received, None).await?;
        Ok(id)
    }

    /// Records a queued image that another service fills later (a server's snapshot, a
    /// volume's upload); returns its id.
    pub async fn announce(&self, announced: Announced) -> Result<String> {
        let now = now_micros();
        let image = Image {
            id: onestack_db::ids::uuid(),
            name: Some(announced.name),
            status: Status::Queued,
            visibility: announced.visibility,
            protected: announced.protected,
            os_hidden: false,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner: announced.owner,
            size: None,
            virtual_size: None,
            min_disk: announced.min_disk,
            min_ram: 0,
            container_format: Some(announced.container_format),
            disk_format: Some(announced.disk_format),
            properties: announced.properties,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        Ok(self.create_queued(image).await?.id)
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
        let file = tokio::fs::File::open(source)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        self.upload_from_stream(id, stream).await
    }

    /// Fills a queued image with a stream's data (a snapshot a joined host sends).
    pub async fn upload_from_stream<S, E>(&self, id: &str, stream: S) -> Result<Image>
    where
        S: futures_util::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let image = self.get(id).await?;
        require_formats(&image)?;
        let image = self.begin(image, &[Status::Queued], Status::Saving).await?;
        match self.receive(&image, stream, None).await {
            Ok(written) => self.activate(image, written, None).await,
            Err(error) => {
                // Queued again, as a failed upload leaves it, so that it can be discarded
                // or filled again rather than stay `saving`.
                store::transition(
                    &self.pool,
                    id,
                    &[Status::Saving],
                    Status::Queued,
                    now_micros(),
                )
                .await?;
                Err(error)
            }
        }
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
        let virtual_size = inspect(path.clone(), None, disk_format).await?;
        Ok((image, path, virtual_size))
    }

    /// The path of an active image's data, for reading in process.
    pub async fn open_data(&self, id: &str) -> Result<(Image, PathBuf)> {
        let image = self.get(id).await?;
        if image.status != Status::Active {
            return Err(Error::Conflict(format!(
                "Image {id} is {}, not active.",
                image.status.as_str()
            )));
        }
        Ok((image, self.files.path(id)))
    }
}

/// An image another service announces before it has the data.
#[derive(Debug)]
pub struct Announced {
    pub name: String,
    pub owner: String,
    pub disk_format: String,
    pub container_format: String,
    /// `private`, `shared`, `community` or `public` (the caller's policy decides first).
    pub visibility: String,
    pub protected: bool,
    /// GiB.
    pub min_disk: i64,
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// What compute says of a snapshot it is about to take.
#[derive(Debug)]
pub struct Snapshot {
    pub name: String,
    /// The project of the server.
    pub owner: String,
    /// The server's flavor's disk, in GiB.
    pub min_disk: i64,
    /// Nova's snapshot properties (`image_type`, `instance_uuid`, …) and the user's metadata.
    pub properties: serde_json::Map<String, serde_json::Value>,
}
