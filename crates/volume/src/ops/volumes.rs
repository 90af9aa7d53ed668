//! Volumes: create (blank, into `creating` for the agent), read, list, update, metadata,
//! the actions, delete (into `deleting` for the agent). Every change to an existing volume
//! is compare-and-set on the row read, so the API and the agent never overwrite each other.

use std::collections::BTreeMap;

use onestack_api::AuthContext;
use onestack_db::now_micros;
use onestack_image::model::{Image, Status as ImageStatus};

use super::snapshots::check_snapshot_deletable;
use super::volume_input::{DeleteRequest, NewVolume, SourceRequest, VolumeAction, VolumeUpdate};
use crate::error::{Error, Result};
use crate::model::{
    AttachStatus, Snapshot, SnapshotStatus, Versioned, Volume, VolumeSource, VolumeStatus,
    VolumeType,
};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store::{self, TypeKey};

const GIB: u64 = 1 << 30;

/// Tries of a compare-and-set change before giving up on a volume written that often.
pub(crate) const WRITE_TRIES: usize = 16;

/// The statuses a volume may be deleted from without `force`.
const DELETABLE: [VolumeStatus; 3] = [
    VolumeStatus::Available,
    VolumeStatus::Error,
    VolumeStatus::ErrorExtending,
];

/// What a new volume is made from, found and checked.
enum Origin {
    Blank,
    Image(Box<Image>),
    /// The snapshot and the volume it was taken of.
    Snapshot(Box<Snapshot>, Box<Volume>),
    Volume(Box<Volume>),
}

/// A source row to look at again under the write lock.
enum SourceRow {
    None,
    Snapshot(String),
    Volume(String),
}

impl Origin {
    fn source_row(&self) -> SourceRow {
        match self {
            Origin::Snapshot(snapshot, _) => SourceRow::Snapshot(snapshot.id.clone()),
            Origin::Volume(volume) => SourceRow::Volume(volume.id.clone()),
            Origin::Blank | Origin::Image(_) => SourceRow::None,
        }
    }

    /// The size a volume gets when the request gives none.
    fn size(&self) -> Option<u64> {
        match self {
            Origin::Snapshot(snapshot, _) => Some(snapshot.size),
            Origin::Volume(volume) => Some(volume.size),
            Origin::Blank | Origin::Image(_) => None,
        }
    }

    /// Cinder's refusals of a volume smaller than what it is made from.
    fn check_fits(&self, size: u64) -> Result<()> {
        match self {
            Origin::Blank => Ok(()),
            Origin::Image(image) => check_image_fits(image, size),
            Origin::Snapshot(snapshot, _) if size < snapshot.size => Err(Error::Invalid(format!(
                "Volume size {size}GB cannot be smaller than the snapshot size {}GB. They must be >= original snapshot size.",
                snapshot.size
            ))),
            Origin::Volume(volume) if size < volume.size => Err(Error::Invalid(format!(
                "Volume size {size}GB cannot be smaller than original volume size {}GB. They must be >= original volume size.",
                volume.size
            ))),
            _ => Ok(()),
        }
    }

    /// Whether the volume boots, its image metadata and its recorded source.
    fn into_parts(self) -> (bool, BTreeMap<String, String>, VolumeSource) {
        match self {
            Origin::Blank => (false, BTreeMap::new(), VolumeSource::Blank),
            Origin::Image(image) => (
                true,
                image_metadata(&image),
                VolumeSource::Image {
                    disk_format: image.disk_format.clone().unwrap_or_default(),
                    image_id: image.id.clone(),
                },
            ),
            // A copy inherits what its source says of itself.
            Origin::Snapshot(snapshot, volume) => (
                volume.bootable,
                volume.image_metadata,
                VolumeSource::Snapshot {
                    snapshot_id: snapshot.id.clone(),
                },
            ),
            Origin::Volume(volume) => (
                volume.bootable,
                volume.image_metadata,
                VolumeSource::Volume {
                    volume_id: volume.id,
                },
            ),
        }
    }
}

/// Cinder's refusals of an image larger than the volume asked for.
fn check_image_fits(image: &Image, size_gb: u64) -> Result<()> {
    let bytes = image.virtual_size.or(image.size).unwrap_or(0).max(0);
    let image_gb = u64::try_from(bytes).unwrap_or(0).div_ceil(GIB);
    if image_gb > size_gb {
        return Err(Error::Invalid(format!(
            "Size of specified image {image_gb} is larger than volume size {size_gb}."
        )));
    }
    let min_disk = u64::try_from(image.min_disk).unwrap_or(0);
    if min_disk > size_gb {
        return Err(Error::Invalid(format!(
            "Volume size {size_gb}GB cannot be smaller than the image minDisk size {min_disk}GB."
        )));
    }
    Ok(())
}

/// `volume_image_metadata`: what Cinder copies from the image, every value a string.
fn image_metadata(image: &Image) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = image
        .properties
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            )
        })
        .collect();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    out.insert("image_id".into(), image.id.clone());
    out.insert("image_name".into(), text(&image.name));
    out.insert("checksum".into(), text(&image.checksum));
    out.insert("container_format".into(), text(&image.container_format));
    out.insert("disk_format".into(), text(&image.disk_format));
    out.insert("min_disk".into(), image.min_disk.to_string());
    out.insert("min_ram".into(), image.min_ram.to_string());
    out.insert("size".into(), image.size.unwrap_or(0).to_string());
    out
}

/// The volume, read on `e` (a write transaction), if the caller may see it; others'
/// volumes are not found.
pub(crate) async fn owned_volume<'c, E: sqlx::Executor<'c, Database = onestack_db::Any>>(
    e: E,
    caller: &Caller,
    id: &str,
) -> Result<Versioned<Volume>> {
    match store::volume(e, id).await? {
        Some(v) if caller.owns(&v.doc.project_id) => Ok(v),
        _ => Err(Error::volume_not_found(id)),
    }
}

impl Volumes {
    /// The volume if the caller may see it; others' volumes are not found.
    pub(crate) async fn find_volume(&self, caller: &Caller, id: &str) -> Result<Versioned<Volume>> {
        match store::volume(&self.pool, id).await? {
            Some(v) if caller.owns(&v.doc.project_id) => Ok(v),
            _ => Err(Error::volume_not_found(id)),
        }
    }

    pub async fn get_volume(&self, caller: &Caller, id: &str) -> Result<Volume> {
        Ok(self.find_volume(caller, id).await?.doc)
    }

    /// The caller's project's volumes, or (admins asking for all projects) every volume.
    pub async fn list_volumes(&self, caller: &Caller, all_projects: bool) -> Result<Vec<Volume>> {
        let project = (!(caller.admin && all_projects)).then_some(caller.project_id.as_str());
        store::volumes(&self.pool, project).await
    }

    /// A volume, blank or from an image; `auth` is the caller's token, with which the image
    /// service decides whether the caller may read the image.
    pub async fn create_volume(
        &self,
        caller: &Caller,
        auth: &AuthContext,
        new: NewVolume,
    ) -> Result<Volume> {
        caller.require_writer("volume:create")?;
        let origin = self.origin(caller, auth, new.source.as_ref()).await?;
        let size = match (new.size, origin.size()) {
            (Some(size), _) if size >= 1 => size,
            (Some(size), _) => {
                return Err(Error::Invalid(format!(
                    "Invalid input for field/attribute size. Value: {size}. {size} is less than the minimum of 1"
                )));
            }
            (None, Some(size)) => size,
            (None, None) => return Err(Error::Invalid("'size' is a required property".into())),
        };
        origin.check_fits(size)?;
        let zone = &self.config.availability_zone;
        if let Some(asked) = &new.availability_zone
            && asked != zone
        {
            return Err(Error::Invalid(format!(
                "Availability zone '{asked}' is invalid."
            )));
        }
        let type_name = new.volume_type.as_deref();
        let volume_type = match (type_name, &origin) {
            // A copy keeps its source's type unless the request names one.
            (None, Origin::Snapshot(_, source) | Origin::Volume(source)) => {
                self.type_by_id(&source.volume_type_id).await?
            }
            _ => self.resolve_type(caller, type_name).await?,
        };
        let recheck = origin.source_row();
        let (bootable, image_metadata, source) = origin.into_parts();
        let multiattach = volume_type.multiattach();
        let volume = Volume {
            id: onestack_db::ids::uuid(),
            project_id: caller.project_id.clone(),
            user_id: caller.user_id.clone(),
            name: new.name,
            description: new.description,
            size,
            status: VolumeStatus::Creating,
            availability_zone: zone.clone(),
            volume_type_id: volume_type.id,
            bootable,
            read_only: false,
            metadata: new.metadata,
            image_metadata,
            source,
            host: self.volume_host(),
            extend_to: None,
            upload: None,
            multiattach,
            attachments: Vec::new(),
            created_at: now_micros(),
            updated_at: None,
        };
        let mut tx = store::begin_write(&self.pool).await?;
        // Under the write lock, the source must still be there to copy from (a delete may
        // have come between the first look and now).
        match recheck {
            SourceRow::None => {}
            SourceRow::Snapshot(id) => match store::snapshot(&mut *tx, &id).await? {
                Some(s) if s.doc.status == SnapshotStatus::Available => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "Invalid snapshot: snapshot {id} is no longer available."
                    )));
                }
            },
            SourceRow::Volume(id) => match store::volume(&mut *tx, &id).await? {
                Some(v)
                    if matches!(v.doc.status, VolumeStatus::Available | VolumeStatus::InUse) => {}
                _ => {
                    return Err(Error::invalid_volume(format!(
                        "source volume {id} is no longer available."
                    )));
                }
            },
        }
        self.check_quota(&mut tx, &volume.project_id, 1, size)
            .await?;
        store::insert_volume(&mut tx, &volume).await?;
        tx.commit().await?;
        self.changed();
        Ok(volume)
    }

    /// What a create names as its source, found and checked.
    async fn origin(
        &self,
        caller: &Caller,
        auth: &AuthContext,
        source: Option<&SourceRequest>,
    ) -> Result<Origin> {
        Ok(match source {
            None => Origin::Blank,
            Some(SourceRequest::Image(reference)) => {
                Origin::Image(Box::new(self.source_image(auth, reference).await?))
            }
            Some(SourceRequest::Snapshot(id)) => {
                let snapshot = self.find_snapshot(caller, id).await?.doc;
                if snapshot.status != SnapshotStatus::Available {
                    return Err(Error::Invalid(format!(
                        "Invalid snapshot: Originating snapshot status must be one of 'available' values, currently {}.",
                        snapshot.status
                    )));
                }
                let volume = store::volume(&self.pool, &snapshot.volume_id)
                    .await?
                    .map(|v| v.doc);
                let Some(volume) = volume else {
                    return Err(Error::volume_not_found(&snapshot.volume_id));
                };
                Origin::Snapshot(Box::new(snapshot), Box::new(volume))
            }
            Some(SourceRequest::Volume(id)) => {
                let volume = self.find_volume(caller, id).await?.doc;
                if !matches!(volume.status, VolumeStatus::Available | VolumeStatus::InUse) {
                    return Err(Error::invalid_volume(format!(
                        "Source volume {id} status must be available or in-use, currently {}.",
                        volume.status
                    )));
                }
                Origin::Volume(Box::new(volume))
            }
            Some(SourceRequest::Backup(_)) => {
                return Err(Error::invalid_input(
                    "creating a volume from a backup is not supported yet",
                ));
            }
        })
    }

    pub(crate) async fn type_by_id(&self, id: &str) -> Result<VolumeType> {
        store::volume_type(&self.pool, TypeKey::Id, id)
            .await?
            .ok_or_else(|| Error::type_not_found(id))
    }

    /// The image a create names (by id, or by the last segment of an image URL), if the
    /// caller may read it and it has data a volume can hold.
    async fn source_image(&self, auth: &AuthContext, reference: &str) -> Result<Image> {
        let id = reference.rsplit('/').next().unwrap_or(reference);
        let image = self.images.find(auth, id).await.map_err(|_| {
            Error::Invalid("Invalid image identifier or unable to access requested image.".into())
        })?;
        if image.status != ImageStatus::Active {
            return Err(Error::Invalid(format!(
                "Image {id} is not active: it is {}.",
                image.status.as_str()
            )));
        }
        match image.disk_format.as_deref() {
            Some("raw" | "qcow2" | "vmdk" | "vdi" | "vhd" | "vhdx" | "ploop" | "iso") => Ok(image),
            other => Err(Error::Invalid(format!(
                "Image {id} has disk format {}, which a volume cannot be made from.",
                other.unwrap_or("none")
            ))),
        }
    }

    /// The type a request names (by id or name), or the default type.
    pub(crate) async fn resolve_type(
        &self,
        caller: &Caller,
        named: Option<&str>,
    ) -> Result<VolumeType> {
        let name = named.unwrap_or(&self.config.default_type);
        let found = match store::volume_type(&self.pool, TypeKey::Id, name).await? {
            Some(t) => Some(t),
            None => store::volume_type(&self.pool, TypeKey::Name, name).await?,
        };
        match found {
            Some(t) if t.usable_by(caller) => Ok(t),
            _ => Err(Error::NotFound(format!(
                "Volume type with name {name} could not be found."
            ))),
        }
    }

    /// Reads the volume, lets `change` edit it, and writes it compare-and-set, again from a
    /// fresh read when another writer came first.
    pub(crate) async fn modify(
        &self,
        caller: &Caller,
        id: &str,
        change: impl FnMut(&mut Volume) -> Result<()>,
    ) -> Result<Volume> {
        self.modify_where(id, |v| caller.owns(&v.project_id), change)
            .await
    }

    /// [`Volumes::modify`] of a volume that `visible` says is there for whoever asks.
    pub(crate) async fn modify_where(
        &self,
        id: &str,
        visible: impl Fn(&Volume) -> bool,
        mut change: impl FnMut(&mut Volume) -> Result<()>,
    ) -> Result<Volume> {
        for _ in 0..WRITE_TRIES {
            let Versioned { mut doc, revision } = match store::volume(&self.pool, id).await? {
                Some(v) if visible(&v.doc) => v,
                _ => return Err(Error::volume_not_found(id)),
            };
            change(&mut doc)?;
            doc.updated_at = Some(now_micros());
            if store::update_volume(&self.pool, &doc, revision).await? {
                self.changed();
                return Ok(doc);
            }
        }
        Err(Error::Conflict(format!(
            "Volume {id} is being changed by others; try again."
        )))
    }

    pub async fn update_volume(
        &self,
        caller: &Caller,
        id: &str,
        update: VolumeUpdate,
    ) -> Result<Volume> {
        caller.require_writer("volume:update")?;
        self.modify(caller, id, |v| {
            if v.status == VolumeStatus::Maintenance {
                return Err(Error::invalid_volume(format!(
                    "Volume {id} status must not be maintenance"
                )));
            }
            if let Some(name) = &update.name {
                v.name.clone_from(name);
            }
            if let Some(description) = &update.description {
                v.description.clone_from(description);
            }
            if let Some(metadata) = &update.metadata {
                v.metadata.clone_from(metadata);
            }
            Ok(())
        })
        .await
    }

    pub async fn delete_volume(
        &self,
        caller: &Caller,
        id: &str,
        request: DeleteRequest,
    ) -> Result<()> {
        caller.require_writer("volume:delete")?;
        if request.force {
            caller.require_admin("volume:force_delete")?;
        }
        self.mark_deleting(id, request, |v| caller.owns(&v.project_id))
            .await
    }

    /// Marks the volume (and with a cascade its snapshots) for the agent to delete, if
    /// `visible` says the volume is there for whoever asks.
    pub(crate) async fn mark_deleting(
        &self,
        id: &str,
        request: DeleteRequest,
        visible: impl Fn(&Volume) -> bool,
    ) -> Result<()> {
        // One write transaction: a refused delete (the volume's or one of its snapshots'
        // state) marks nothing, a cascade marks everything.
        let mut tx = store::begin_write(&self.pool).await?;
        let Versioned {
            doc: mut volume,
            revision,
        } = match store::volume(&mut *tx, id).await? {
            Some(v) if visible(&v.doc) => v,
            _ => return Err(Error::volume_not_found(id)),
        };
        let snapshots = store::snapshots_of_volume(&mut *tx, id).await?;
        // Not even forced: the disk is plugged into a server (detach it first).
        if !volume.attachments.is_empty() {
            return Err(Error::invalid_volume(format!(
                "Volume {id} is attached to server {}: detach it first.",
                volume.attachments[0].server_id
            )));
        }
        if (!request.force && !DELETABLE.contains(&volume.status))
            || (!snapshots.is_empty() && !request.cascade)
        {
            return Err(Error::invalid_volume(
                "Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
            ));
        }
        // A copy being made reads this volume's file.
        let copying = store::volumes_in_status(&mut *tx, VolumeStatus::Creating)
            .await?
            .into_iter()
            .any(
                |v| matches!(&v.doc.source, VolumeSource::Volume { volume_id } if volume_id == id),
            );
        if copying {
            return Err(Error::invalid_volume(format!(
                "Volume {id} is being copied into a new volume; delete it when that is done."
            )));
        }
        let now = now_micros();
        for Versioned { mut doc, revision } in snapshots {
            if doc.status == SnapshotStatus::Deleting {
                continue;
            }
            let busy = store::volumes_on_snapshot(&mut *tx, &doc.id).await?;
            check_snapshot_deletable(&doc, &busy)?;
            doc.status = SnapshotStatus::Deleting;
            doc.updated_at = Some(now);
            if !store::update_snapshot(&mut *tx, &doc, revision).await? {
                return Err(Error::Conflict(format!(
                    "Snapshot {} changed while volume {id} was being deleted; try again.",
                    doc.id
                )));
            }
        }
        volume.status = VolumeStatus::Deleting;
        volume.updated_at = Some(now);
        if !store::update_volume(&mut *tx, &volume, revision).await? {
            return Err(Error::Conflict(format!(
                "Volume {id} changed while it was being deleted; try again."
            )));
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    pub async fn volume_action(
        &self,
        caller: &Caller,
        id: &str,
        action: VolumeAction,
    ) -> Result<()> {
        match action {
            VolumeAction::Extend {
                new_size,
                attached_ok,
            } => self.extend(caller, id, new_size, attached_ok).await,
            VolumeAction::SetBootable(bootable) => {
                caller.require_writer("volume:update")?;
                self.modify(caller, id, |v| {
                    v.bootable = bootable;
                    Ok(())
                })
                .await
                .map(drop)
            }
            VolumeAction::SetReadOnly(read_only) => {
                caller.require_writer("volume:update_readonly_flag")?;
                self.modify(caller, id, |v| {
                    v.read_only = read_only;
                    Ok(())
                })
                .await
                .map(drop)
            }
            VolumeAction::ResetStatus { status } => {
                caller.require_admin("volume_extension:volume_admin_actions:reset_status")?;
                if status.is_some_and(|s| VolumeStatus::PENDING.contains(&s)) {
                    return Err(Error::Invalid(
                        "A reset to creating, extending or deleting would start that work; use os-force_delete to delete.".into(),
                    ));
                }
                self.modify(caller, id, |v| {
                    if let Some(status) = status {
                        v.status = status;
                        v.extend_to = None;
                    }
                    Ok(())
                })
                .await
                .map(drop)
            }
            VolumeAction::Attach { server_id } => self
                .attach_to_server(caller, id, &server_id)
                .await
                .map(drop),
            VolumeAction::Detach { attachment_id } => self
                .detach_from_server(caller, id, attachment_id.as_deref())
                .await
                .map(drop),
            VolumeAction::UploadImage(request) => {
                self.upload_to_image(caller, id, request).await.map(drop)
            }
            VolumeAction::ForceDelete => {
                caller.require_admin("volume_extension:volume_admin_actions:force_delete")?;
                self.delete_volume(
                    caller,
                    id,
                    DeleteRequest {
                        force: true,
                        cascade: false,
                    },
                )
                .await
            }
        }
    }

    /// `os-extend`: an available volume grows, and the agent grows its file; one attached
    /// to a server (`attached_ok`: 3.42 and later) grows under the guest, by the server's
    /// host.
    async fn extend(
        &self,
        caller: &Caller,
        id: &str,
        new_size: u64,
        attached_ok: bool,
    ) -> Result<()> {
        caller.require_writer("volume:extend")?;
        let Versioned { mut doc, revision } = self.find_volume(caller, id).await?;
        let server = match doc.status {
            VolumeStatus::Available => None,
            VolumeStatus::InUse if attached_ok => Some(extended_server(&doc)?),
            status => {
                let expected = if attached_ok {
                    "'available' or 'in-use'"
                } else {
                    "'available'"
                };
                return Err(Error::invalid_volume(format!(
                    "Volume {id} status must be {expected} to extend, currently {status}."
                )));
            }
        };
        if new_size <= doc.size {
            return Err(Error::invalid_input(format!(
                "New size for extend must be greater than current size. (current: {}, extended: {new_size}).",
                doc.size
            )));
        }
        let attacher = server.as_ref().map(|_| self.attacher()).transpose()?;
        let mut tx = store::begin_write(&self.pool).await?;
        self.check_extend_quota(&mut tx, &doc.project_id, doc.size, new_size)
            .await?;
        let before = doc.status;
        doc.status = VolumeStatus::Extending;
        doc.extend_to = Some(new_size);
        doc.updated_at = Some(now_micros());
        if !store::update_volume(&mut *tx, &doc, revision).await? {
            return Err(Error::Conflict(format!(
                "Volume {id} changed while it was being extended; try again."
            )));
        }
        tx.commit().await?;
        if let (Some(server), Some(attacher)) = (server, attacher)
            && let Err(refused) = attacher.grow(caller, &server, id, new_size).await
        {
            self.undo_extend(id, new_size, before).await;
            return Err(refused);
        }
        self.changed();
        Ok(())
    }

    /// Puts a volume whose extend compute refused back as it was; a volume moved on
    /// meanwhile stays as it is.
    async fn undo_extend(&self, id: &str, new_size: u64, before: VolumeStatus) {
        let undone = async {
            let Some(Versioned { mut doc, revision }) = store::volume(&self.pool, id).await? else {
                return Ok(());
            };
            if doc.status == VolumeStatus::Extending && doc.extend_to == Some(new_size) {
                doc.status = before;
                doc.extend_to = None;
                store::update_volume(&self.pool, &doc, revision).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(error) = undone.await {
            tracing::warn!(volume = id, %error, "cannot undo a refused extend");
        }
    }
}

/// The one server an in-use volume is extended under: growing a disk under several guests
/// at once is not supported (each would need its own resize).
fn extended_server(volume: &Volume) -> Result<String> {
    match volume.attachments.as_slice() {
        [one] if one.status == AttachStatus::Attached => Ok(one.server_id.clone()),
        _ => Err(Error::invalid_volume(format!(
            "Volume {} is attached to more than one server; detach it from all but one to extend it.",
            volume.id
        ))),
    }
}
