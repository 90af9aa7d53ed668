//! Backups: taken of an available volume, of one of its snapshots, or (forced) of an
//! in-use one through a snapshot its server's host copies under the guest, into
//! `creating` for the agent, which hands the data to the backup store, whole or (incremental) as the
//! differences from the volume's latest backup; restored into a new volume or over an
//! available one; deleted when no incremental backup depends on them.

use onestack_db::now_micros;

use super::backup_input::{BackupAction, BackupUpdate, NewBackup, Restore, RestoreRequest};
use super::snapshots::{copying_server, snapshot_not_found};
use super::volumes::owned_volume;
use crate::error::{Error, Result};
use crate::model::{
    Backup, BackupStatus, Snapshot, SnapshotStatus, Versioned, Volume, VolumeSource, VolumeStatus,
};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store;

/// Tries of a compare-and-set change before giving up on a backup written that often.
const WRITE_TRIES: usize = 16;

/// Where Cinder's file and object backup drivers say backups are kept.
const DEFAULT_CONTAINER: &str = "volumebackups";

pub fn backup_not_found(id: &str) -> Error {
    Error::NotFound(format!("Backup {id} could not be found."))
}

impl Volumes {
    pub(crate) async fn find_backup(&self, caller: &Caller, id: &str) -> Result<Versioned<Backup>> {
        match store::backup(&self.pool, id).await? {
            Some(b) if caller.owns(&b.doc.project_id) => Ok(b),
            _ => Err(backup_not_found(id)),
        }
    }

    pub async fn get_backup(&self, caller: &Caller, id: &str) -> Result<Backup> {
        Ok(self.find_backup(caller, id).await?.doc)
    }

    pub async fn list_backups(&self, caller: &Caller, all_projects: bool) -> Result<Vec<Backup>> {
        let project = (!(caller.admin && all_projects)).then_some(caller.project_id.as_str());
        store::backups(&self.pool, project).await
    }

    /// Whether incremental backups depend on `id` (it cannot go before them).
    pub async fn has_dependents(&self, id: &str) -> Result<bool> {
        Ok(!store::children_of_backup(&self.pool, id).await?.is_empty())
    }

    pub async fn create_backup(&self, caller: &Caller, new: NewBackup) -> Result<Backup> {
        caller.require_writer("backup:create")?;
        // One write transaction: the volume is marked `backing-up` with the backup made, so
        // nothing (a delete, an attach) comes between.
        let mut tx = store::begin_write(&self.pool).await?;
        let Versioned {
            doc: mut volume,
            revision,
        } = owned_volume(&mut *tx, caller, &new.volume_id).await?;
        let source = backup_source(&volume, new.force, new.snapshot_id.is_some())?;
        let mut data_timestamp = now_micros();
        if let Some(snapshot_id) = &new.snapshot_id {
            let snapshot = match store::snapshot(&mut *tx, snapshot_id).await? {
                Some(s) if s.doc.volume_id == volume.id && caller.owns(&s.doc.project_id) => s.doc,
                _ => return Err(snapshot_not_found(snapshot_id)),
            };
            if snapshot.status != SnapshotStatus::Available {
                return Err(Error::Invalid(format!(
                    "Invalid snapshot: Snapshot {snapshot_id} status must be available, currently {}.",
                    snapshot.status
                )));
            }
            data_timestamp = snapshot.created_at;
        }
        let parent_id = if new.incremental {
            // The project's own: a volume given away keeps its backups with the giver.
            let parent = store::backups_of_volume(&mut *tx, &volume.id)
                .await?
                .into_iter()
                .rfind(|b| b.status == BackupStatus::Available && b.project_id == volume.project_id)
                .ok_or_else(|| {
                    Error::Invalid(
                        "Invalid backup: No backups available to do an incremental backup.".into(),
                    )
                })?;
            Some(parent.id)
        } else {
            None
        };
        self.check_backup_quota(&mut tx, &volume.project_id, volume.size)
            .await?;
        let now = now_micros();
        let temp_snapshot = match &source {
            BackupSource::LiveCopy(server) => {
                let snapshot = temp_snapshot(caller, &volume, server, now);
                store::insert_snapshot(&mut tx, &snapshot).await?;
                Some(snapshot)
            }
            _ => None,
        };
        let backup = Backup {
            id: onestack_db::ids::uuid(),
            project_id: volume.project_id.clone(),
            user_id: caller.user_id.clone(),
            volume_id: volume.id.clone(),
            snapshot_id: new.snapshot_id,
            temp_snapshot_id: temp_snapshot.as_ref().map(|t| t.id.clone()),
            name: new.name,
            description: new.description,
            size: volume.size,
            status: BackupStatus::Creating,
            parent_id,
            container: new.container.unwrap_or_else(|| DEFAULT_CONTAINER.into()),
            availability_zone: volume.availability_zone.clone(),
            host: volume.host.clone(),
            metadata: new.metadata,
            fail_reason: None,
            restore_to: None,
            data_timestamp,
            created_at: now,
            updated_at: None,
        };
        store::insert_backup(&mut tx, &backup).await?;
        // An attached volume stays `in-use`: the backup reads a snapshot, not its file.
        if volume.status == VolumeStatus::Available {
            volume.status = VolumeStatus::BackingUp;
            volume.updated_at = Some(now);
            if !store::update_volume(&mut *tx, &volume, revision).await? {
                return Err(Error::Conflict(format!(
                    "Volume {} changed while it was being backed up; try again.",
                    volume.id
                )));
            }
        }
        tx.commit().await?;
        if let (BackupSource::LiveCopy(server), Some(snapshot)) = (&source, &temp_snapshot)
            && let Err(refused) = self.copy_for_backup(server, snapshot).await
        {
            self.forget_backup(&backup.id).await;
            return Err(refused);
        }
        self.changed();
        Ok(backup)
    }

    /// Asks the server's host to copy the volume for a forced backup; on refusal the
    /// snapshot, which never got a file, goes.
    async fn copy_for_backup(&self, server: &str, snapshot: &Snapshot) -> Result<()> {
        let copied = self
            .attacher()?
            .copy(server, &snapshot.volume_id, &snapshot.id)
            .await;
        if copied.is_err() {
            self.forget_snapshot(&snapshot.id).await;
        }
        copied
    }

    /// Removes a backup that never started (its volume could not be copied).
    async fn forget_backup(&self, id: &str) {
        let forgotten = async {
            if let Some(b) = store::backup(&self.pool, id).await?
                && b.doc.status == BackupStatus::Creating
            {
                store::delete_backup(&self.pool, id, b.revision).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(error) = forgotten.await {
            tracing::warn!(backup = id, %error, "cannot remove a backup whose volume was not copied");
        }
    }

    async fn modify_backup(
        &self,
        caller: &Caller,
        id: &str,
        mut change: impl FnMut(&mut Backup) -> Result<()>,
    ) -> Result<Backup> {
        for _ in 0..WRITE_TRIES {
            let Versioned { mut doc, revision } = self.find_backup(caller, id).await?;
            change(&mut doc)?;
            doc.updated_at = Some(now_micros());
            if store::update_backup(&self.pool, &doc, revision).await? {
                self.changed();
                return Ok(doc);
            }
        }
        Err(Error::Conflict(format!(
            "Backup {id} is being changed by others; try again."
        )))
    }

    pub async fn update_backup(
        &self,
        caller: &Caller,
        id: &str,
        update: BackupUpdate,
    ) -> Result<Backup> {
        caller.require_writer("backup:update")?;
        self.modify_backup(caller, id, |b| {
            if let Some(name) = &update.name {
                b.name.clone_from(name);
            }
            if let Some(description) = &update.description {
                b.description.clone_from(description);
            }
            if let Some(metadata) = &update.metadata {
                b.metadata.clone_from(metadata);
            }
            Ok(())
        })
        .await
    }

    /// Marks the backup for the agent to remove: from `available` or `error` (any state
    /// but one the agent is working on, when forced), and never while an incremental
    /// backup depends on it.
    pub async fn delete_backup(&self, caller: &Caller, id: &str, force: bool) -> Result<()> {
        caller.require_writer("backup:delete")?;
        if force {
            caller.require_admin("backup:force_delete")?;
        }
        let mut tx = store::begin_write(&self.pool).await?;
        let Versioned { mut doc, revision } = match store::backup(&mut *tx, id).await? {
            Some(b) if caller.owns(&b.doc.project_id) => b,
            _ => return Err(backup_not_found(id)),
        };
        let deletable = matches!(
            doc.status,
            BackupStatus::Available | BackupStatus::Error | BackupStatus::ErrorDeleting
        ) || (force && doc.status != BackupStatus::Restoring);
        if !deletable {
            return Err(Error::Invalid(format!(
                "Invalid backup: Backup status must be available or error, currently {}.",
                doc.status
            )));
        }
        if !store::children_of_backup(&mut *tx, id).await?.is_empty() {
            return Err(Error::Invalid(
                "Invalid backup: Incremental backups exist for this backup.".into(),
            ));
        }
        if doc.status == BackupStatus::Creating {
            // Forced while its data was being read: the volume is not being backed up now.
            self.end_backing_up(&mut tx, &doc.volume_id).await?;
        }
        doc.status = BackupStatus::Deleting;
        doc.updated_at = Some(now_micros());
        if !store::update_backup(&mut *tx, &doc, revision).await? {
            return Err(Error::Conflict(format!(
                "Backup {id} is being changed by others; try again."
            )));
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// Restores the backup over an available volume at least as large, or into a new
    /// volume of the backup's size.
    pub async fn restore_backup(
        &self,
        caller: &Caller,
        id: &str,
        request: RestoreRequest,
    ) -> Result<Restore> {
        caller.require_writer("backup:restore")?;
        // Read before the write lock is taken.
        let new_type = match &request.volume_id {
            Some(_) => None,
            None => Some(self.resolve_type(caller, None).await?),
        };
        let mut tx = store::begin_write(&self.pool).await?;
        let Versioned {
            doc: mut backup,
            revision,
        } = match store::backup(&mut *tx, id).await? {
            Some(b) if caller.owns(&b.doc.project_id) => b,
            _ => return Err(backup_not_found(id)),
        };
        if backup.status != BackupStatus::Available {
            return Err(Error::Invalid(format!(
                "Invalid backup: Backup status must be available, currently {}.",
                backup.status
            )));
        }
        let now = now_micros();
        let volume = match &request.volume_id {
            Some(volume_id) => {
                let Versioned {
                    doc: mut volume,
                    revision,
                } = owned_volume(&mut *tx, caller, volume_id).await?;
                if volume.status != VolumeStatus::Available {
                    return Err(Error::invalid_volume(format!(
                        "Volume to be restored to must be available, but the current status is \"{}\".",
                        volume.status
                    )));
                }
                let copying = store::volumes_in_status(&mut *tx, VolumeStatus::Creating)
                    .await?
                    .into_iter()
                    .any(|v| matches!(&v.doc.source, VolumeSource::Volume { volume_id: source } if source == volume_id));
                if copying {
                    return Err(Error::invalid_volume(format!(
                        "Volume {volume_id} is being copied into a new volume; restore over it when that is done."
                    )));
                }
                if volume.size < backup.size {
                    return Err(Error::invalid_volume(format!(
                        "volume size {}GB is too small to restore backup of size {}GB.",
                        volume.size, backup.size
                    )));
                }
                volume.status = VolumeStatus::RestoringBackup;
                volume.updated_at = Some(now);
                if !store::update_volume(&mut *tx, &volume, revision).await? {
                    return Err(Error::Conflict(format!(
                        "Volume {volume_id} changed meanwhile; try again."
                    )));
                }
                volume
            }
            None => {
                self.check_quota(&mut tx, &caller.project_id, 1, backup.size)
                    .await?;
                let volume_type = new_type
                    .ok_or_else(|| Error::Conflict("no volume type to restore into".into()))?;
                let volume = Volume {
                    id: onestack_db::ids::uuid(),
                    project_id: caller.project_id.clone(),
                    user_id: caller.user_id.clone(),
                    name: Some(
                        request
                            .name
                            .clone()
                            .unwrap_or_else(|| format!("restore_backup_{id}")),
                    ),
                    description: None,
                    size: backup.size,
                    status: VolumeStatus::RestoringBackup,
                    availability_zone: self.config.availability_zone.clone(),
                    multiattach: volume_type.multiattach(),
                    volume_type_id: volume_type.id,
                    bootable: false,
                    read_only: false,
                    metadata: Default::default(),
                    image_metadata: Default::default(),
                    source: Default::default(),
                    host: backup.host.clone(),
                    extend_to: None,
                    upload: None,
                    attachments: Vec::new(),
                    created_at: now,
                    updated_at: None,
                };
                store::insert_volume(&mut tx, &volume).await?;
                volume
            }
        };
        backup.status = BackupStatus::Restoring;
        backup.restore_to = Some(volume.id.clone());
        backup.updated_at = Some(now);
        if !store::update_backup(&mut *tx, &backup, revision).await? {
            return Err(Error::Conflict(format!(
                "Backup {id} is being changed by others; try again."
            )));
        }
        tx.commit().await?;
        self.changed();
        Ok(Restore {
            backup_id: backup.id,
            volume_id: volume.id,
            volume_name: volume.name,
        })
    }

    /// The volume a forced-away backup was reading is not being backed up any more.
    async fn end_backing_up(&self, tx: &mut onestack_db::Tx, volume_id: &str) -> Result<()> {
        if let Some(Versioned {
            doc: mut volume,
            revision,
        }) = store::volume(&mut **tx, volume_id).await?
            && volume.status == VolumeStatus::BackingUp
        {
            volume.status = VolumeStatus::Available;
            volume.updated_at = Some(now_micros());
            if !store::update_volume(&mut **tx, &volume, revision).await? {
                return Err(Error::Conflict(format!(
                    "Volume {volume_id} changed meanwhile; try again."
                )));
            }
        }
        Ok(())
    }

    pub async fn backup_action(
        &self,
        caller: &Caller,
        id: &str,
        action: BackupAction,
    ) -> Result<()> {
        match action {
            BackupAction::ResetStatus(status) => {
                caller.require_admin("volume_extension:backup_admin_actions:reset_status")?;
                if BackupStatus::PENDING.contains(&status) {
                    return Err(Error::Invalid(
                        "A reset to creating, restoring or deleting would start that work; use os-force_delete to delete.".into(),
                    ));
                }
                self.modify_backup(caller, id, |b| {
                    if matches!(b.status, BackupStatus::Creating | BackupStatus::Restoring) {
                        return Err(Error::Invalid(format!(
                            "Invalid backup: Backup {id} is {}: the volume is in use by it; wait for it, or force-delete a backup being made.",
                            b.status
                        )));
                    }
                    b.status = status;
                    Ok(())
                })
                .await
                .map(drop)
            }
            BackupAction::ForceDelete => {
                caller.require_admin("volume_extension:backup_admin_actions:force_delete")?;
                self.delete_backup(caller, id, true).await
            }
        }
    }
}

/// What a new backup reads.
enum BackupSource {
    /// The available volume's file.
    Volume,
    /// A snapshot the request names (the volume may be attached).
    Snapshot,
    /// A snapshot taken for the backup under the guest of this server (`force`).
    LiveCopy(String),
}

/// A volume is backed up while available, or from one of its snapshots; an attached one
/// only with `force` (Cinder's flag), from a copy its server's host takes under the guest.
fn backup_source(volume: &Volume, force: bool, from_snapshot: bool) -> Result<BackupSource> {
    match volume.status {
        VolumeStatus::Available | VolumeStatus::InUse if from_snapshot => {
            Ok(BackupSource::Snapshot)
        }
        VolumeStatus::Available => Ok(BackupSource::Volume),
        VolumeStatus::InUse if !force => Err(Error::invalid_volume(
            "Backing up an in-use volume must use the force flag.",
        )),
        VolumeStatus::InUse => copying_server(volume).map(BackupSource::LiveCopy),
        other => Err(Error::invalid_volume(format!(
            "Volume to be backed up must be available or in-use, but the current status is \"{other}\"."
        ))),
    }
}

/// The snapshot a forced backup of an in-use volume reads, named as Cinder names it; it
/// counts against no quota (Cinder's neither) and goes when the backup is done.
fn temp_snapshot(caller: &Caller, volume: &Volume, server: &str, now: i64) -> Snapshot {
    Snapshot {
        id: onestack_db::ids::uuid(),
        project_id: volume.project_id.clone(),
        user_id: caller.user_id.clone(),
        volume_id: volume.id.clone(),
        name: Some(format!("backup-snap-{}", volume.id)),
        description: Some("This is only used for backup or restore.".into()),
        size: volume.size,
        status: SnapshotStatus::Creating,
        metadata: Default::default(),
        host: volume.host.clone(),
        created_at: now,
        updated_at: None,
        copied_by: Some(server.to_owned()),
    }
}
