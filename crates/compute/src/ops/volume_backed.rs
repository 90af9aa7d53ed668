//! Images of servers that boot from volumes, as Nova makes and reads them: `createImage` of
//! such a server takes a snapshot of each of its volumes and records an image without data
//! whose `block_device_mapping` property lists those snapshots; a server created from that
//! image gets a new volume from each snapshot and boots from the first.

use std::collections::BTreeMap;

use onestack_image::Snapshot as ImageSnapshot;
use onestack_image::model::Image;
use onestack_volume::ops::snapshot_input::NewSnapshot;
use serde_json::{Map, Value, json};

use super::server_input::{VolumeRequest, VolumeSource};
use crate::error::{Error, Result};
use crate::model::{Server, VolumeAttachState, VolumeAttachment};
use crate::policy::Caller;
use crate::service::Computes;

/// The fields of a block device mapping in an image, all present as Nova writes them
/// (`BlockDeviceDict.get_image_mapping`), those a volume snapshot does not set as `null`.
const MAPPING_FIELDS: [&str; 19] = [
    "source_type",
    "destination_type",
    "snapshot_id",
    "volume_size",
    "boot_index",
    "device_name",
    "delete_on_termination",
    "disk_bus",
    "device_type",
    "guest_format",
    "image_id",
    "volume_id",
    "no_device",
    "tag",
    "volume_type",
    "encrypted",
    "encryption_secret_uuid",
    "encryption_format",
    "encryption_options",
];

impl Computes {
    /// `createImage` of a server that boots from a volume: a snapshot of each attached
    /// volume (under the running guest), then an active image without data that maps
    /// them. Returns the image's id.
    pub(super) async fn snapshot_volume_backed(
        &self,
        caller: &Caller,
        server: &Server,
        name: String,
        metadata: BTreeMap<String, String>,
    ) -> Result<String> {
        let attached: Vec<&VolumeAttachment> = server
            .volumes
            .iter()
            .filter(|a| a.state == VolumeAttachState::Attached)
            .collect();
        let requests = attached
            .iter()
            .map(|a| NewSnapshot {
                volume_id: a.volume_id.clone(),
                name: Some(format!("snapshot for {name}")),
                description: None,
                force: true,
                metadata: BTreeMap::new(),
            })
            .collect();
        let snapshots = self
            .volumes
            .create_snapshots(caller, requests)
            .await
            .map_err(|e| match e {
                // Nova answers a quota it met on the way with 403.
                onestack_volume::error::Error::OverQuota { .. } => Error::Forbidden(e.to_string()),
                other => other.into(),
            })?;
        let mapping: Vec<Value> = attached
            .iter()
            .zip(&snapshots)
            .map(|(a, s)| snapshot_mapping(a, &s.id, s.size))
            .collect();
        let mut properties: Map<String, Value> = metadata
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        properties.insert("image_type".into(), json!("snapshot"));
        properties.insert("instance_uuid".into(), json!(server.id));
        properties.insert("user_id".into(), json!(server.user_id));
        if !server.image_id.is_empty() {
            properties.insert("base_image_ref".into(), json!(server.image_id));
        }
        properties.insert("root_device_name".into(), json!("/dev/vda"));
        // Glance keeps strings: Nova writes the mapping as JSON text and the flag as "True".
        properties.insert(
            "block_device_mapping".into(),
            Value::String(Value::Array(mapping).to_string()),
        );
        properties.insert("bdm_v2".into(), json!("True"));
        let image = ImageSnapshot {
            name,
            owner: server.project_id.clone(),
            min_disk: 0,
            properties,
        };
        Ok(self.images.create_without_data(image).await?)
    }
}

/// One volume's entry in the image: a new volume from its snapshot, where it was.
fn snapshot_mapping(attachment: &VolumeAttachment, snapshot_id: &str, size_gb: u64) -> Value {
    let mut entry: Map<String, Value> = MAPPING_FIELDS
        .iter()
        .map(|f| ((*f).to_owned(), Value::Null))
        .collect();
    entry.insert("source_type".into(), json!("snapshot"));
    entry.insert("destination_type".into(), json!("volume"));
    entry.insert("snapshot_id".into(), json!(snapshot_id));
    entry.insert("volume_size".into(), json!(size_gb));
    entry.insert("boot_index".into(), json!(attachment.boot_index));
    entry.insert("device_name".into(), json!(attachment.device));
    entry.insert(
        "delete_on_termination".into(),
        json!(attachment.delete_on_termination),
    );
    entry.insert("disk_bus".into(), json!("virtio"));
    entry.insert("device_type".into(), json!("disk"));
    Value::Object(entry)
}

/// The volumes an image asks a new server for: its `block_device_mapping` when `bdm_v2`
/// says the mapping is Nova's current format (older formats are not read). The image is
/// its owner's to write, so every entry is checked as a request's would be, and every
/// volume, snapshot or image it names is then found as the caller (never around them).
pub(super) fn image_defined_volumes(image: &Image) -> Result<Vec<VolumeRequest>> {
    let flag = image.properties.get("bdm_v2");
    let v2 = matches!(flag, Some(Value::Bool(true)))
        || flag
            .and_then(Value::as_str)
            .is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
    let Some(mapping) = image.properties.get("block_device_mapping").filter(|_| v2) else {
        return Ok(Vec::new());
    };
    let invalid = |why: &str| {
        Error::BadRequest(format!(
            "Block Device Mapping is Invalid: image {} has a block_device_mapping that {why}.",
            image.id
        ))
    };
    let parsed: Value = match mapping {
        Value::String(text) => serde_json::from_str(text).map_err(|_| invalid("is not JSON"))?,
        other => other.clone(),
    };
    let entries = parsed.as_array().ok_or_else(|| invalid("is not a list"))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry
            .as_object()
            .ok_or_else(|| invalid("has an entry that is not an object"))?;
        let text = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if entry
            .get("no_device")
            .is_some_and(|v| !v.is_null() && v != false)
        {
            continue;
        }
        if text("destination_type") != Some("volume") {
            // Local disks of the snapshot's server come from the flavor again.
            continue;
        }
        let id_of = |k: &str| {
            text(k)
                .map(str::to_owned)
                .ok_or_else(|| invalid(&format!("lacks the {k} of an entry")))
        };
        let source = match text("source_type") {
            Some("snapshot") => VolumeSource::Snapshot(id_of("snapshot_id")?),
            Some("volume") => VolumeSource::Existing(id_of("volume_id")?),
            Some("image") => VolumeSource::Image(id_of("image_id")?),
            Some("blank") => VolumeSource::Blank,
            _ => return Err(invalid("has an entry of an unknown source_type")),
        };
        let number = |k: &str| -> Result<Option<i64>> {
            match entry.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| invalid(&format!("has a {k} that is not an integer"))),
                Some(Value::String(s)) => s
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| invalid(&format!("has a {k} that is not an integer"))),
                Some(_) => Err(invalid(&format!("has a {k} that is not an integer"))),
            }
        };
        let size = match number("volume_size")? {
            None => None,
            Some(s) if s >= 0 => Some(s as u64),
            Some(_) => return Err(invalid("has a negative volume_size")),
        };
        let delete_on_termination = match entry.get("delete_on_termination") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.to_ascii_lowercase().as_str(), "true" | "1"),
            _ => false,
        };
        out.push(VolumeRequest {
            source,
            size,
            boot_index: number("boot_index")?.filter(|i| *i >= 0),
            delete_on_termination,
            tag: None,
            volume_type: text("volume_type").map(str::to_owned),
        });
    }
    if out.iter().filter(|v| v.boots()).count() > 1 {
        return Err(invalid("boots from more than one volume"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(properties: Value) -> Image {
        Image {
            id: "i".into(),
            name: None,
            status: onestack_image::model::Status::Active,
            visibility: "private".into(),
            protected: false,
            os_hidden: false,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            owner: "p".into(),
            size: Some(0),
            virtual_size: None,
            min_disk: 0,
            min_ram: 0,
            container_format: Some("bare".into()),
            disk_format: Some("raw".into()),
            properties: properties.as_object().cloned().unwrap_or_default(),
            tags: Vec::new(),
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_mapping_written_by_a_snapshot_is_read_back() {
        let attachment = VolumeAttachment {
            volume_id: "v".into(),
            attachment_id: "a".into(),
            bdm_id: "b".into(),
            device: "/dev/vda".into(),
            tag: None,
            delete_on_termination: true,
            boot_index: Some(0),
            state: VolumeAttachState::Attached,
            grow_to_gb: None,
            copies: Vec::new(),
        };
        let mapping = Value::Array(vec![snapshot_mapping(&attachment, "s", 2)]);
        let read = image_defined_volumes(&image(json!({
            "bdm_v2": "True", "block_device_mapping": mapping.to_string()
        })))
        .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].source, VolumeSource::Snapshot("s".into()));
        assert_eq!(read[0].size, Some(2));
        assert!(read[0].boots() && read[0].delete_on_termination);
    }

    #[test]
    fn an_image_without_v2_mapping_asks_for_nothing() {
        assert!(image_defined_volumes(&image(json!({}))).unwrap().is_empty());
        let legacy = json!({"block_device_mapping": "[{\"snapshot_id\": \"s\"}]"});
        assert!(image_defined_volumes(&image(legacy)).unwrap().is_empty());
    }

    #[test]
    fn a_crafted_mapping_is_refused() {
        for bad in [
            json!("not json"),
            json!("{}"),
            json!("[1]"),
            json!("[{\"destination_type\": \"volume\", \"source_type\": \"snapshot\"}]"),
            json!("[{\"destination_type\": \"volume\", \"source_type\": \"nfs\"}]"),
            json!(
                "[{\"destination_type\": \"volume\", \"source_type\": \"blank\", \"volume_size\": -1}]"
            ),
            json!(
                "[{\"destination_type\": \"volume\", \"source_type\": \"blank\", \"boot_index\": 0}, {\"destination_type\": \"volume\", \"source_type\": \"blank\", \"boot_index\": \"0\"}]"
            ),
        ] {
            let props = json!({"bdm_v2": true, "block_device_mapping": bad});
            assert!(
                matches!(
                    image_defined_volumes(&image(props)),
                    Err(Error::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }
}
