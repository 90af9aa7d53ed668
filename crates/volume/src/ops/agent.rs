//! What the volume agent reads and writes: the work waiting on its host, and the outcome
//! of each piece, written only if the volume is still in the state the work was for.

use onestack_db::now_micros;

use crate::error::{Error, Result};
use crate::model::{
    Backup, BackupStatus, Snapshot, SnapshotStatus, Versioned, Volume, VolumeStatus,
};
use crate::service::Volumes;
use crate::store;

/// Tries before leaving an outcome to the next pass (the work is idempotent).
const WRITE_TRIES: usize = 16;

/// How a piece of the agent's work ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file exists with the volume's size (made, or grown to `extend_to`).
    Done,
    /// The file is gone: the row goes too.
    Removed,
    Failed(String),
}

impl Volumes {
    /// The file of an image a volume is made from, and its disk format, after the image
    /// service has checked the file's header again (as it does for compute): `qemu-img`
    /// must never be the first to read a file a tenant wrote.
    pub async fn image_file(&self, image_id: &str) -> Result<(std::path::PathBuf, String)> {
        let (image, path, _) = self
            .images
            .open_checked(image_id)
            .await
            .map_err(|e| Error::Invalid(format!("image {image_id}: {e}")))?;
        Ok((path, image.disk_format.unwrap_or_default()))
    }

    /// This host's volumes whose status asks for work (creating, extending, deleting). A
    /// volume being deleted waits while snapshots of it remain (a cascade deletes them in
    /// the same pass, first), so no snapshot is ever left without its volume. An attached
    /// volume being extended is the server's host's work ([`Volumes::grown_in_guest`]).
    pub async fn pending_work(&self) -> Result<Vec<Versioned<Volume>>> {
        let mut work = Vec::new();
        for volume in store::pending(&self.pool, &self.volume_host()).await? {
            let waits = match volume.doc.status {
                VolumeStatus::Deleting => !store::snapshots_of_volume(&self.pool, &volume.doc.id)
                    .await?
                    .is_empty(),
                VolumeStatus::Extending => !volume.doc.attachments.is_empty(),
                _ => false,
            };
            if !waits {
                work.push(volume);
            }
        }
        Ok(work)
    }

    /// The server's host gave the guest an extended volume's new size, or could not: the
    /// extend ends as the agent's own would. Nothing changes unless the volume is still
    /// being extended.
    pub async fn grown_in_guest(
        &self,
        volume_id: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<()> {
        let Some(work) = store::volume(&self.pool, volume_id).await? else {
            return Ok(());
        };
        if work.doc.status != VolumeStatus::Extending {
            return Ok(());
        }
        let outcome = match outcome {
            Ok(()) => Outcome::Done,
            Err(reason) => Outcome::Failed(reason),
        };
        if self.finish(&work, outcome).await? {
            self.changed();
        }
        Ok(())
    }

    /// Records how the work on `volume` (as read) ended. Returns `false` when the volume
    /// moved on meanwhile (deleted, reset by an admin): the outcome no longer applies.
    pub async fn finish(&self, work: &Versioned<Volume>, outcome: Outcome) -> Result<bool> {
        let started = (work.doc.status, work.doc.extend_to);
        let mut current = work.clone();
        for _ in 0..WRITE_TRIES {
            // Moved on (an admin's reset, another extend): the outcome is not for this state.
            if (current.doc.status, current.doc.extend_to) != started {
                return Ok(false);
            }
            if outcome == Outcome::Removed {
                if store::delete_volume(&self.pool, &current.doc.id, current.revision).await? {
                    return Ok(true);
                }
            } else {
                let mut doc = current.doc.clone();
                apply(&mut doc, &outcome);
                if store::update_volume(&self.pool, &doc, current.revision).await? {
                    return Ok(true);
                }
            }
            match store::volume(&self.pool, &work.doc.id).await? {
                Some(fresh) => current = fresh,
                None => return Ok(false),
            }
        }
        Ok(false)
    }
}

impl Volumes {
    /// This host's snapshots whose status asks for work (creating, deleting). A snapshot of
    /// an in-use volume is its server's host's to copy ([`Volumes::copied_in_guest`]) while
    /// the volume is still attached to that server; after that the file is free again.
    pub async fn pending_snapshot_work(&self) -> Result<Vec<Versioned<Snapshot>>> {
        let mut work = Vec::new();
        for snapshot in store::pending_snapshots(&self.pool, &self.volume_host()).await? {
            let copied_elsewhere = match (&snapshot.doc.copied_by, snapshot.doc.status) {
                (Some(server), SnapshotStatus::Creating) => {
                    store::volume(&self.pool, &snapshot.doc.volume_id)
                        .await?
                        .is_some_and(|v| v.doc.attachments.iter().any(|a| &a.server_id == server))
                }
                _ => false,
            };
            if !copied_elsewhere {
                work.push(snapshot);
            }
        }
        Ok(work)
    }

    /// The server's host copied an in-use volume into the snapshot, or could not: the
    /// snapshot is `available` or in `error`. Nothing changes unless it is still being made.
    pub async fn copied_in_guest(
        &self,
        snapshot_id: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<()> {
        let Some(work) = store::snapshot(&self.pool, snapshot_id).await? else {
            return Ok(());
        };
        if work.doc.status != SnapshotStatus::Creating {
            return Ok(());
        }
        let outcome = match outcome {
            Ok(()) => Outcome::Done,
            Err(reason) => Outcome::Failed(reason),
        };
        if self.finish_snapshot(&work, outcome).await? {
            self.changed();
        }
        Ok(())
    }

    /// The volumes whose files are overlays on `snapshot`'s, which must be flattened before
    /// the snapshot's file goes.
    pub async fn volumes_on_snapshot(&self, snapshot: &str) -> Result<Vec<Volume>> {
        Ok(store::volumes_on_snapshot(&self.pool, snapshot)
            .await?
            .into_iter()
            .map(|v| v.doc)
            .collect())
    }

    /// Records how the work on `snapshot` (as read) ended; `false` when it moved on.
    pub async fn finish_snapshot(
        &self,
        work: &Versioned<Snapshot>,
        outcome: Outcome,
    ) -> Result<bool> {
        let started = work.doc.status;
        let mut current = work.clone();
        for _ in 0..WRITE_TRIES {
            if current.doc.status != started {
                return Ok(false);
            }
            let written = if outcome == Outcome::Removed {
                store::delete_snapshot(&self.pool, &current.doc.id, current.revision).await?
            } else {
                let mut doc = current.doc.clone();
                doc.updated_at = Some(now_micros());
                doc.status = match (doc.status, &outcome) {
                    (SnapshotStatus::Deleting, _) => SnapshotStatus::ErrorDeleting,
                    (_, Outcome::Failed(_)) => SnapshotStatus::Error,
                    _ => SnapshotStatus::Available,
                };
                store::update_snapshot(&self.pool, &doc, current.revision).await?
            };
            if written {
                return Ok(true);
            }
            match store::snapshot(&self.pool, &work.doc.id).await? {
                Some(fresh) => current = fresh,
                None => return Ok(false),
            }
        }
        Ok(false)
    }
}

impl Volumes {
    /// This host's backups whose status asks for work (creating, restoring, deleting),
    /// but not a forced one whose volume its server's host is still copying.
    pub async fn pending_backup_work(&self) -> Result<Vec<Versioned<Backup>>> {
        let mut ready = Vec::new();
        for work in store::pending_backups(&self.pool, &self.volume_host()).await? {
            if work.doc.status == BackupStatus::Creating
                && let Some(copy) = &work.doc.temp_snapshot_id
                && store::snapshot(&self.pool, copy)
                    .await?
                    .is_some_and(|s| s.doc.status == SnapshotStatus::Creating)
            {
                continue;
            }
            ready.push(work);
        }
        Ok(ready)
    }

    /// Whether the snapshot a backup reads has its data (an in-use volume's copy can fail).
    pub async fn snapshot_ready(&self, id: &str) -> Result<bool> {
        Ok(store::snapshot(&self.pool, id)
            .await?
            .is_some_and(|s| s.doc.status == SnapshotStatus::Available))
    }

    /// A volume as it is now, whoever owns it.
    pub async fn volume_record(&self, id: &str) -> Result<Option<Volume>> {
        Ok(store::volume(&self.pool, id).await?.map(|v| v.doc))
    }

    /// Records how the work on `backup` (as read) ended, and moves on the volume the work
    /// read (`backing-up`) or wrote (`restoring-backup`), in one write transaction.
    /// `false` when the backup moved on meanwhile.
    pub async fn finish_backup(&self, work: &Versioned<Backup>, outcome: Outcome) -> Result<bool> {
        let mut tx = store::begin_write(&self.pool).await?;
        let Some(current) = store::backup(&mut *tx, &work.doc.id).await? else {
            return Ok(false);
        };
        let started = work.doc.status;
        if current.doc.status != started {
            return Ok(false);
        }
        let failed = match &outcome {
            Outcome::Failed(reason) => Some(reason.clone()),
            _ => None,
        };
        let volume = match started {
            BackupStatus::Creating => Some((
                current.doc.volume_id.clone(),
                VolumeStatus::BackingUp,
                VolumeStatus::Available,
            )),
            BackupStatus::Restoring => current.doc.restore_to.clone().map(|id| {
                let next = if failed.is_some() {
                    VolumeStatus::ErrorRestoring
                } else {
                    VolumeStatus::Available
                };
                (id, VolumeStatus::RestoringBackup, next)
            }),
            _ => None,
        };
        if let Some((id, from, to)) = volume
            && let Some(Versioned { mut doc, revision }) = store::volume(&mut *tx, &id).await?
            && doc.status == from
        {
            doc.status = to;
            doc.updated_at = Some(now_micros());
            if !store::update_volume(&mut *tx, &doc, revision).await? {
                return Err(Error::Conflict(format!(
                    "Volume {id} changed while backup {} finished; retried on the next pass.",
                    work.doc.id
                )));
            }
        }
        let mut copy_released = false;
        if started == BackupStatus::Creating
            && let Some(copy) = &current.doc.temp_snapshot_id
            && let Some(Versioned { mut doc, revision }) = store::snapshot(&mut *tx, copy).await?
            && matches!(
                doc.status,
                SnapshotStatus::Available | SnapshotStatus::Error
            )
        {
            // Its copy of the in-use volume has served: the agent removes it next.
            doc.status = SnapshotStatus::Deleting;
            doc.updated_at = Some(now_micros());
            copy_released = store::update_snapshot(&mut *tx, &doc, revision).await?;
        }
        let written = if outcome == Outcome::Removed {
            store::delete_backup(&mut *tx, &current.doc.id, current.revision).await?
        } else {
            let mut doc = current.doc.clone();
            doc.updated_at = Some(now_micros());
            doc.status = match (started, &failed) {
                (BackupStatus::Deleting, _) => BackupStatus::ErrorDeleting,
                (BackupStatus::Creating, Some(_)) => BackupStatus::Error,
                // A failed restore leaves the backup as it was: usable again.
                _ => BackupStatus::Available,
            };
            doc.restore_to = None;
            doc.fail_reason = failed;
            store::update_backup(&mut *tx, &doc, current.revision).await?
        };
        if written {
            tx.commit().await?;
            if copy_released {
                // Work for the next pass, which nothing else would wake.
                self.changed();
            }
        }
        Ok(written)
    }
}

fn apply(volume: &mut Volume, outcome: &Outcome) {
    volume.updated_at = Some(now_micros());
    let failed = matches!(outcome, Outcome::Failed(_));
    volume.status = match (volume.status, failed) {
        // Whether the image got the data or not, the volume's own data is as it was.
        (VolumeStatus::Uploading, _) => {
            volume.upload = None;
            VolumeStatus::Available
        }
        // An attached volume is in use again.
        (VolumeStatus::Extending, false) if !volume.attachments.is_empty() => {
            volume.size = volume.extend_to.take().unwrap_or(volume.size);
            VolumeStatus::InUse
        }
        (VolumeStatus::Extending, false) => {
            volume.size = volume.extend_to.take().unwrap_or(volume.size);
            VolumeStatus::Available
        }
        (VolumeStatus::Extending, true) => {
            volume.extend_to = None;
            VolumeStatus::ErrorExtending
        }
        (VolumeStatus::Deleting, _) => VolumeStatus::ErrorDeleting,
        (_, false) => VolumeStatus::Available,
        (_, true) => VolumeStatus::Error,
    };
}
