//! Work the block storage service asks of the server an attached volume is plugged into:
//! growing it (Cinder 3.42's extend of an in-use volume) and copying it for a snapshot
//! (`force`, or 3.66). The request is recorded on the server's attachment; the server's
//! host does it (QMP `block_resize` / `blockdev-backup` under a running guest, the file of a
//! stopped one) and reports back through [`Computes::volume_grown`] and
//! [`Computes::volume_copied`].

use super::volume_attachments::{WRITE_TRIES, not_attached};
use crate::error::{Error, Result};
use crate::model::{VolumeAttachState, VolumeAttachment};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::{self, VmState};
use crate::store;

/// The states such work can be done in: under a running or paused guest, or on the file
/// of a stopped one (a suspended guest's saved state holds the disk as it was).
const WORKABLE: [VmState; 3] = [VmState::Active, VmState::Paused, VmState::Stopped];

impl Computes {
    /// Asks the server's host to grow its attachment of `volume_id` to `size_gb`.
    pub async fn grow_attached_volume(
        &self,
        caller: &Caller,
        server_id: &str,
        volume_id: &str,
        size_gb: u64,
    ) -> Result<()> {
        self.ask_host(server_id, volume_id, "extend_volume", |a| {
            a.grow_to_gb = Some(size_gb);
        })
        .await?;
        self.record_action(caller, server_id, "extend_volume").await;
        Ok(())
    }

    /// Asks the server's host to copy its attached `volume_id` into snapshot `snapshot_id`.
    pub async fn copy_attached_volume(
        &self,
        server_id: &str,
        volume_id: &str,
        snapshot_id: &str,
    ) -> Result<()> {
        self.ask_host(server_id, volume_id, "snapshot_volume", |a| {
            a.copies.push(snapshot_id.to_owned());
        })
        .await
    }

    /// The host gave the guest the volume's new size (`Ok`) or could not (`Err`: the volume
    /// is `error_extending`, as Cinder leaves it); either way the request is done.
    pub async fn volume_grown(
        &self,
        server_id: &str,
        attachment: &VolumeAttachment,
        outcome: std::result::Result<(), String>,
    ) -> Result<()> {
        if let Err(error) = &outcome {
            tracing::warn!(server = server_id, volume = %attachment.volume_id, %error, "cannot grow the attached volume");
        }
        self.volumes
            .grown_in_guest(&attachment.volume_id, outcome)
            .await?;
        self.done_on_host(server_id, attachment, |a| {
            (a.grow_to_gb == attachment.grow_to_gb).then(|| a.grow_to_gb = None)
        })
        .await
    }

    /// The host copied the volume into its snapshot (`Ok`) or could not (`Err`: the
    /// snapshot is in `error`).
    pub async fn volume_copied(
        &self,
        server_id: &str,
        attachment: &VolumeAttachment,
        snapshot: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<()> {
        if let Err(error) = &outcome {
            tracing::warn!(server = server_id, volume = %attachment.volume_id, snapshot, %error, "cannot copy the attached volume");
        }
        self.volumes.copied_in_guest(snapshot, outcome).await?;
        self.done_on_host(server_id, attachment, |a| {
            let i = a.copies.iter().position(|c| c == snapshot)?;
            a.copies.remove(i);
            Some(())
        })
        .await
    }

    /// Records `ask` on the server's attachment of `volume_id`, for its host.
    async fn ask_host(
        &self,
        server_id: &str,
        volume_id: &str,
        action: &str,
        ask: impl Fn(&mut VolumeAttachment),
    ) -> Result<()> {
        for _ in 0..WRITE_TRIES {
            let record = store::server(&self.pool, server_id).await?.ok_or_else(|| {
                Error::NotFound(format!("Instance {server_id} could not be found."))
            })?;
            let mut server = record.doc;
            states::check(&server, action, &WORKABLE, None)?;
            let attachment = server
                .volumes
                .iter_mut()
                .find(|v| v.volume_id == volume_id && v.state == VolumeAttachState::Attached)
                .ok_or_else(|| not_attached(volume_id))?;
            ask(attachment);
            let host = server.host.clone();
            if self.finish(server, record.revision).await? {
                self.changed_on(host.as_deref());
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "Instance {server_id} is being changed by others; try again."
        )))
    }

    /// Clears what the host did from the attachment (`clear` says whether it was still
    /// the same request), compare-and-set.
    async fn done_on_host(
        &self,
        server_id: &str,
        attachment: &VolumeAttachment,
        clear: impl Fn(&mut VolumeAttachment) -> Option<()>,
    ) -> Result<()> {
        for _ in 0..WRITE_TRIES {
            let Some(record) = store::server(&self.pool, server_id).await? else {
                return Ok(());
            };
            let mut server = record.doc;
            let Some(entry) = server
                .volumes
                .iter_mut()
                .find(|v| v.attachment_id == attachment.attachment_id)
            else {
                return Ok(());
            };
            if clear(entry).is_none() {
                return Ok(());
            }
            if self.finish(server, record.revision).await? {
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "Instance {server_id} is being changed by others; its volume is settled on the next pass."
        )))
    }
}
