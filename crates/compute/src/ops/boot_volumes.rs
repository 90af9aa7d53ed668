//! The volumes of a create (`block_device_mapping_v2` with destination `volume`): checked
//! with the request, then made (from an image, a snapshot, or blank) or reserved (an
//! existing volume) for each server before it is recorded. The host reserves the volumes
//! made here once they are available, and boots the server with them.

use onestack_api::AuthContext;
use onestack_db::ids;
use onestack_volume::ops::volume_input::{NewVolume, SourceRequest};

use super::server_input::{VolumeRequest, VolumeSource};
use super::volume_attachments::{disk_name, next_device, own_disks};
use crate::error::{Error, Result};
use crate::model::{FlavorCopy, VolumeAttachState, VolumeAttachment};
use crate::policy::Caller;
use crate::service::Computes;

impl Computes {
    /// Refuses what cannot work before anything is made: an existing volume the caller
    /// cannot attach (or boot from), or given to several servers at once.
    pub(super) async fn check_volume_requests(
        &self,
        caller: &Caller,
        requests: &[VolumeRequest],
        max_count: u64,
    ) -> Result<()> {
        for request in requests {
            if let VolumeSource::Existing(id) = &request.source {
                if max_count > 1 {
                    return Err(Error::BadRequest(
                        "Block Device Mapping is Invalid: an existing volume can go to one server only; launch the servers one by one.".into(),
                    ));
                }
                self.volumes
                    .check_attachable(caller, id, "", request.boots())
                    .await
                    .map_err(|e| match e {
                        onestack_volume::error::Error::NotFound(m) => Error::BadRequest(m),
                        other => other.into(),
                    })?;
            }
        }
        Ok(())
    }

    /// Makes or reserves the volumes of each server in `ids`; on failure gives back what
    /// was made for all of them.
    pub(super) async fn prepare_volumes(
        &self,
        auth: &AuthContext,
        caller: &Caller,
        requests: &[VolumeRequest],
        flavor: &FlavorCopy,
        ids: &[String],
    ) -> Result<Vec<Vec<VolumeAttachment>>> {
        let mut out: Vec<Vec<VolumeAttachment>> = Vec::new();
        for id in ids {
            let mut made = Vec::new();
            let outcome = self
                .prepare_server_volumes(auth, caller, requests, flavor, id, &mut made)
                .await;
            out.push(made);
            if let Err(e) = outcome {
                self.drop_prepared(&caller.project_id, &out).await;
                return Err(e);
            }
        }
        Ok(out)
    }

    async fn prepare_server_volumes(
        &self,
        auth: &AuthContext,
        caller: &Caller,
        requests: &[VolumeRequest],
        flavor: &FlavorCopy,
        server_id: &str,
        made: &mut Vec<VolumeAttachment>,
    ) -> Result<()> {
        let own = own_disks(flavor.ephemeral, flavor.swap);
        for request in requests {
            let device = if request.boots() {
                disk_name(0)
            } else {
                let taken: Vec<&str> = made.iter().map(|v| v.device.as_str()).collect();
                next_device(own, &taken)
            };
            let (volume_id, attachment_id) = match &request.source {
                VolumeSource::Existing(volume_id) => {
                    let reserved = self
                        .volumes
                        .reserve(caller, volume_id, server_id, &device)
                        .await?;
                    (volume_id.clone(), reserved.id)
                }
                source => {
                    let source = match source {
                        VolumeSource::Image(id) => Some(SourceRequest::Image(id.clone())),
                        VolumeSource::Snapshot(id) => Some(SourceRequest::Snapshot(id.clone())),
                        _ => None,
                    };
                    let new = NewVolume {
                        size: request.size.filter(|s| *s > 0),
                        volume_type: request.volume_type.clone(),
                        source,
                        ..NewVolume::default()
                    };
                    let volume = self
                        .volumes
                        .create_volume(caller, auth, new)
                        .await
                        .map_err(|e| match e {
                            // Nova answers a quota it met on the way with 403.
                            onestack_volume::error::Error::OverQuota { .. } => {
                                Error::Forbidden(e.to_string())
                            }
                            // A snapshot, image or type the caller cannot see: Nova's 400.
                            onestack_volume::error::Error::NotFound(m) => Error::BadRequest(m),
                            other => other.into(),
                        })?;
                    (volume.id, String::new())
                }
            };
            made.push(VolumeAttachment {
                volume_id,
                attachment_id,
                bdm_id: ids::uuid(),
                device,
                tag: request.tag.clone(),
                // A volume made for the server goes with it unless the request says so.
                delete_on_termination: request.delete_on_termination,
                boot_index: request.boot_index,
                state: VolumeAttachState::Attaching,
                grow_to_gb: None,
                copies: Vec::new(),
            });
        }
        Ok(())
    }

    /// Gives back the volumes prepared for servers that were not made, deleting the ones
    /// made for them.
    pub(super) async fn drop_prepared(&self, project: &str, prepared: &[Vec<VolumeAttachment>]) {
        for attachment in prepared.iter().flatten() {
            if attachment.attachment_id.is_empty() {
                if let Err(error) = self
                    .volumes
                    .delete_released(&attachment.volume_id, project)
                    .await
                {
                    tracing::warn!(volume = %attachment.volume_id, %error, "cannot delete a volume made for a server that was not made");
                }
            } else {
                self.give_back(attachment).await;
            }
        }
    }
}
