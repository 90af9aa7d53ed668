//! Attachments, as compute drives them: it reserves a volume for a server, reports the
//! disk plugged in (or not), asks to unplug it, and gives it back. The volume's status
//! follows its attachments, in the same compare-and-set write.

use onestack_db::now_micros;

use super::volume_input::DeleteRequest;
use super::volumes::WRITE_TRIES;
use crate::error::{Error, Result};
use crate::model::{AttachStatus, Attachment, Versioned, Volume, VolumeStatus};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store;

/// The statuses that only say where a volume's attachments are; others (an admin's reset
/// to `error`, `maintenance`) stay until someone moves them on.
const ATTACHMENT_STATUSES: [VolumeStatus; 5] = [
    VolumeStatus::Available,
    VolumeStatus::Reserved,
    VolumeStatus::Attaching,
    VolumeStatus::InUse,
    VolumeStatus::Detaching,
];

/// What the host plugging an attachment in needs to know.
#[derive(Debug, Clone)]
pub struct PlugTarget {
    pub read_only: bool,
    /// The volume's file is on this host.
    pub local: bool,
}

impl Volumes {
    /// Reserves the volume for `server_id` as `device`: an available volume, or an
    /// attached one whose type allows multiattach, gets an attachment in `attaching`.
    /// Another project's volume is not found.
    pub async fn reserve(
        &self,
        caller: &Caller,
        volume_id: &str,
        server_id: &str,
        device: &str,
    ) -> Result<Attachment> {
        caller.require_writer("volume:attachment_create")?;
        self.reserve_where(volume_id, server_id, device, |v| caller.owns(&v.project_id))
            .await
    }

    /// [`Volumes::reserve`] for a server of `project` that compute boots with the volume
    /// it made for it (the volume was the caller's when the server was asked for).
    pub async fn reserve_for_server(
        &self,
        project: &str,
        volume_id: &str,
        server_id: &str,
        device: &str,
    ) -> Result<Attachment> {
        self.reserve_where(volume_id, server_id, device, |v| v.project_id == project)
            .await
    }

    async fn reserve_where(
        &self,
        volume_id: &str,
        server_id: &str,
        device: &str,
        visible: impl Fn(&Volume) -> bool,
    ) -> Result<Attachment> {
        let mut reserved = None;
        self.modify_where(volume_id, visible, |v| {
            check_free(v, server_id)?;
            let attachment = Attachment {
                id: onestack_db::ids::uuid(),
                server_id: server_id.to_owned(),
                host: None,
                device: device.to_owned(),
                status: AttachStatus::Attaching,
                read_only: v.read_only,
                attached_at: None,
            };
            v.attachments.push(attachment.clone());
            settle_status(v);
            reserved = Some(attachment);
            Ok(())
        })
        .await?;
        reserved.ok_or_else(|| Error::Conflict(format!("Volume {volume_id} was not reserved.")))
    }

    /// The volume's status, whoever owns it (`None`: gone).
    pub async fn volume_status(&self, volume_id: &str) -> Result<Option<VolumeStatus>> {
        Ok(store::volume(&self.pool, volume_id)
            .await?
            .map(|v| v.doc.status))
    }

    /// Whether the caller may attach the volume to `server_id` now (and boot from it when
    /// `boot`), without reserving it.
    pub async fn check_attachable(
        &self,
        caller: &Caller,
        volume_id: &str,
        server_id: &str,
        boot: bool,
    ) -> Result<()> {
        let volume = self.get_volume(caller, volume_id).await?;
        check_free(&volume, server_id)?;
        if boot && !volume.bootable {
            return Err(Error::Invalid(format!(
                "Block Device {volume_id} is not bootable."
            )));
        }
        Ok(())
    }

    /// Every attachment of every volume, with its volume: for compute's start-up repair.
    pub async fn all_attachments(&self) -> Result<Vec<(String, Attachment)>> {
        Ok(store::volumes(&self.pool, None)
            .await?
            .into_iter()
            .flat_map(|v| {
                let id = v.id;
                v.attachments.into_iter().map(move |a| (id.clone(), a))
            })
            .collect())
    }

    /// What the host plugging the attachment in needs: `None` when the volume or the
    /// attachment is gone.
    pub async fn plug_target(
        &self,
        volume_id: &str,
        attachment_id: &str,
    ) -> Result<Option<PlugTarget>> {
        let Some(volume) = store::volume(&self.pool, volume_id).await? else {
            return Ok(None);
        };
        let volume = volume.doc;
        Ok(volume
            .attachments
            .iter()
            .find(|a| a.id == attachment_id)
            .map(|a| PlugTarget {
                read_only: a.read_only,
                local: volume.host == self.volume_host(),
            }))
    }

    /// The disk is plugged in on `host`: the attachment is attached, the volume in use.
    pub async fn attached(&self, volume_id: &str, attachment_id: &str, host: &str) -> Result<()> {
        self.change_attachment(volume_id, attachment_id, |a| {
            a.status = AttachStatus::Attached;
            a.host = Some(host.to_owned());
            a.attached_at = Some(now_micros());
            Ok(true)
        })
        .await
    }

    /// Starts unplugging: only an attached attachment can (Cinder's `begin_detaching`).
    pub async fn begin_detach(&self, volume_id: &str, attachment_id: &str) -> Result<()> {
        self.change_attachment(volume_id, attachment_id, |a| {
            if a.status != AttachStatus::Attached {
                return Err(Error::invalid_volume(format!(
                    "Unable to detach volume {volume_id}: it is {} now, and must be attached; try again when that is done.",
                    a.status
                )));
            }
            a.status = AttachStatus::Detaching;
            Ok(true)
        })
        .await
    }

    /// The guest did not let go: the attachment is attached again.
    pub async fn detach_failed(&self, volume_id: &str, attachment_id: &str) -> Result<()> {
        self.change_attachment(volume_id, attachment_id, |a| {
            a.status = AttachStatus::Attached;
            Ok(true)
        })
        .await
    }

    /// The disk is unplugged (or was never plugged in): the attachment goes, and with the
    /// last one the volume is available again. A missing volume or attachment is fine.
    pub async fn release(&self, volume_id: &str, attachment_id: &str) -> Result<()> {
        self.change_attachment(volume_id, attachment_id, |_| Ok(false))
            .await
    }

    /// A released volume a server of `project` was to take with it
    /// (`delete_on_termination`): deleted only while it is still that project's and
    /// available, in error, or still being made for the server (a volume being made is
    /// deleted after it is made: the agent works one volume at a time). A volume given to
    /// another project meanwhile, or busy with other work, stays.
    pub async fn delete_released(&self, volume_id: &str, project: &str) -> Result<()> {
        let request = DeleteRequest {
            force: true,
            cascade: false,
        };
        self.mark_deleting(volume_id, request, |v| {
            v.project_id == project
                && matches!(
                    v.status,
                    VolumeStatus::Creating | VolumeStatus::Available | VolumeStatus::Error
                )
        })
        .await
    }

    /// Applies `change` to the attachment (keep it: `true`; remove it: `false`) and settles
    /// the volume's status, compare-and-set, again from a fresh read when another writer
    /// came first. A missing volume or attachment changes nothing.
    async fn change_attachment(
        &self,
        volume_id: &str,
        attachment_id: &str,
        mut change: impl FnMut(&mut Attachment) -> Result<bool>,
    ) -> Result<()> {
        for _ in 0..WRITE_TRIES {
            let Some(Versioned { mut doc, revision }) =
                store::volume(&self.pool, volume_id).await?
            else {
                return Ok(());
            };
            let Some(i) = doc.attachments.iter().position(|a| a.id == attachment_id) else {
                return Ok(());
            };
            if !change(&mut doc.attachments[i])? {
                doc.attachments.remove(i);
            }
            settle_status(&mut doc);
            doc.updated_at = Some(now_micros());
            if store::update_volume(&self.pool, &doc, revision).await? {
                self.changed();
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "Volume {volume_id} is being changed by others; try again."
        )))
    }
}

/// Refuses unless the volume can take another attachment, for `server_id`.
fn check_free(v: &Volume, server_id: &str) -> Result<()> {
    if v.attachments.iter().any(|a| a.server_id == server_id) {
        return Err(Error::invalid_volume(format!(
            "volume {} is already attached to server {server_id}.",
            v.id
        )));
    }
    let free =
        v.status == VolumeStatus::Available || (v.multiattach && v.status == VolumeStatus::InUse);
    if !free {
        let why = if v.status == VolumeStatus::InUse {
            " (its type does not allow multiattach)"
        } else {
            ""
        };
        return Err(Error::invalid_volume(format!(
            "Volume {} status must be available to reserve, but the current status is {}{why}.",
            v.id, v.status
        )));
    }
    Ok(())
}

/// The status a volume's attachments give it: any being unplugged, any being plugged in,
/// any attached, or none.
fn settle_status(v: &mut Volume) {
    if !ATTACHMENT_STATUSES.contains(&v.status) {
        return;
    }
    let any = |s: AttachStatus| v.attachments.iter().any(|a| a.status == s);
    v.status = if any(AttachStatus::Detaching) {
        VolumeStatus::Detaching
    } else if any(AttachStatus::Attaching) {
        VolumeStatus::Attaching
    } else if any(AttachStatus::Attached) {
        VolumeStatus::InUse
    } else {
        VolumeStatus::Available
    };
}
