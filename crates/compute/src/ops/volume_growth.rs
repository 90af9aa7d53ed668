//! Growing a volume a server has attached (Cinder 3.42's extend of an in-use volume): the
//! block storage service grows the volume's record and asks here; the server's host gives
//! the guest the new size (QMP `block_resize` under a running guest, the file of a stopped
//! one) and reports back through [`Computes::volume_grown`].

use super::volume_attachments::{WRITE_TRIES, not_attached};
use crate::error::{Error, Result};
use crate::model::{VolumeAttachState, VolumeAttachment};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::{self, VmState};
use crate::store;

/// The states a guest's volume can grow in: under a running or paused guest, or in the
/// file of a stopped one (a suspended guest's saved state holds the old size).
const GROWABLE: [VmState; 3] = [VmState::Active, VmState::Paused, VmState::Stopped];

impl Computes {
    /// Asks the server's host to grow its attachment of `volume_id` to `size_gb`.
    pub async fn grow_attached_volume(
        &self,
        caller: &Caller,
        server_id: &str,
        volume_id: &str,
        size_gb: u64,
    ) -> Result<()> {
        for _ in 0..WRITE_TRIES {
            let record = store::server(&self.pool, server_id).await?.ok_or_else(|| {
                Error::NotFound(format!("Instance {server_id} could not be found."))
            })?;
            let mut server = record.doc;
            states::check(&server, "extend_volume", &GROWABLE, None)?;
            let attachment = server
                .volumes
                .iter_mut()
                .find(|v| v.volume_id == volume_id && v.state == VolumeAttachState::Attached)
                .ok_or_else(|| not_attached(volume_id))?;
            attachment.grow_to_gb = Some(size_gb);
            if self.finish(server, record.revision).await? {
                self.changed();
                self.record_action(caller, server_id, "extend_volume").await;
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "Instance {server_id} is being changed by others; try the extend again."
        )))
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
        for _ in 0..WRITE_TRIES {
            let Some(record) = store::server(&self.pool, server_id).await? else {
                return Ok(());
            };
            let mut server = record.doc;
            let Some(entry) = server.volumes.iter_mut().find(|v| {
                v.attachment_id == attachment.attachment_id && v.grow_to_gb == attachment.grow_to_gb
            }) else {
                return Ok(());
            };
            entry.grow_to_gb = None;
            if self.finish(server, record.revision).await? {
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "Instance {server_id} is being changed by others; its volume is settled on the next pass."
        )))
    }
}
