//! How images and members look on the wire, as Glance renders them.

use serde_json::{Map, Value, json};

use crate::model::{Image, Member, Status};

/// Glance's timestamps: `2026-11-22T10:23:06Z`.
pub use onestack_db::timestamps::seconds_utc as timestamp;

pub fn image(i: &Image) -> Value {
    let mut body = Map::new();
    for (key, value) in &i.properties {
        body.insert(key.clone(), value.clone());
    }
    let core = json!({
        "id": i.id, "name": i.name, "status": i.status.as_str(), "visibility": i.visibility,
        "protected": i.protected, "os_hidden": i.os_hidden, "checksum": i.checksum,
        "os_hash_algo": i.os_hash_algo, "os_hash_value": i.os_hash_value, "owner": i.owner,
        "size": i.size, "virtual_size": i.virtual_size, "min_disk": i.min_disk, "min_ram": i.min_ram,
        "container_format": i.container_format, "disk_format": i.disk_format,
        "created_at": timestamp(i.created_at), "updated_at": timestamp(i.updated_at), "tags": i.tags,
        "self": format!("/v2/images/{}", i.id), "file": format!("/v2/images/{}/file", i.id),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        body.extend(core);
    }
    if matches!(i.status, Status::Active | Status::Deactivated) {
        body.insert("stores".into(), json!("file"));
    }
    Value::Object(body)
}

pub fn member(m: &Member) -> Value {
    json!({
        "image_id": m.image_id, "member_id": m.member_id, "status": m.status,
        "created_at": timestamp(m.created_at), "updated_at": timestamp(m.updated_at),
        "schema": "/v2/schemas/member",
    })
}
