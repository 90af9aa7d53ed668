//! The block storage domain types: what `store` keeps, `ops` works on and `views` renders.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

onestack_api::wire_enum! {
    /// Cinder's volume status.
    VolumeStatus {
        Creating = "creating",
        Available = "available",
        Reserved = "reserved",
        Attaching = "attaching",
        InUse = "in-use",
        Detaching = "detaching",
        Extending = "extending",
        BackingUp = "backing-up",
        RestoringBackup = "restoring-backup",
        AwaitingTransfer = "awaiting-transfer",
        Deleting = "deleting",
        Downloading = "downloading",
        Uploading = "uploading",
        Maintenance = "maintenance",
        Error = "error",
        ErrorDeleting = "error_deleting",
        ErrorExtending = "error_extending",
        ErrorRestoring = "error_restoring",
        ErrorManaging = "error_managing",
    }
}

impl VolumeStatus {
    /// States whose work the volume agent carries out.
    pub const PENDING: [VolumeStatus; 4] = [
        VolumeStatus::Creating,
        VolumeStatus::Extending,
        VolumeStatus::Uploading,
        VolumeStatus::Deleting,
    ];
}

/// What a volume was made from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeSource {
    #[default]
    Blank,
    /// The image's data, converted (its Glance `disk_format` says how to read it).
    Image {
        image_id: String,
        disk_format: String,
    },
    /// An overlay on the snapshot's file: nothing copied.
    Snapshot { snapshot_id: String },
    /// A copy of the other volume's data.
    Volume { volume_id: String },
}

impl VolumeSource {
    /// The snapshot whose file this volume's file is an overlay on.
    pub fn snapshot(&self) -> Option<&str> {
        match self {
            VolumeSource::Snapshot { snapshot_id } => Some(snapshot_id),
            _ => None,
        }
    }
}

onestack_api::wire_enum! {
    /// Where an attachment is: reserved while compute plugs the disk in, attached, or
    /// being unplugged.
    AttachStatus {
        Attaching = "attaching",
        Attached = "attached",
        Detaching = "detaching",
    }
}

/// A volume's attachment to a server (Cinder's attachment record; Nova keeps its id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub server_id: String,
    /// The compute host the disk is plugged in on, once attached.
    pub host: Option<String>,
    /// The device name compute gave it (`/dev/vdb`).
    pub device: String,
    pub status: AttachStatus,
    /// Plugged read-only (the volume's read-only flag when it was attached).
    pub read_only: bool,
    pub attached_at: Option<i64>,
}

/// A volume's data on its way into an image (`os-volume_upload_image`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUpload {
    pub image_id: String,
    /// `raw` or `qcow2`.
    pub disk_format: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB.
    pub size: u64,
    pub status: VolumeStatus,
    pub availability_zone: String,
    pub volume_type_id: String,
    pub bootable: bool,
    pub read_only: bool,
    pub metadata: BTreeMap<String, String>,
    /// `volume_image_metadata`: what the image a volume was made from said about itself.
    #[serde(default)]
    pub image_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub source: VolumeSource,
    /// `host@backend#pool`: the host whose agent keeps the volume's file.
    pub host: String,
    /// While `extending`: the size being grown to, and the status to return to.
    #[serde(default)]
    pub extend_to: Option<u64>,
    /// While `uploading`: the image being filled with its data.
    #[serde(default)]
    pub upload: Option<ImageUpload>,
    /// Its type allowed attaching it to several servers at once when it was made.
    #[serde(default)]
    pub multiattach: bool,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

onestack_api::wire_enum! {
    /// Cinder's snapshot status.
    SnapshotStatus {
        Creating = "creating",
        Available = "available",
        Deleting = "deleting",
        Error = "error",
        ErrorDeleting = "error_deleting",
    }
}

impl SnapshotStatus {
    /// States whose work the volume agent carries out.
    pub const PENDING: [SnapshotStatus; 2] = [SnapshotStatus::Creating, SnapshotStatus::Deleting];
}

/// A point-in-time copy of a volume, kept on the volume's host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB: the volume's size when it was taken.
    pub size: u64,
    pub status: SnapshotStatus,
    pub metadata: BTreeMap<String, String>,
    pub host: String,
    pub created_at: i64,
    pub updated_at: Option<i64>,
    /// The server whose host copies the volume (it was in use when the snapshot was
    /// taken); `None`: the volume agent copies the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_by: Option<String>,
}

onestack_api::wire_enum! {
    /// Cinder's backup status.
    BackupStatus {
        Creating = "creating",
        Available = "available",
        Restoring = "restoring",
        Deleting = "deleting",
        Error = "error",
        ErrorDeleting = "error_deleting",
    }
}

impl BackupStatus {
    /// States whose work the volume agent carries out.
    pub const PENDING: [BackupStatus; 3] = [
        BackupStatus::Creating,
        BackupStatus::Restoring,
        BackupStatus::Deleting,
    ];
}

/// A copy of a volume's data (or of one of its snapshots) kept by the backup store: whole,
/// or only what differs from its parent backup (incremental).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    pub id: String,
    pub project_id: String,
    pub user_id: String,
    pub volume_id: String,
    /// Backed up from this snapshot of the volume rather than the volume itself.
    pub snapshot_id: Option<String>,
    /// A forced backup of an in-use volume: the snapshot its server's host copies under
    /// the guest for it, read instead of the volume and removed when the backup is done
    /// (Cinder's `temp_snapshot_id`).
    #[serde(default)]
    pub temp_snapshot_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// GiB: the volume's size when it was taken.
    pub size: u64,
    pub status: BackupStatus,
    /// The backup an incremental one holds the differences from.
    pub parent_id: Option<String>,
    pub container: String,
    pub availability_zone: String,
    /// The host whose agent writes it (the volume's).
    pub host: String,
    pub metadata: BTreeMap<String, String>,
    pub fail_reason: Option<String>,
    /// While `restoring`: the volume being written.
    pub restore_to: Option<String>,
    /// When the data was read (the snapshot's time for a backup of a snapshot).
    pub data_timestamp: i64,
    pub created_at: i64,
    pub updated_at: Option<i64>,
}

impl Backup {
    /// The snapshot whose file the backup reads: the one asked for, or its own copy of an
    /// in-use volume.
    pub fn source_snapshot(&self) -> Option<&str> {
        self.snapshot_id
            .as_deref()
            .or(self.temp_snapshot_id.as_deref())
    }

    pub fn reads_snapshot(&self, id: &str) -> bool {
        self.source_snapshot() == Some(id)
    }
}

/// A volume offered by its project to whoever presents the transfer's id and key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    pub id: String,
    /// The project giving the volume away.
    pub project_id: String,
    pub volume_id: String,
    pub name: Option<String>,
    /// Hex; the key is kept only as `sha256(salt || key)`.
    pub salt: String,
    pub key_hash: String,
    /// The volume's snapshots stay behind (3.55).
    pub no_snapshots: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeType {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub extra_specs: BTreeMap<String, String>,
    pub created_at: i64,
    /// The projects a private type is shared with (`os-volume-type-access`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub projects: BTreeSet<String>,
}

impl VolumeType {
    /// Whether `caller` may see and use the type: a public one, a private one shared with
    /// the caller's project, or any for an admin.
    pub fn usable_by(&self, caller: &onestack_api::Caller) -> bool {
        self.is_public || caller.admin || self.projects.contains(&caller.project_id)
    }

    /// Cinder's `multiattach` extra spec (`<is> True`): volumes of this type may be
    /// attached to several servers at once.
    pub fn multiattach(&self) -> bool {
        self.extra_specs
            .get("multiattach")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("<is> true"))
    }
}

/// A row with the revision it was read at, for compare-and-set writes.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub doc: T,
    pub revision: i64,
}

/// What a volume agent says about its backend after each pass (Cinder's volume service
/// reports its capabilities to the scheduler the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendReport {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// When (µs since the epoch).
    pub at: i64,
}
