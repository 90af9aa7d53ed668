//! Snapshots: taken of an available volume (into `creating` for the agent, which copies the
//! volume's data) or of an in-use one with `force` (the server's host copies it under the
//! running guest), read, listed, renamed, deleted (into `deleting`: the agent first
//! flattens the volumes made from it, then removes its file).

use onestack_db::now_micros;

use super::snapshot_input::{NewSnapshot, SnapshotUpdate};
use super::volumes::owned_volume;
use crate::error::{Error, Result};
use crate::model::{
    AttachStatus, BackupStatus, Snapshot, SnapshotStatus, Versioned, Volume, VolumeStatus,
};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store;

/// Tries of a compare-and-set change before giving up on a snapshot written that often.
const WRITE_TRIES: usize = 16;

pub fn snapshot_not_found(id: &str) -> Error {
    Error::NotFound(format!("Snapshot {id} could not be found."))
}

/// A snapshot goes only from `available` or `error`, and not while a volume is still being
/// made from it (that volume needs its file).
pub(crate) fn check_snapshot_deletable(
    snapshot: &Snapshot,
    dependents: &[Versioned<Volume>],
) -> Result<()> {
    // `error_deleting` too: a delete the agent could not finish may be tried again.
    if !matches!(
        snapshot.status,
        SnapshotStatus::Available | SnapshotStatus::Error | SnapshotStatus::ErrorDeleting
    ) {
        return Err(Error::Invalid(format!(
            "Invalid snapshot: Snapshot status must be available or error and must not be part of a group, currently {}.",
            snapshot.status
        )));
    }
    if dependents.iter().any(|v| !v.doc.attachments.is_empty()) {
        // Deleting flattens them, which cannot happen under a guest that has one open.
        return Err(Error::Invalid(format!(
            "Invalid snapshot: a volume made from snapshot {} is attached; detach it first.",
            snapshot.id
        )));
    }
    if dependents
        .iter()
        .any(|v| v.doc.status == VolumeStatus::Creating)
    {
        return Err(Error::Invalid(format!(
            "Invalid snapshot: a volume is being created from snapshot {}.",
            snapshot.id
        )));
    }
    Ok(())
}

impl Volumes {
    pub(crate) async fn find_snapshot(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Versioned<Snapshot>> {
        match store::snapshot(&self.pool, id).await? {
            Some(s) if caller.owns(&s.doc.project_id) => Ok(s),
            _ => Err(snapshot_not_found(id)),
        }
    }

    pub async fn get_snapshot(&self, caller: &Caller, id: &str) -> Result<Snapshot> {
        Ok(self.find_snapshot(caller, id).await?.doc)
    }

    pub async fn list_snapshots(
        &self,
        caller: &Caller,
        all_projects: bool,
    ) -> Result<Vec<Snapshot>> {
        let project = (!(caller.admin && all_projects)).then_some(caller.project_id.as_str());
        store::snapshots(&self.pool, project).await
    }

    pub async fn create_snapshot(&self, caller: &Caller, new: NewSnapshot) -> Result<Snapshot> {
        let mut made = self.create_snapshots(caller, vec![new]).await?;
        made.pop().ok_or_else(|| {
            onestack_api::ApiError::internal("a snapshot request made nothing").into()
        })
    }

    /// Takes snapshots of several volumes at once (Nova's snapshot of a server that boots
    /// from volumes): all are checked, and counted against the quotas together, before any
    /// is recorded, so that a refusal leaves nothing behind.
    pub async fn create_snapshots(
        &self,
        caller: &Caller,
        requests: Vec<NewSnapshot>,
    ) -> Result<Vec<Snapshot>> {
        caller.require_writer("volume:create_snapshot")?;
        let mut tx = store::begin_write(&self.pool).await?;
        let mut made = Vec::new();
        let mut gigabytes = 0u64;
        for new in requests {
            let volume = owned_volume(&mut *tx, caller, &new.volume_id).await?.doc;
            // An in-use volume's file is the guest's: the server's host copies it.
            let copied_by = match volume.status {
                VolumeStatus::InUse if new.force => Some(copying_server(&volume)?),
                _ => None,
            };
            if volume.status != VolumeStatus::Available && copied_by.is_none() {
                return Err(Error::invalid_volume(format!(
                    "Volume {} status must be available, but current status is: {}.",
                    volume.id, volume.status
                )));
            }
            gigabytes = gigabytes.saturating_add(volume.size);
            made.push(Snapshot {
                id: onestack_db::ids::uuid(),
                project_id: volume.project_id.clone(),
                user_id: caller.user_id.clone(),
                volume_id: volume.id.clone(),
                name: new.name,
                description: new.description,
                size: volume.size,
                status: SnapshotStatus::Creating,
                metadata: new.metadata,
                host: volume.host.clone(),
                created_at: now_micros(),
                updated_at: None,
                copied_by,
            });
        }
        let attacher = made
            .iter()
            .any(|s| s.copied_by.is_some())
            .then(|| self.attacher())
            .transpose()?;
        if let Some(first) = made.first() {
            let count = i64::try_from(made.len()).unwrap_or(i64::MAX);
            self.check_snapshots_quota(&mut tx, &first.project_id, count, gigabytes)
                .await?;
        }
        for snapshot in &made {
            store::insert_snapshot(&mut tx, snapshot).await?;
        }
        tx.commit().await?;
        for (i, snapshot) in made.iter().enumerate() {
            if let (Some(server), Some(attacher)) = (&snapshot.copied_by, &attacher)
                && let Err(refused) = attacher
                    .copy(server, &snapshot.volume_id, &snapshot.id)
                    .await
            {
                // The ones already asked for go on; the rest never get a file.
                for never in &made[i..] {
                    self.forget_snapshot(&never.id).await;
                }
                return Err(refused);
            }
        }
        self.changed();
        Ok(made)
    }

    /// Removes a snapshot that compute refused to copy (it never had a file).
    pub(super) async fn forget_snapshot(&self, id: &str) {
        let forgotten = async {
            if let Some(s) = store::snapshot(&self.pool, id).await?
                && s.doc.status == SnapshotStatus::Creating
            {
                store::delete_snapshot(&self.pool, id, s.revision).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(error) = forgotten.await {
            tracing::warn!(snapshot = id, %error, "cannot remove a snapshot compute refused");
        }
    }

    pub(super) async fn modify_snapshot(
        &self,
        caller: &Caller,
        id: &str,
        mut change: impl FnMut(&mut Snapshot) -> Result<()>,
    ) -> Result<Snapshot> {
        for _ in 0..WRITE_TRIES {
            let Versioned { mut doc, revision } = self.find_snapshot(caller, id).await?;
            change(&mut doc)?;
            doc.updated_at = Some(now_micros());
            if store::update_snapshot(&self.pool, &doc, revision).await? {
                self.changed();
                return Ok(doc);
            }
        }
        Err(Error::Conflict(format!(
            "Snapshot {id} is being changed by others; try again."
        )))
    }

    pub async fn update_snapshot(
        &self,
        caller: &Caller,
        id: &str,
        update: SnapshotUpdate,
    ) -> Result<Snapshot> {
        caller.require_writer("volume:update_snapshot")?;
        self.modify_snapshot(caller, id, |s| {
            if let Some(name) = &update.name {
                s.name.clone_from(name);
            }
            if let Some(description) = &update.description {
                s.description.clone_from(description);
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_snapshot(&self, caller: &Caller, id: &str) -> Result<()> {
        caller.require_writer("volume:delete_snapshot")?;
        // One write transaction: no volume can start being made from it in between.
        let mut tx = store::begin_write(&self.pool).await?;
        let Versioned { mut doc, revision } = match store::snapshot(&mut *tx, id).await? {
            Some(s) if caller.owns(&s.doc.project_id) => s,
            _ => return Err(snapshot_not_found(id)),
        };
        let dependents = store::volumes_on_snapshot(&mut *tx, id).await?;
        check_snapshot_deletable(&doc, &dependents)?;
        let backing_up = store::backups_of_volume(&mut *tx, &doc.volume_id)
            .await?
            .into_iter()
            .any(|b| b.reads_snapshot(id) && b.status == BackupStatus::Creating);
        if backing_up {
            return Err(Error::Invalid(format!(
                "Invalid snapshot: snapshot {id} is being backed up; delete it when that is done."
            )));
        }
        doc.status = SnapshotStatus::Deleting;
        doc.updated_at = Some(now_micros());
        if !store::update_snapshot(&mut *tx, &doc, revision).await? {
            return Err(Error::Conflict(format!(
                "Snapshot {id} is being changed by others; try again."
            )));
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }
}

/// The server whose host copies an in-use volume for a snapshot: the one it is attached to
/// (with several, the first: each sees the same disk).
pub(super) fn copying_server(volume: &Volume) -> Result<String> {
    volume
        .attachments
        .iter()
        .find(|a| a.status == AttachStatus::Attached)
        .map(|a| a.server_id.clone())
        .ok_or_else(|| {
            Error::invalid_volume(format!(
                "Volume {} is being attached or detached; snapshot it when that is done.",
                volume.id
            ))
        })
}
