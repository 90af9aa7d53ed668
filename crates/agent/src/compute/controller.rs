//! What the compute agent asks of the cloud: its host's servers, each task's outcome, the
//! images it boots and the config drives it writes. On a controller the agent calls the
//! services in process ([`InProcess`]); on a joined host it calls the controller over the
//! agent protocol (`control::remote`), which only lets a host touch its own servers.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use onestack_compute::Computes;
use onestack_compute::metadata;
use onestack_compute::model::Server;
use onestack_compute::ops::live_migrate::LiveReport;
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// A server and the revision it was read at (its outcome is written only at that revision).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerRecord {
    pub server: Server,
    pub revision: i64,
}

/// What the agent needs to know of an image it boots, snapshots into, or rescues with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageFacts {
    pub id: String,
    pub owner: String,
    pub visibility: String,
    pub disk_format: Option<String>,
    pub checksum: Option<String>,
    pub os_hash_value: Option<String>,
    pub size: Option<i64>,
    /// Its size as a disk, read from its header by the image service.
    pub virtual_size: i64,
    /// OpenStack's AKI/ARI convention: a kernel and a ramdisk booted directly.
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    /// The image asks for a stable device layout in rescue (`hw_rescue_bus`/`_device`).
    pub stable_rescue: bool,
}

impl From<onestack_compute::Versioned<Server>> for ServerRecord {
    fn from(record: onestack_compute::Versioned<Server>) -> Self {
        Self {
            server: record.doc,
            revision: record.revision,
        }
    }
}

impl ImageFacts {
    /// An active image's facts, its header read by the image service first.
    pub(crate) async fn read(
        images: &onestack_image::Images,
        id: &str,
    ) -> onestack_image::error::Result<Self> {
        let (image, _, virtual_size) = images.open_checked(id).await?;
        Ok(Self::of(&image, virtual_size))
    }

    fn of(image: &onestack_image::model::Image, virtual_size: i64) -> Self {
        let prop = |k: &str| {
            image
                .properties
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Self {
            id: image.id.clone(),
            owner: image.owner.clone(),
            visibility: image.visibility.clone(),
            disk_format: image.disk_format.clone(),
            checksum: image.checksum.clone(),
            os_hash_value: image.os_hash_value.clone(),
            size: image.size,
            virtual_size,
            kernel_id: prop("kernel_id"),
            ramdisk_id: prop("ramdisk_id"),
            stable_rescue: onestack_compute::ops::actions::asks_stable_rescue(image),
        }
    }
}

/// The cloud as one host's compute agent sees it.
pub trait Controller: Send + Sync + 'static {
    /// This host's name (servers are placed on it, ports bound to it).
    fn host(&self) -> &str;

    /// The servers placed on this host.
    fn servers(&self) -> impl Future<Output = Result<Vec<ServerRecord>>> + Send;

    /// One of this host's servers as it is now (`None`: gone, or moved to another host).
    fn server(&self, id: &str) -> impl Future<Output = Result<Option<ServerRecord>>> + Send;

    /// Writes a task's outcome if the server is still at `revision`; `false` if it changed.
    fn finish(&self, server: Server, revision: i64) -> impl Future<Output = Result<bool>> + Send;

    /// The request id of the server's latest instance action.
    fn latest_action(&self, server_id: &str) -> impl Future<Output = Option<String>> + Send;

    /// Records an event of that action (`compute_stop_instance`, …) and its outcome.
    fn record_event(
        &self,
        server_id: &str,
        request_id: &str,
        event: &str,
        started: i64,
        ok: bool,
    ) -> impl Future<Output = ()> + Send;

    /// Removes a deleted server for good, giving back its ports and volumes.
    fn purge(&self, server: &Server) -> impl Future<Output = Result<()>> + Send;

    /// An active image's facts.
    fn image(&self, id: &str) -> impl Future<Output = Result<ImageFacts>> + Send;

    /// A file on this host holding the image's data, checked by the image service first.
    fn image_file(&self, image: &ImageFacts) -> impl Future<Output = Result<PathBuf>> + Send;

    /// Fills a snapshot's queued image with the file's data.
    fn upload_snapshot(
        &self,
        image_id: &str,
        file: &Path,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Hands a migrating server's root disk (a standalone qcow2 at `disk`) over to the
    /// controller, which then places the server on its new host.
    fn hand_over(&self, server_id: &str, disk: &Path) -> impl Future<Output = Result<()>> + Send;

    /// Puts the root disk a migrating server brings to this host at `to`.
    fn migration_disk(&self, server_id: &str, to: &Path)
    -> impl Future<Output = Result<()>> + Send;

    /// This host's step in a live migration of the server to or from it.
    fn live_migration(
        &self,
        server_id: &str,
        report: LiveReport,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes a snapshot's image that never got its data.
    fn discard_image(&self, image_id: &str) -> impl Future<Output = ()> + Send;

    /// The config drive's files for the server, with its networking as it is now.
    fn config_drive(
        &self,
        server: &Server,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<u8>>>> + Send;

    /// Compute and the block storage service in this process, for plugging volumes in:
    /// volumes are plugged only on the host that keeps their files, a controller (`None`
    /// on a joined host; the scheduler places servers with volumes elsewhere).
    fn in_process(&self) -> Option<&Computes>;
}

/// The services of this process: a controller's own compute agent.
pub struct InProcess(pub Arc<Computes>);

fn image_error(id: &str) -> impl FnOnce(onestack_image::error::Error) -> Error + '_ {
    move |e| Error::Image {
        id: id.to_owned(),
        message: e.to_string(),
    }
}

impl Controller for InProcess {
    fn host(&self) -> &str {
        &self.0.host
    }

    async fn servers(&self) -> Result<Vec<ServerRecord>> {
        let records = self.0.servers_on_host(&self.0.host).await?;
        Ok(records.into_iter().map(ServerRecord::from).collect())
    }

    async fn server(&self, id: &str) -> Result<Option<ServerRecord>> {
        let record = self.0.server_on_host(&self.0.host, id).await?;
        Ok(record.map(ServerRecord::from))
    }

    async fn finish(&self, server: Server, revision: i64) -> Result<bool> {
        Ok(self.0.finish(server, revision).await?)
    }

    async fn latest_action(&self, server_id: &str) -> Option<String> {
        self.0.latest_action(server_id).await
    }

    async fn record_event(
        &self,
        server_id: &str,
        request_id: &str,
        event: &str,
        started: i64,
        ok: bool,
    ) {
        self.0
            .record_event(&self.0.host, server_id, request_id, event, started, ok)
            .await;
    }

    async fn purge(&self, server: &Server) -> Result<()> {
        Ok(self.0.purge(server).await?)
    }

    async fn image(&self, id: &str) -> Result<ImageFacts> {
        ImageFacts::read(&self.0.images, id)
            .await
            .map_err(image_error(id))
    }

    async fn image_file(&self, image: &ImageFacts) -> Result<PathBuf> {
        let (_, path) = self
            .0
            .images
            .open_data(&image.id)
            .await
            .map_err(image_error(&image.id))?;
        Ok(path)
    }

    async fn upload_snapshot(&self, image_id: &str, file: &Path) -> Result<()> {
        self.0
            .images
            .upload_from_file(image_id, file)
            .await
            .map(drop)
            .map_err(image_error(image_id))
    }

    async fn discard_image(&self, image_id: &str) {
        let _ = self.0.images.discard(image_id).await;
    }

    async fn hand_over(&self, server_id: &str, disk: &Path) -> Result<()> {
        let kept = self.0.migration_disk(server_id);
        move_file(disk, &kept).await?;
        let handed = self.0.hand_over(&self.0.host, server_id).await;
        if handed.is_err() {
            self.0.remove_migration_disk(server_id).await;
        }
        Ok(handed?)
    }

    async fn migration_disk(&self, server_id: &str, to: &Path) -> Result<()> {
        // Linked, not moved: the disk stays for a build cut short by a restart, until the
        // move is settled.
        let kept = self.0.migration_disk(server_id);
        if tokio::fs::hard_link(&kept, to).await.is_ok() {
            return Ok(());
        }
        tokio::fs::copy(&kept, to).await.map(drop).map_err(|e| {
            Error::Other(format!(
                "cannot copy {} to {}: {e}",
                kept.display(),
                to.display()
            ))
        })
    }

    async fn live_migration(&self, server_id: &str, report: LiveReport) -> Result<()> {
        Ok(self
            .0
            .live_migration_step(&self.0.host, server_id, report)
            .await?)
    }

    async fn config_drive(&self, server: &Server) -> Result<BTreeMap<String, Vec<u8>>> {
        Ok(metadata::config_drive_files(&self.0.pool, server).await?)
    }

    fn in_process(&self) -> Option<&Computes> {
        Some(&self.0)
    }
}

/// Moves `from` to `to` (a copy where a rename cannot: another file system).
async fn move_file(from: &Path, to: &Path) -> Result<()> {
    let failed = |e: std::io::Error| {
        Error::Other(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))
    };
    if let Some(dir) = to.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    }
    if tokio::fs::rename(from, to).await.is_ok() {
        return Ok(());
    }
    tokio::fs::copy(from, to).await.map_err(failed)?;
    tokio::fs::remove_file(from).await.map_err(failed)?;
    Ok(())
}
