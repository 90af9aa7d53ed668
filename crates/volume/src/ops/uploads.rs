//! A volume's data into a new image (`os-volume_upload_image`): the image service records a
//! queued image owned by the volume's project, the volume goes `uploading`, and the agent
//! converts the volume's file and fills the image; the volume is available again after.

use onestack_api::ApiError;
use onestack_image::Announced;
use serde_json::Value;

use super::volume_input::{Upload, UploadImage};
use crate::error::{Error, Result};
use crate::model::{ImageUpload, VolumeStatus};
use crate::policy::Caller;
use crate::service::Volumes;

/// What a volume's image metadata says about the image it came from, not about its data:
/// the new image has its own.
const NOT_COPIED: [&str; 8] = [
    "checksum",
    "container_format",
    "disk_format",
    "image_id",
    "image_name",
    "min_disk",
    "min_ram",
    "size",
];

fn image_error(e: onestack_image::service::Error) -> Error {
    Error::Api(ApiError::from(e))
}

impl Volumes {
    pub async fn upload_to_image(
        &self,
        caller: &Caller,
        id: &str,
        request: UploadImage,
    ) -> Result<Upload> {
        caller.require_writer("volume_extension:volume_actions:upload_image")?;
        let visibility = request.visibility.unwrap_or_else(|| "private".into());
        match visibility.as_str() {
            "private" | "shared" | "community" => {}
            "public" => caller.require_admin("volume_extension:volume_actions:upload_public")?,
            other => {
                return Err(Error::invalid_input(format!(
                    "Invalid visibility '{other}': it is private, shared, community or public."
                )));
            }
        }
        if !matches!(request.disk_format.as_str(), "raw" | "qcow2") {
            return Err(Error::invalid_input(format!(
                "Invalid disk-format '{}' specified. Allowed disk-formats are raw, qcow2.",
                request.disk_format
            )));
        }
        if request.container_format != "bare" {
            return Err(Error::invalid_input(format!(
                "Invalid container-format '{}' specified. Allowed container-formats are bare.",
                request.container_format
            )));
        }
        let volume = self.find_volume(caller, id).await?.doc;
        check_uploadable(id, volume.status, request.force)?;
        let volume_type = self.type_by_id(&volume.volume_type_id).await?;
        let properties = volume
            .image_metadata
            .iter()
            .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let image_id = self
            .images
            .announce(Announced {
                name: request.image_name.clone(),
                owner: volume.project_id.clone(),
                disk_format: request.disk_format.clone(),
                container_format: request.container_format.clone(),
                visibility: visibility.clone(),
                protected: request.protected,
                min_disk: i64::try_from(volume.size).unwrap_or(i64::MAX),
                properties,
            })
            .await
            .map_err(image_error)?;
        let upload = ImageUpload {
            image_id: image_id.clone(),
            disk_format: request.disk_format.clone(),
        };
        let marked = self
            .modify(caller, id, |v| {
                check_uploadable(id, v.status, request.force)?;
                v.status = VolumeStatus::Uploading;
                v.upload = Some(upload.clone());
                Ok(())
            })
            .await;
        let volume = match marked {
            Ok(volume) => volume,
            Err(e) => {
                self.discard_image(&image_id).await;
                return Err(e);
            }
        };
        Ok(Upload {
            volume,
            volume_type,
            image_id,
            image_name: request.image_name,
            disk_format: request.disk_format,
            container_format: request.container_format,
            visibility,
            protected: request.protected,
        })
    }

    /// Fills the announced image from the file the agent wrote the volume's data to.
    pub async fn fill_image(&self, image_id: &str, file: &std::path::Path) -> Result<()> {
        self.images
            .upload_from_file(image_id, file)
            .await
            .map(drop)
            .map_err(image_error)
    }

    /// Removes an announced image that will get no data.
    pub async fn discard_image(&self, image_id: &str) {
        if let Err(error) = self.images.discard(image_id).await {
            tracing::warn!(image = image_id, %error, "cannot remove the image of a failed upload");
        }
    }
}

/// An available volume is uploaded; an attached one would need a copy the guest cannot
/// write during, which onestack does not take yet.
fn check_uploadable(id: &str, status: VolumeStatus, force: bool) -> Result<()> {
    match status {
        VolumeStatus::Available => Ok(()),
        VolumeStatus::InUse if force => Err(Error::invalid_volume(format!(
            "Volume {id} is attached: this cloud does not force uploads of attached volumes (Cinder's enable_force_upload is off by default); detach it first, or make a volume of a snapshot of it (`--os-volume-api-version 3.66 volume snapshot create`) and upload that."
        ))),
        other => Err(Error::invalid_volume(format!(
            "Volume {id} status must be available to upload, but the current status is {other}."
        ))),
    }
}
