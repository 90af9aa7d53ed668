//! Plugs a server's volumes in and out: a running or paused guest by hot-plug, a stopped
//! one in its saved spec (it gets them at its next start); grows the ones the block
//! storage service extended and copies the ones it snapshots. Each outcome goes to
//! compute, which tells the block storage service.

use std::time::Duration;

use onestack_compute::model::{Server, VolumeAttachState, VolumeAttachment};
use onestack_virt::{GIB, VolumeDisk, VolumeFiles};
use onestack_volume::model::VolumeStatus;

use super::controller::Controller;
use super::worker::Worker;
use super::{Error, Result};

/// How long a running guest gets to let go of a disk (TCG guests are slow to answer the
/// ACPI unplug request).
const UNPLUG_WAIT: Duration = Duration::from_secs(60);
/// How long a boot waits for the block storage service to make its volumes (an image
/// converted into a volume takes as long as the image is large).
const VOLUME_WAIT: Duration = Duration::from_secs(600);

impl<C: Controller> Worker<C> {
    /// Compute and the block storage service in process: only the host keeping the volume
    /// files plugs volumes in.
    fn in_process(&self) -> Result<&onestack_compute::Computes> {
        self.controller.in_process().ok_or_else(no_volumes_here)
    }

    fn files(&self) -> Result<&VolumeFiles> {
        self.volume_files.as_ref().ok_or_else(no_volumes_here)
    }

    /// Settles every attachment waiting on this host; `Ok(false)` when one of them failed
    /// (recorded: the attachment is given back, or attached again).
    pub(super) async fn plug_volumes(&self, server: &Server) -> Result<bool> {
        let mut all_ok = true;
        for attachment in &server.volumes {
            let outcome = match attachment.state {
                VolumeAttachState::Attached => {
                    all_ok &= self.host_work(server, attachment).await?;
                    continue;
                }
                VolumeAttachState::Attaching => {
                    let outcome = self.plug(server, attachment).await;
                    let outcome = outcome.map_err(|e| e.to_string());
                    all_ok &= outcome.is_ok();
                    self.in_process()?
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
                    self.in_process()?
                        .volume_unplugged(&server.id, attachment, outcome)
                        .await
                }
            };
            outcome?;
        }
        Ok(all_ok)
    }

    /// The volumes a server boots with, each reserved for it (the ones made for it once
    /// the block storage service has made them) and as the driver plugs them in.
    pub(super) async fn boot_volumes(
        &self,
        server: &Server,
    ) -> Result<Vec<(VolumeAttachment, VolumeDisk)>> {
        let mut out = Vec::new();
        for attachment in &server.volumes {
            let mut attachment = attachment.clone();
            if attachment.attachment_id.is_empty() {
                self.wait_made(&attachment.volume_id).await?;
                let reserved = self
                    .in_process()?
                    .volumes
                    .reserve_for_server(
                        &server.project_id,
                        &attachment.volume_id,
                        &server.id,
                        &attachment.device,
                    )
                    .await?;
                attachment.attachment_id = reserved.id;
                // Recorded at once, so that a delete of the server gives it back.
                self.in_process()?
                    .record_reservation(&server.id, &attachment)
                    .await?;
            }
            let disk = self.disk_of(&attachment).await?;
            out.push((attachment, disk));
        }
        Ok(out)
    }

    /// Waits until the block storage service has made the volume.
    async fn wait_made(&self, volume_id: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + VOLUME_WAIT;
        loop {
            match self.in_process()?.volumes.volume_status(volume_id).await? {
                Some(VolumeStatus::Available) => return Ok(()),
                Some(VolumeStatus::Creating) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Some(VolumeStatus::Creating) => {
                    return Err(Error::Other(format!(
                        "volume {volume_id} was not made within {}s",
                        VOLUME_WAIT.as_secs()
                    )));
                }
                other => {
                    return Err(Error::Other(format!(
                        "volume {volume_id} could not be made for the server: it is {}",
                        other.map_or("gone", VolumeStatus::as_str)
                    )));
                }
            }
        }
    }

    /// Gives the guest the volume's new size.
    async fn grow(
        &self,
        server: &Server,
        attachment: &VolumeAttachment,
        size_gb: u64,
    ) -> Result<()> {
        let bytes = size_gb
            .checked_mul(GIB)
            .ok_or_else(|| Error::Other(format!("{size_gb} GiB is too large a volume")))?;
        self.driver
            .resize_volume(&server.id, &attachment.volume_id, bytes)
            .await?;
        Ok(())
    }

    /// Does what the block storage service asked of an attached volume: the copies for its
    /// snapshots first (they were asked for before any extend), then the extend; each
    /// outcome is reported. `Ok(false)` when one of them failed.
    async fn host_work(&self, server: &Server, attachment: &VolumeAttachment) -> Result<bool> {
        let mut all_ok = true;
        for snapshot in &attachment.copies {
            let outcome = self.copy(server, attachment, snapshot).await;
            let outcome = outcome.map_err(|e| e.to_string());
            all_ok &= outcome.is_ok();
            self.in_process()?
                .volume_copied(&server.id, attachment, snapshot, outcome)
                .await?;
        }
        if let Some(size_gb) = attachment.grow_to_gb {
            let outcome = self.grow(server, attachment, size_gb).await;
            let outcome = outcome.map_err(|e| e.to_string());
            all_ok &= outcome.is_ok();
            self.in_process()?
                .volume_grown(&server.id, attachment, outcome)
                .await?;
        }
        Ok(all_ok)
    }

    /// Copies the volume, as it is now, into the snapshot's file on this host.
    async fn copy(
        &self,
        server: &Server,
        attachment: &VolumeAttachment,
        snapshot: &str,
    ) -> Result<()> {
        let dest = self.files()?.snapshot_path(snapshot)?;
        self.driver
            .snapshot_volume(&server.id, &attachment.volume_id, &dest)
            .await?;
        Ok(())
    }

    async fn plug(&self, server: &Server, attachment: &VolumeAttachment) -> Result<()> {
        let disk = self.disk_of(attachment).await?;
        self.driver.attach_volume(&server.id, &disk).await?;
        Ok(())
    }

    /// The disk of a reserved attachment, on this host.
    async fn disk_of(&self, attachment: &VolumeAttachment) -> Result<VolumeDisk> {
        let target = self
            .in_process()?
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
        Ok(VolumeDisk {
            volume_id: attachment.volume_id.clone(),
            path: self.files()?.path(&attachment.volume_id)?,
            read_only: target.read_only,
        })
    }
}

fn no_volumes_here() -> Error {
    Error::Other("this host plugs in no volumes: they are kept on the controller's host".into())
}
