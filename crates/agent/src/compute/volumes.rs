//! Plugs a server's volumes in and out: a running or paused guest by hot-plug, a stopped
//! one in its saved spec (it gets them at its next start). Each outcome goes to compute,
//! which tells the block storage service.

use std::time::Duration;

use onestack_compute::model::{Server, VolumeAttachState, VolumeAttachment};
use onestack_virt::VolumeDisk;

use super::worker::Worker;
use super::{Error, Result};

/// How long a running guest gets to let go of a disk (TCG guests are slow to answer the
/// ACPI unplug request).
const UNPLUG_WAIT: Duration = Duration::from_secs(60);

impl Worker {
    /// Settles every attachment waiting on this host; `Ok(false)` when one of them failed
    /// (recorded: the attachment is given back, or attached again).
    pub(super) async fn plug_volumes(&self, server: &Server) -> Result<bool> {
        let mut all_ok = true;
        for attachment in &server.volumes {
            let outcome = match attachment.state {
                VolumeAttachState::Attached => continue,
                VolumeAttachState::Attaching => {
                    let outcome = self.plug(server, attachment).await;
                    let outcome = outcome.map_err(|e| e.to_string());
                    all_ok &= outcome.is_ok();
                    self.computes
                        .volume_plugged(&server.id, attachment, outcome)
                        .await
                }
                VolumeAttachState::Detaching => {
                    let outcome = self
                        .driver
                        .detach_volume(&server.id, &attachment.volume_id, UNPLUG_WAIT)
                        .await
                        .map_err(|e| e.to_string());
                    all_ok &= outcome.is_ok();
                    self.computes
                        .volume_unplugged(&server.id, attachment, outcome)
                        .await
                }
            };
            outcome?;
        }
        Ok(all_ok)
    }

    async fn plug(&self, server: &Server, attachment: &VolumeAttachment) -> Result<()> {
        let target = self
            .computes
            .volumes
            .plug_target(&attachment.volume_id, &attachment.attachment_id)
            .await?
            .ok_or_else(|| {
                Error::Other(format!(
                    "volume {} has no attachment {} any more",
                    attachment.volume_id, attachment.attachment_id
                ))
            })?;
        if !target.local {
            return Err(Error::Other(format!(
                "volume {} is kept on another host",
                attachment.volume_id
            )));
        }
        let disk = VolumeDisk {
            volume_id: attachment.volume_id.clone(),
            path: self.volume_files.path(&attachment.volume_id)?,
            read_only: target.read_only,
        };
        self.driver.attach_volume(&server.id, &disk).await?;
        Ok(())
    }
}
