//! The block storage API's own attach and detach calls (the attachments API from 3.27,
//! `os-attach`, `os-detach`) go through compute, exactly as Nova's `os-volume_attachments`
//! does: the disk is really plugged in or out, and both services keep one record. Compute
//! depends on this crate, so it reaches back through [`ServerAttacher`], set at start.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{Attachment, Volume};
use crate::policy::Caller;
use crate::service::Volumes;
use crate::store;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Compute's attach and detach, with the caller's rights (Nova's policy and the server's
/// state apply).
pub trait ServerAttacher: Send + Sync {
    /// Attaches the volume to the server; returns the attachment's id.
    fn attach<'a>(
        &'a self,
        caller: &'a Caller,
        server_id: &'a str,
        volume_id: &'a str,
    ) -> BoxFuture<'a, Result<String>>;

    /// Asks the server's host to unplug the volume.
    fn detach<'a>(
        &'a self,
        caller: &'a Caller,
        server_id: &'a str,
        volume_id: &'a str,
    ) -> BoxFuture<'a, Result<()>>;

    /// Asks the server's host to give the guest the volume's new size, `size_gb`.
    fn grow<'a>(
        &'a self,
        caller: &'a Caller,
        server_id: &'a str,
        volume_id: &'a str,
        size_gb: u64,
    ) -> BoxFuture<'a, Result<()>>;

    /// Asks the server's host to copy the attached volume, as it is now, into snapshot
    /// `snapshot_id`.
    fn copy<'a>(
        &'a self,
        server_id: &'a str,
        volume_id: &'a str,
        snapshot_id: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
}

/// An attachment with the volume it belongs to.
#[derive(Debug, Clone)]
pub struct VolumeAttachmentView {
    pub volume_id: String,
    pub attachment: Attachment,
}

impl Volumes {
    /// Where the block storage API's attach calls go; set once, by the binary. Held weakly:
    /// compute holds the volumes, and a cycle would keep both (and the database pool) alive
    /// after the cloud stops.
    pub fn set_attacher(&self, attacher: &Arc<dyn ServerAttacher>) {
        let _ = self.attacher.set(Arc::downgrade(attacher));
    }

    pub(crate) fn attacher(&self) -> Result<Arc<dyn ServerAttacher>> {
        self.attacher
            .get()
            .and_then(std::sync::Weak::upgrade)
            .ok_or_else(|| {
                Error::Conflict("This cloud runs no compute service to attach volumes to.".into())
            })
    }

    /// Attaches the caller's volume to `server_id` through compute.
    pub async fn attach_to_server(
        &self,
        caller: &Caller,
        volume_id: &str,
        server_id: &str,
    ) -> Result<Attachment> {
        caller.require_writer("volume:attachment_create")?;
        self.get_volume(caller, volume_id).await?;
        let id = self
            .attacher()?
            .attach(caller, server_id, volume_id)
            .await?;
        self.find_attachment(caller, &id)
            .await
            .map(|found| found.attachment)
    }

    /// Detaches through compute; `attachment_id` may be left out when the volume has one.
    pub async fn detach_from_server(
        &self,
        caller: &Caller,
        volume_id: &str,
        attachment_id: Option<&str>,
    ) -> Result<Volume> {
        caller.require_writer("volume:attachment_delete")?;
        self.detach_checked(caller, volume_id, attachment_id).await
    }

    /// Detaches the attachment (of a volume the caller sees) through compute.
    pub async fn detach_attachment(&self, caller: &Caller, id: &str) -> Result<Volume> {
        caller.require_writer("volume:attachment_delete")?;
        let found = self.find_attachment(caller, id).await?;
        self.detach_checked(caller, &found.volume_id, Some(id))
            .await
    }

    async fn detach_checked(
        &self,
        caller: &Caller,
        volume_id: &str,
        attachment_id: Option<&str>,
    ) -> Result<Volume> {
        let volume = self.get_volume(caller, volume_id).await?;
        let attachment = match attachment_id {
            Some(id) => volume.attachments.iter().find(|a| a.id == id),
            None if volume.attachments.len() == 1 => volume.attachments.first(),
            None => None,
        }
        .ok_or_else(|| {
            Error::invalid_volume(format!(
                "volume {volume_id} has no such attachment; name one of its attachments."
            ))
        })?;
        self.attacher()?
            .detach(caller, &attachment.server_id, volume_id)
            .await?;
        self.get_volume(caller, volume_id).await
    }

    /// The attachments of the volumes the caller sees (every project's for an admin who
    /// asks), newest volume first.
    pub async fn list_attachments(
        &self,
        caller: &Caller,
        all_projects: bool,
    ) -> Result<Vec<VolumeAttachmentView>> {
        let project = (!(caller.admin && all_projects)).then_some(caller.project_id.as_str());
        Ok(store::volumes(&self.pool, project)
            .await?
            .into_iter()
            .flat_map(|v| {
                let volume_id = v.id;
                v.attachments
                    .into_iter()
                    .map(move |attachment| VolumeAttachmentView {
                        volume_id: volume_id.clone(),
                        attachment,
                    })
            })
            .collect())
    }

    /// One attachment of a volume the caller sees.
    pub async fn find_attachment(&self, caller: &Caller, id: &str) -> Result<VolumeAttachmentView> {
        self.list_attachments(caller, caller.admin)
            .await?
            .into_iter()
            .find(|a| a.attachment.id == id)
            .ok_or_else(|| Error::NotFound(format!("Volume attachment {id} could not be found.")))
    }
}
