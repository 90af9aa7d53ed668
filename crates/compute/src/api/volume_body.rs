//! Reading `volumeAttachment` bodies into the typed inputs of `ops::volume_input`, with
//! the fields each microversion allows (Nova's schemas refuse the others).

use onestack_api::Fields;
use serde_json::Value;

use super::input::opt_flag;
use crate::error::{Error, Result};
use crate::microversion::Version;
use crate::ops::volume_input::{AttachVolume, AttachmentUpdate};

/// `POST /servers/{id}/os-volume_attachments`. `device` is accepted and ignored, as
/// Nova's libvirt driver does: the guest names its disks.
pub(super) fn attach(body: Value, version: Version) -> Result<AttachVolume> {
    let mut f = Fields::from_body(body, "volumeAttachment")?;
    let volume_id = volume_id(&mut f)?;
    device(&mut f)?;
    let tag = if version.at_least(49) {
        tag(&mut f)?
    } else {
        None
    };
    let delete_on_termination = if version.at_least(79) {
        opt_flag(&mut f, "delete_on_termination")?.unwrap_or(false)
    } else {
        false
    };
    f.deny_unknown()?;
    Ok(AttachVolume {
        volume_id,
        tag,
        delete_on_termination,
    })
}

/// `PUT /servers/{id}/os-volume_attachments/{volume_id}`: from 2.85 the other fields of
/// the attachment may be sent back unchanged, and `delete_on_termination` changed.
pub(super) fn update(body: Value, version: Version) -> Result<AttachmentUpdate> {
    let mut f = Fields::from_body(body, "volumeAttachment")?;
    let volume_id = volume_id(&mut f)?;
    let delete_on_termination = if version.at_least(85) {
        for echoed in ["id", "serverId", "device", "tag"] {
            f.ignore(echoed);
        }
        opt_flag(&mut f, "delete_on_termination")?
    } else {
        None
    };
    f.deny_unknown()?;
    Ok(AttachmentUpdate {
        volume_id,
        delete_on_termination,
    })
}

fn volume_id(f: &mut Fields) -> Result<String> {
    let id = f.opt_string("volumeId")?.ok_or_else(|| {
        Error::BadRequest(
            "Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property"
                .into(),
        )
    })?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute volumeId. Value: {id}. '{id}' is not a 'uuid'"
        )));
    }
    Ok(id)
}

/// `/dev/vdb`-like or null.
fn device(f: &mut Fields) -> Result<()> {
    let Some(device) = f.opt_string("device")? else {
        return Ok(());
    };
    let name = device.strip_prefix("/dev/").unwrap_or(&device);
    let ok = device.len() <= 255
        && !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "Invalid input for field/attribute device. Value: {device}. It is not a device name like /dev/vdb."
        )))
    }
}

/// A device tag: 1 to 60 characters without `/` or `,`.
fn tag(f: &mut Fields) -> Result<Option<String>> {
    let Some(tag) = f.opt_string("tag")? else {
        return Ok(None);
    };
    if tag.is_empty() || tag.chars().count() > 60 || tag.contains(['/', ',']) {
        return Err(Error::BadRequest(format!(
            "Invalid input for field/attribute tag. Value: {tag}. It must be 1 to 60 characters without '/' or ','."
        )));
    }
    Ok(Some(tag))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const VOL: &str = "5a0e3b7c-1d2e-4f60-8a9b-0c1d2e3f4a5b";

    #[test]
    fn fields_follow_the_microversion() {
        let body = json!({"volumeAttachment": {"volumeId": VOL, "tag": "db", "delete_on_termination": true}});
        assert!(attach(body.clone(), Version(48)).is_err());
        let at = attach(body, Version(79)).unwrap();
        assert_eq!(at.tag.as_deref(), Some("db"));
        assert!(at.delete_on_termination);
        assert!(
            attach(
                json!({"volumeAttachment": {"volumeId": "nope"}}),
                Version(1)
            )
            .is_err()
        );
        assert!(attach(json!({"volumeAttachment": {}}), Version(1)).is_err());
        assert!(
            attach(
                json!({"volumeAttachment": {"volumeId": VOL, "device": "/dev/../x"}}),
                Version(1)
            )
            .is_err()
        );
        let update_body =
            json!({"volumeAttachment": {"volumeId": VOL, "delete_on_termination": false}});
        assert!(update(update_body.clone(), Version(84)).is_err());
        assert_eq!(
            update(update_body, Version(85))
                .unwrap()
                .delete_on_termination,
            Some(false)
        );
    }
}
