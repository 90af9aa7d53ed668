//! What the volume operations are asked to do, typed: read from request bodies by
//! `api::volumes`.

use std::collections::BTreeMap;

use crate::model::VolumeStatus;

/// What a new volume is to be made from, when not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRequest {
    Image(String),
    Snapshot(String),
    Volume(String),
    Backup(String),
}

/// A volume to make.
#[derive(Debug, Default)]
pub struct NewVolume {
    /// GiB; may be left out only when a source gives the size.
    pub size: Option<u64>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A type's name or id; `None` is the default type.
    pub volume_type: Option<String>,
    pub availability_zone: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub source: Option<SourceRequest>,
}

/// The changes to a volume; `None` leaves an attribute as it is.
#[derive(Debug, Default)]
pub struct VolumeUpdate {
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    /// Replaces the user metadata.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/{id}/action`.
#[derive(Debug)]
pub enum VolumeAction {
    Extend {
        new_size: u64,
        /// 3.42: an in-use volume may grow too.
        attached_ok: bool,
    },
    SetBootable(bool),
    SetReadOnly(bool),
    /// Admins only: the status as given (`None` leaves it).
    ResetStatus {
        status: Option<VolumeStatus>,
    },
    /// Admins only: delete whatever the status.
    ForceDelete,
    UploadImage(UploadImage),
    /// `os-attach`: attach to the server, through compute.
    Attach {
        server_id: String,
    },
    /// `os-detach`: detach (the attachment named, or the only one), through compute.
    Detach {
        attachment_id: Option<String>,
    },
}

/// `os-volume_upload_image`: the volume's data into a new image.
#[derive(Debug)]
pub struct UploadImage {
    pub image_name: String,
    /// `raw` or `qcow2`.
    pub disk_format: String,
    pub container_format: String,
    /// Cinder's flag for an attached volume.
    pub force: bool,
    /// 3.1+.
    pub visibility: Option<String>,
    /// 3.1+.
    pub protected: bool,
}

/// Where an upload goes: the image announced, and the volume as it is now.
#[derive(Debug, Clone)]
pub struct Upload {
    pub volume: crate::model::Volume,
    pub volume_type: crate::model::VolumeType,
    pub image_id: String,
    pub image_name: String,
    pub disk_format: String,
    pub container_format: String,
    pub visibility: String,
    pub protected: bool,
}

/// How `DELETE /volumes/{id}` was asked.
#[derive(Debug, Default, Clone, Copy)]
pub struct DeleteRequest {
    /// Delete its snapshots too.
    pub cascade: bool,
    /// Admins only (3.23+): whatever the status.
    pub force: bool,
}
