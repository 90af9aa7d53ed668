//! The volume agent: makes this host's volume files match the volumes' statuses. A volume
//! `creating` gets its file, one `extending` grows, one `deleting` loses its file and then
//! its row; snapshots and backups likewise (a backup goes to the backup store, a restore
//! comes back from it). Each outcome is written only if the resource is still in the
//! status the work was for. Every step is idempotent, so a pass cut short is finished by
//! the next.

use std::sync::Arc;
use std::time::Duration;

use onestack_virt::{BackupStore, VolumeFiles};
use onestack_volume::Volumes;
use onestack_volume::model::{
    BackendReport, Backup, BackupStatus, Snapshot, SnapshotStatus, Versioned, Volume, VolumeSource,
    VolumeStatus,
};
use onestack_volume::ops::agent::Outcome;
use tokio::sync::watch;

use crate::AgentHandle;

/// Seconds between passes when nothing signals a change (work a crash left is found here).
const RESYNC: Duration = Duration::from_secs(30);

pub struct VolumeAgent {
    volumes: Arc<Volumes>,
    files: VolumeFiles,
    backups: Arc<dyn BackupStore>,
}

impl VolumeAgent {
    pub fn new(volumes: Arc<Volumes>, files: VolumeFiles, backups: Arc<dyn BackupStore>) -> Self {
        Self {
            volumes,
            files,
            backups,
        }
    }

    /// One pass over the work waiting on this host; returns how many volumes, snapshots
    /// and backups it finished. Snapshots first: a volume made from one needs its file.
    pub async fn pass(&self) -> Result<usize, onestack_volume::error::Error> {
        let mut finished = 0;
        for work in self.volumes.pending_snapshot_work().await? {
            let outcome = self.snapshot_work(&work.doc).await;
            if let Outcome::Failed(reason) = &outcome {
                tracing::warn!(snapshot = %work.doc.id, status = %work.doc.status, %reason, "snapshot work failed");
            }
            if self.volumes.finish_snapshot(&work, outcome).await? {
                finished += 1;
            }
        }
        for work in self.volumes.pending_backup_work().await? {
            let outcome = self.backup_work(&work.doc).await;
            if let Outcome::Failed(reason) = &outcome {
                tracing::warn!(backup = %work.doc.id, status = %work.doc.status, %reason, "backup work failed");
            }
            if self.volumes.finish_backup(&work, outcome).await? {
                finished += 1;
            }
        }
        for work in self.volumes.pending_work().await? {
            let outcome = self.carry_out(&work).await;
            if let Outcome::Failed(reason) = &outcome {
                tracing::warn!(volume = %work.doc.id, status = %work.doc.status, %reason, "volume work failed");
            }
            if self.volumes.finish(&work, outcome).await? {
                finished += 1;
            }
        }
        Ok(finished)
    }

    async fn snapshot_work(&self, snapshot: &Snapshot) -> Outcome {
        let done = match snapshot.status {
            SnapshotStatus::Creating => {
                self.files
                    .take_snapshot(&snapshot.volume_id, &snapshot.id)
                    .await
            }
            SnapshotStatus::Deleting => {
                // The volumes made from it read from its file until they stand alone.
                let dependents = match self.volumes.volumes_on_snapshot(&snapshot.id).await {
                    Ok(volumes) => volumes,
                    Err(e) => return Outcome::Failed(e.to_string()),
                };
                for volume in dependents {
                    if let Err(e) = self.files.flatten(&volume.id).await {
                        return Outcome::Failed(e.to_string());
                    }
                }
                return match self.files.remove_snapshot(&snapshot.id).await {
                    Ok(()) => Outcome::Removed,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
            }
            _ => return Outcome::Done,
        };
        settled(done)
    }

    async fn backup_work(&self, backup: &Backup) -> Outcome {
        let done = match backup.status {
            BackupStatus::Creating => {
                if let Some(copy) = &backup.temp_snapshot_id {
                    match self.volumes.snapshot_ready(copy).await {
                        Ok(true) => {}
                        Ok(false) => {
                            return Outcome::Failed(
                                "the server's host could not copy the in-use volume".into(),
                            );
                        }
                        Err(e) => return Outcome::Failed(e.to_string()),
                    }
                }
                let source = match backup.source_snapshot() {
                    Some(snapshot) => self.files.snapshot_path(snapshot),
                    None => self.files.path(&backup.volume_id),
                };
                match source {
                    Ok(source) => {
                        self.backups
                            .store(&backup.id, &source, backup.parent_id.as_deref())
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            BackupStatus::Restoring => {
                let Some(target) = &backup.restore_to else {
                    return Outcome::Failed("a restore without a volume to write".into());
                };
                let size = match self.volumes.volume_record(target).await {
                    Ok(Some(volume)) => volume.size,
                    Ok(None) => return Outcome::Failed(format!("volume {target} is gone")),
                    Err(e) => return Outcome::Failed(e.to_string()),
                };
                match self.files.path(target) {
                    Ok(dest) => self.backups.restore(&backup.id, &dest, size).await,
                    Err(e) => Err(e),
                }
            }
            BackupStatus::Deleting => {
                return match self.backups.remove(&backup.id).await {
                    Ok(()) => Outcome::Removed,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
            }
            _ => return Outcome::Done,
        };
        settled(done)
    }

    async fn carry_out(&self, work: &Versioned<Volume>) -> Outcome {
        let volume = &work.doc;
        let done = match (volume.status, &volume.source) {
            (VolumeStatus::Creating, VolumeSource::Blank) => {
                self.files.create_blank(&volume.id, volume.size).await
            }
            (VolumeStatus::Creating, VolumeSource::Image { image_id, .. }) => {
                let (file, disk_format) = match self.volumes.image_file(image_id).await {
                    Ok(found) => found,
                    Err(e) => return Outcome::Failed(e.to_string()),
                };
                self.files
                    .create_from_image(&volume.id, &file, &disk_format, volume.size)
                    .await
            }
            (VolumeStatus::Creating, VolumeSource::Snapshot { snapshot_id }) => {
                self.files
                    .create_from_snapshot(&volume.id, snapshot_id, volume.size)
                    .await
            }
            (VolumeStatus::Creating, VolumeSource::Volume { volume_id }) => {
                self.files
                    .clone_volume(&volume.id, volume_id, volume.size)
                    .await
            }
            (VolumeStatus::Extending, _) => {
                let size = volume.extend_to.unwrap_or(volume.size);
                self.files.extend(&volume.id, size).await
            }
            (VolumeStatus::Uploading, _) => return self.upload(volume).await,
            (VolumeStatus::Deleting, _) => {
                return match self.files.remove(&volume.id).await {
                    Ok(()) => Outcome::Removed,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
            }
            _ => return Outcome::Done,
        };
        settled(done)
    }
}

impl VolumeAgent {
    /// Tells the block storage service that this agent runs and how much space its
    /// backend's filesystem has (`df`'s size and available space).
    fn report(&self) {
        match self.files.capacity() {
            Ok((total_bytes, free_bytes)) => self.volumes.report_backend(BackendReport {
                total_bytes,
                free_bytes,
                at: onestack_db::now_micros(),
            }),
            Err(error) => tracing::warn!(%error, "cannot measure the volume backend's space"),
        }
    }

    /// Converts the volume's data to the image's format and fills the image with it; an
    /// image that gets no data is removed.
    async fn upload(&self, volume: &Volume) -> Outcome {
        let Some(upload) = &volume.upload else {
            return Outcome::Failed("an upload without an image to fill".into());
        };
        let filled = match self
            .files
            .export(&volume.id, &upload.disk_format, &upload.image_id)
            .await
        {
            Ok(file) => self
                .volumes
                .fill_image(&upload.image_id, &file)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = self.files.remove_export(&upload.image_id).await {
            tracing::warn!(volume = %volume.id, %error, "cannot remove an upload's file");
        }
        match filled {
            Ok(()) => Outcome::Done,
            Err(reason) => {
                self.volumes.discard_image(&upload.image_id).await;
                Outcome::Failed(reason)
            }
        }
    }
}

/// The outcome of work that leaves the resource in place.
fn settled(done: Result<(), onestack_virt::Error>) -> Outcome {
    match done {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Starts the volume agent: a pass at once, then one after every change and every 30 s.
pub fn spawn(
    volumes: Arc<Volumes>,
    files: VolumeFiles,
    backups: Arc<dyn BackupStore>,
) -> AgentHandle {
    let (stop, mut stopped) = watch::channel(false);
    let changes = volumes.changes();
    let agent = VolumeAgent::new(volumes, files, backups);
    let task = tokio::spawn(async move {
        loop {
            match agent.pass().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(volumes = n, "volume work done"),
                Err(error) => tracing::warn!(%error, "volume pass failed; retrying"),
            }
            agent.report();
            tokio::select! {
                _ = changes.notified() => {}
                _ = tokio::time::sleep(RESYNC) => {}
                _ = stopped.changed() => break,
            }
        }
    });
    AgentHandle { stop, task }
}
