//! Volumes attached to servers (`os-volume_attachments`): the block storage service
//! reserves the volume, the server records the attachment, and the server's host plugs the
//! disk in or out (a running guest by hot-plug, a stopped one at its next start) and
//! reports back through [`Computes::volume_plugged`] and [`Computes::volume_unplugged`].

use onestack_api::ApiError;
use onestack_db::ids;
use onestack_volume::ops::server_attach::{BoxFuture, ServerAttacher};

use super::volume_input::{AttachVolume, AttachmentUpdate};
use crate::error::{Error, Result};
use crate::model::{Server, VolumeAttachState, VolumeAttachment};
use crate::policy::Caller;
use crate::service::Computes;
use crate::states::{self, VmState};
use crate::store;

/// The states a volume may be attached in: a running or paused guest takes it at once, a
/// stopped one at its next start.
const ATTACHABLE: [VmState; 3] = [VmState::Active, VmState::Paused, VmState::Stopped];
/// Detaching needs a guest that answers the unplug request, or none running.
const DETACHABLE: [VmState; 2] = [VmState::Active, VmState::Stopped];

/// Tries of the host's compare-and-set writes before giving up for this pass.
pub(super) const WRITE_TRIES: usize = 8;

impl Computes {
    pub async fn volume_attachments(
        &self,
        caller: &Caller,
        server_id: &str,
    ) -> Result<Vec<VolumeAttachment>> {
        Ok(self.get_server(caller, server_id).await?.doc.volumes)
    }

    pub async fn volume_attachment(
        &self,
        caller: &Caller,
        server_id: &str,
        volume_id: &str,
    ) -> Result<VolumeAttachment> {
        self.volume_attachments(caller, server_id)
            .await?
            .into_iter()
            .find(|v| v.volume_id == volume_id)
            .ok_or_else(|| not_attached(volume_id))
    }

    /// Reserves the volume for the server and records the attachment; the server's host
    /// plugs it in. The reservation is given back when the server changed meanwhile.
    pub async fn attach_volume(
        &self,
        caller: &Caller,
        server_id: &str,
        request: AttachVolume,
    ) -> Result<VolumeAttachment> {
        caller.require_writer("os-volumes-attachments:create")?;
        let current = self.get_server(caller, server_id).await?;
        let mut server = current.doc;
        self.check_lock(caller, &server)?;
        states::check(&server, "attach_volume", &ATTACHABLE, None)?;
        self.require_plugs(&server, super::hosts::Plug::Volumes)
            .await?;
        if server
            .volumes
            .iter()
            .any(|v| v.volume_id == request.volume_id)
        {
            return Err(Error::BadRequest(format!(
                "Invalid volume: volume {} already attached",
                request.volume_id
            )));
        }
        let taken: Vec<&str> = server.volumes.iter().map(|v| v.device.as_str()).collect();
        let device = next_device(
            own_disks(server.flavor.ephemeral, server.flavor.swap),
            &taken,
        );
        let reserved = self
            .volumes
            .reserve(caller, &request.volume_id, server_id, &device)
            .await?;
        let attachment = VolumeAttachment {
            volume_id: request.volume_id,
            attachment_id: reserved.id,
            bdm_id: ids::uuid(),
            device,
            tag: request.tag,
            delete_on_termination: request.delete_on_termination,
            boot_index: None,
            state: VolumeAttachState::Attaching,
            grow_to_gb: None,
            copies: Vec::new(),
        };
        server.volumes.push(attachment.clone());
        if let Err(e) = self.save(server, current.revision).await {
            self.give_back(&attachment).await;
            return Err(e);
        }
        self.record_action(caller, server_id, "attach_volume").await;
        Ok(attachment)
    }

    /// Asks the server's host to unplug the volume.
    pub async fn detach_volume(
        &self,
        caller: &Caller,
        server_id: &str,
        volume_id: &str,
    ) -> Result<()> {
        caller.require_writer("os-volumes-attachments:delete")?;
        let current = self.get_server(caller, server_id).await?;
        let mut server = current.doc;
        self.check_lock(caller, &server)?;
        states::check(&server, "detach_volume", &DETACHABLE, None)?;
        let attachment = server
            .volumes
            .iter_mut()
            .find(|v| v.volume_id == volume_id)
            .ok_or_else(|| not_attached(volume_id))?;
        if attachment.is_root() {
            return Err(Error::BadRequest(
                "Cannot detach a root device volume".into(),
            ));
        }
        if attachment.state != VolumeAttachState::Attached {
            return Err(Error::BadRequest(format!(
                "Invalid volume: volume {volume_id} is {} now; try again when that is done.",
                attachment.state
            )));
        }
        if attachment.has_host_work() {
            return Err(Error::Conflict(format!(
                "Volume {volume_id} is being extended or copied on this instance; detach it when that is done."
            )));
        }
        self.volumes
            .begin_detach(volume_id, &attachment.attachment_id)
            .await?;
        attachment.state = VolumeAttachState::Detaching;
        let attachment_id = attachment.attachment_id.clone();
        if let Err(e) = self.save(server, current.revision).await {
            let _ = self.volumes.detach_failed(volume_id, &attachment_id).await;
            return Err(e);
        }
        self.record_action(caller, server_id, "detach_volume").await;
        Ok(())
    }

    /// `PUT os-volume_attachments/{volume_id}`: whether the volume goes with the server
    /// (2.85). Swapping in another volume is not offered.
    pub async fn update_volume_attachment(
        &self,
        caller: &Caller,
        server_id: &str,
        volume_id: &str,
        update: AttachmentUpdate,
    ) -> Result<()> {
        if update.volume_id != volume_id {
            caller.require_admin("os-volumes-attachments:swap")?;
            return Err(Error::BadRequest(
                "Swapping an attached volume for another is not supported: detach it and attach the other.".into(),
            ));
        }
        caller.require_writer("os-volumes-attachments:update")?;
        let current = self.get_server(caller, server_id).await?;
        let mut server = current.doc;
        self.check_lock(caller, &server)?;
        let attachment = server
            .volumes
            .iter_mut()
            .find(|v| v.volume_id == volume_id)
            .ok_or_else(|| not_attached(volume_id))?;
        let Some(delete) = update.delete_on_termination else {
            return Ok(());
        };
        attachment.delete_on_termination = delete;
        self.save(server, current.revision).await.map(drop)
    }

    /// The host plugged the disk in (`Ok`) or could not (`Err`, the attachment goes and the
    /// reservation is given back). The server settles first, as for an unplug: a volume
    /// turns `in-use` only once its server lists it attached, so a client that waits for
    /// `in-use` can detach at once. A crash in between leaves a reservation the server
    /// lists as attached (or not at all), which the next start repairs.
    pub async fn volume_plugged(
        &self,
        server_id: &str,
        attachment: &VolumeAttachment,
        outcome: std::result::Result<(), String>,
    ) -> Result<()> {
        let next = outcome.is_ok().then_some(VolumeAttachState::Attached);
        let settled = self
            .settle_attachment(
                server_id,
                &attachment.attachment_id,
                VolumeAttachState::Attaching,
                next,
            )
            .await?;
        match &outcome {
            // Not settled: the server is gone or let go of it meanwhile, and whoever did
            // gave the reservation back.
            Ok(()) if settled => {
                self.volumes
                    .attached(&attachment.volume_id, &attachment.attachment_id, &self.host)
                    .await?;
            }
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(server = server_id, volume = %attachment.volume_id, %error, "cannot attach volume");
                self.give_back(attachment).await;
            }
        }
        Ok(())
    }

    /// The host unplugged the disk (`Ok`: the attachment goes) or the guest kept it
    /// (`Err`: attached again, the user may retry). The server lets go first, so that a
    /// volume is never `available` while its server still lists it (a crash in between
    /// leaves an attachment no server holds, which the next start releases).
    pub async fn volume_unplugged(
        &self,
        server_id: &str,
        attachment: &VolumeAttachment,
        outcome: std::result::Result<(), String>,
    ) -> Result<()> {
        let next = outcome.is_err().then_some(VolumeAttachState::Attached);
        self.settle_attachment(
            server_id,
            &attachment.attachment_id,
            VolumeAttachState::Detaching,
            next,
        )
        .await?;
        match &outcome {
            Ok(()) => self.give_back(attachment).await,
            Err(error) => {
                tracing::warn!(server = server_id, volume = %attachment.volume_id, %error, "cannot detach volume");
                self.volumes
                    .detach_failed(&attachment.volume_id, &attachment.attachment_id)
                    .await?;
            }
        }
        Ok(())
    }

    /// Records the reservation the host made for a volume made for the server at its
    /// create.
    pub async fn record_reservation(
        &self,
        server_id: &str,
        attachment: &VolumeAttachment,
    ) -> Result<()> {
        for _ in 0..WRITE_TRIES {
            let Some(record) = store::server(&self.pool, server_id).await? else {
                // The server is gone meanwhile: nothing will use the reservation.
                self.give_back(attachment).await;
                return Ok(());
            };
            let mut server = record.doc;
            let Some(entry) = server
                .volumes
                .iter_mut()
                .find(|v| v.volume_id == attachment.volume_id)
            else {
                self.give_back(attachment).await;
                return Ok(());
            };
            entry.attachment_id.clone_from(&attachment.attachment_id);
            if self.finish(server, record.revision).await? {
                return Ok(());
            }
        }
        Err(Error::Conflict(format!(
            "Instance {server_id} is being changed by others; its boot is retried."
        )))
    }

    /// Repairs what a crash between the two services' writes can leave, at start (no
    /// request is in flight then): an attachment the block storage service holds for a
    /// server that is gone or does not list it is released; one it has `detaching` for a
    /// server that still lists it attached is attached again, so a detach can be retried;
    /// one still `attaching` for a server that lists it attached (the plug's last write
    /// was cut short) is attached. Returns how many it repaired.
    pub async fn repair_attachments(&self) -> Result<usize> {
        let mut repaired = 0;
        for (volume_id, attachment) in self.volumes.all_attachments().await? {
            let server = store::server(&self.pool, &attachment.server_id).await?;
            let listed = server.as_ref().and_then(|s| {
                s.doc
                    .volumes
                    .iter()
                    .find(|v| v.attachment_id == attachment.id)
            });
            match listed {
                None => {
                    tracing::warn!(volume = %volume_id, server = %attachment.server_id, "releasing an attachment its server does not hold");
                    self.volumes.release(&volume_id, &attachment.id).await?;
                    repaired += 1;
                }
                Some(v)
                    if v.state == VolumeAttachState::Attached
                        && attachment.status == onestack_volume::model::AttachStatus::Detaching =>
                {
                    tracing::warn!(volume = %volume_id, server = %attachment.server_id, "a detach was cut short: the volume is attached again");
                    self.volumes
                        .detach_failed(&volume_id, &attachment.id)
                        .await?;
                    repaired += 1;
                }
                Some(v)
                    if v.state == VolumeAttachState::Attached
                        && attachment.status == onestack_volume::model::AttachStatus::Attaching =>
                {
                    tracing::warn!(volume = %volume_id, server = %attachment.server_id, "an attach was cut short: the volume is marked attached");
                    self.volumes
                        .attached(&volume_id, &attachment.id, &self.host)
                        .await?;
                    repaired += 1;
                }
                Some(_) => {}
            }
        }
        Ok(repaired)
    }

    /// Gives every volume of a deleted server back, deleting those that were to go with
    /// it; a failure is logged (the volume stays for an admin to deal with).
    pub(crate) async fn release_volumes(&self, server: &Server) {
        for attachment in &server.volumes {
            self.give_back(attachment).await;
            if attachment.delete_on_termination
                && let Err(error) = self
                    .volumes
                    .delete_released(&attachment.volume_id, &server.project_id)
                    .await
            {
                tracing::warn!(server = %server.id, volume = %attachment.volume_id, %error, "cannot delete the volume with its server");
            }
        }
    }

    pub(super) async fn give_back(&self, attachment: &VolumeAttachment) {
        if let Err(error) = self
            .volumes
            .release(&attachment.volume_id, &attachment.attachment_id)
            .await
        {
            tracing::warn!(volume = %attachment.volume_id, %error, "cannot release the volume's attachment");
        }
    }

    /// Moves the attachment from the state the host's work was for to `next` (`None`:
    /// removes it); compare-and-set, again from a fresh read. `false` when the server is
    /// gone or no longer holds the attachment in that state.
    async fn settle_attachment(
        &self,
        server_id: &str,
        attachment_id: &str,
        from: VolumeAttachState,
        next: Option<VolumeAttachState>,
    ) -> Result<bool> {
        for _ in 0..WRITE_TRIES {
            let Some(record) = store::server(&self.pool, server_id).await? else {
                return Ok(false);
            };
            let mut server = record.doc;
            let Some(i) = server
                .volumes
                .iter()
                .position(|v| v.attachment_id == attachment_id && v.state == from)
            else {
                return Ok(false);
            };
            match next {
                Some(state) => server.volumes[i].state = state,
                None => {
                    server.volumes.remove(i);
                }
            }
            if self.finish(server, record.revision).await? {
                return Ok(true);
            }
        }
        Err(Error::Conflict(format!(
            "Instance {server_id} is being changed by others; its volume is settled on the next pass."
        )))
    }
}

/// The block storage API's own attach calls land here (`os-attach`, the attachments API).
impl ServerAttacher for Computes {
    fn attach<'a>(
        &'a self,
        caller: &'a Caller,
        server_id: &'a str,
        volume_id: &'a str,
    ) -> BoxFuture<'a, onestack_volume::error::Result<String>> {
        Box::pin(async move {
            let request = AttachVolume {
                volume_id: volume_id.to_owned(),
                tag: None,
                delete_on_termination: false,
            };
            self.attach_volume(caller, server_id, request)
                .await
                .map(|a| a.attachment_id)
                .map_err(to_volume_error)
        })
    }

    fn detach<'a>(
        &'a self,
        caller: &'a Caller,
        server_id: &'a str,
        volume_id: &'a str,
    ) -> BoxFuture<'a, onestack_volume::error::Result<()>> {
        Box::pin(async move {
            self.detach_volume(caller, server_id, volume_id)
                .await
                .map_err(to_volume_error)
        })
    }

    fn grow<'a>(
        &'a self,
        caller: &'a Caller,
        server_id: &'a str,
        volume_id: &'a str,
        size_gb: u64,
    ) -> BoxFuture<'a, onestack_volume::error::Result<()>> {
        Box::pin(async move {
            self.grow_attached_volume(caller, server_id, volume_id, size_gb)
                .await
                .map_err(to_volume_error)
        })
    }

    fn copy<'a>(
        &'a self,
        server_id: &'a str,
        volume_id: &'a str,
        snapshot_id: &'a str,
    ) -> BoxFuture<'a, onestack_volume::error::Result<()>> {
        Box::pin(async move {
            self.copy_attached_volume(server_id, volume_id, snapshot_id)
                .await
                .map_err(to_volume_error)
        })
    }
}

/// Compute's refusal as the block storage API answers it (the same envelope and status).
fn to_volume_error(error: Error) -> onestack_volume::error::Error {
    onestack_volume::error::Error::Api(ApiError::from(error))
}

pub(super) fn not_attached(volume_id: &str) -> Error {
    Error::NotFound(format!(
        "Volume {volume_id} is not attached to this server."
    ))
}

/// How many disks of its own a guest has before its volumes: the root (local or the boot
/// volume), an ephemeral disk, a swap disk.
pub(crate) fn own_disks(ephemeral_gb: u64, swap_mb: u64) -> usize {
    1 + usize::from(ephemeral_gb > 0) + usize::from(swap_mb > 0)
}

/// The next free `/dev/vdX` after the guest's own disks and the devices `taken`: what a
/// Linux guest names a disk plugged in now.
pub(crate) fn next_device(own: usize, taken: &[&str]) -> String {
    let mut index = own;
    loop {
        let name = disk_name(index);
        if !taken.contains(&name.as_str()) {
            return name;
        }
        index += 1;
    }
}

/// `/dev/vda`, ..., `/dev/vdz`, `/dev/vdaa`, ... as Linux names virtio disks.
pub(crate) fn disk_name(index: usize) -> String {
    let mut suffix = Vec::new();
    let mut n = index + 1;
    while n > 0 {
        n -= 1;
        suffix.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    suffix.reverse();
    format!("/dev/vd{}", String::from_utf8_lossy(&suffix))
}

#[cfg(test)]
mod tests {
    use super::disk_name;

    #[test]
    fn disk_names_follow_linux() {
        assert_eq!(disk_name(0), "/dev/vda");
        assert_eq!(disk_name(1), "/dev/vdb");
        assert_eq!(disk_name(25), "/dev/vdz");
        assert_eq!(disk_name(26), "/dev/vdaa");
        assert_eq!(disk_name(27), "/dev/vdab");
    }
}
