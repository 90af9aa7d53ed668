//! What the backup operations are asked to do, typed: read from request bodies by
//! `api::backups`.

use std::collections::BTreeMap;

use crate::model::BackupStatus;

/// `POST /backups`.
#[derive(Debug, Default)]
pub struct NewBackup {
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Only what changed since the volume's latest backup.
    pub incremental: bool,
    /// Cinder's flag for backing up an attached volume.
    pub force: bool,
    /// Back up this snapshot of the volume instead of the volume.
    pub snapshot_id: Option<String>,
    pub container: Option<String>,
    /// 3.43+.
    pub metadata: BTreeMap<String, String>,
}

/// `PUT /backups/{id}` (3.9+); `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct BackupUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    /// 3.43+: replaces the metadata.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `POST /backups/{id}/restore`.
#[derive(Debug, Default)]
pub struct RestoreRequest {
    /// An existing volume to overwrite; `None` makes a new one.
    pub volume_id: Option<String>,
    /// The new volume's name.
    pub name: Option<String>,
}

/// Where a restore went.
#[derive(Debug, Clone)]
pub struct Restore {
    pub backup_id: String,
    pub volume_id: String,
    pub volume_name: Option<String>,
}

/// `POST /backups/{id}/action` (admins).
#[derive(Debug)]
pub enum BackupAction {
    ResetStatus(BackupStatus),
    ForceDelete,
}
