//! Version discovery, the JSON schemas clients validate against, and `/v2/info/*`. Only
//! the version documents are public; the rest needs a token, as behind Glance's authtoken.

use axum::Json;
use axum::http::StatusCode;
use onestack_api::{AuthContext, BaseUrl};
use serde_json::{Value, json};

use crate::format::{CONTAINER_FORMATS, DISK_FORMATS};

/// Image API versions, newest first; v2.16 is Glance 33's current one.
const VERSIONS: [&str; 17] = [
    "v2.16", "v2.15", "v2.14", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.7", "v2.6",
    "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0",
];

pub async fn versions(base: BaseUrl) -> (StatusCode, Json<Value>) {
    let href = format!("{}/image/v2/", base.0);
    let versions: Vec<Value> = VERSIONS
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "id": id,
                "status": if i == 0 { "CURRENT" } else { "SUPPORTED" },
                "links": [{ "rel": "self", "href": href }],
            })
        })
        .collect();
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({ "versions": versions })),
    )
}

fn nullable_enum(values: &[&str]) -> Value {
    std::iter::once(Value::Null)
        .chain(values.iter().map(|v| json!(v)))
        .collect()
}

fn image_schema_value() -> Value {
    let nullable_string = |description: &str, max: u64| json!({"type": ["null", "string"], "maxLength": max, "description": description});
    json!({
        "name": "image",
        "additionalProperties": { "type": "string" },
        "properties": {
            "id": { "type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$", "description": "An identifier for the image" },
            "name": nullable_string("Descriptive name for the image", 255),
            "status": { "type": "string", "readOnly": true, "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"], "description": "Status of the image" },
            "visibility": { "type": "string", "enum": ["community", "public", "private", "shared"], "description": "Scope of image accessibility" },
            "protected": { "type": "boolean", "description": "If true, image will not be deletable." },
            "os_hidden": { "type": "boolean", "description": "If true, image will not appear in default image list response." },
            "checksum": { "type": ["null", "string"], "readOnly": true, "maxLength": 32, "description": "md5 hash of image contents." },
            "os_hash_algo": { "type": ["null", "string"], "readOnly": true, "maxLength": 64, "description": "Algorithm to calculate the os_hash_value" },
            "os_hash_value": { "type": ["null", "string"], "readOnly": true, "maxLength": 128, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo" },
            "owner": nullable_string("Owner of the image", 255),
            "size": { "type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes" },
            "virtual_size": { "type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes" },
            "container_format": { "type": ["null", "string"], "enum": nullable_enum(&CONTAINER_FORMATS), "description": "Format of the container" },
            "disk_format": { "type": ["null", "string"], "enum": nullable_enum(&DISK_FORMATS), "description": "Format of the disk" },
            "created_at": { "type": "string", "readOnly": true, "description": "Date and time of image registration" },
            "updated_at": { "type": "string", "readOnly": true, "description": "Date and time of the last image modification" },
            "tags": { "type": "array", "items": { "type": "string", "maxLength": 255 }, "description": "List of strings related to the image" },
            "direct_url": { "type": "string", "readOnly": true, "description": "URL to access the image file kept in external store" },
            "min_ram": { "type": "integer", "description": "Amount of ram (in MB) required to boot image." },
            "min_disk": { "type": "integer", "description": "Amount of disk space (in GB) required to boot image." },
            "self": { "type": "string", "readOnly": true, "description": "An image self url" },
            "file": { "type": "string", "readOnly": true, "description": "An image file url" },
            "stores": { "type": "string", "readOnly": true, "description": "Store in which image data resides." },
            "schema": { "type": "string", "readOnly": true, "description": "An image schema url" },
            "locations": { "type": "array", "items": { "type": "object" }, "description": "A set of URLs to access the image file kept in external store" },
            "kernel_id": { "type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.", "is_base": false },
            "ramdisk_id": { "type": ["null", "string"], "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.", "is_base": false },
            "instance_uuid": { "type": "string", "description": "Metadata which can be used to record which instance this image is associated with.", "is_base": false },
            "architecture": { "type": "string", "description": "Operating system architecture", "is_base": false },
            "os_distro": { "type": "string", "description": "Common name of operating system distribution", "is_base": false },
            "os_version": { "type": "string", "description": "Operating system version as specified by the distributor", "is_base": false },
        },
        "links": [
            { "rel": "self", "href": "{self}" },
            { "rel": "enclosure", "href": "{file}" },
            { "rel": "describedby", "href": "{schema}" },
        ],
    })
}

pub async fn image_schema_doc(_caller: AuthContext) -> Json<Value> {
    Json(image_schema_value())
}

pub async fn images_schema(_caller: AuthContext) -> Json<Value> {
    Json(json!({
        "name": "images",
        "properties": {
            "images": { "type": "array", "items": image_schema_value() },
            "schema": { "type": "string" },
            "first": { "type": "string" },
            "next": { "type": "string" },
        },
        "links": [
            { "rel": "first", "href": "{first}" },
            { "rel": "next", "href": "{next}" },
            { "rel": "describedby", "href": "{schema}" },
        ],
    }))
}

fn member_schema_value() -> Value {
    json!({
        "name": "member",
        "properties": {
            "created_at": { "type": "string", "description": "Date and time of image member creation" },
            "image_id": { "type": "string", "description": "An identifier for the image" },
            "member_id": { "type": "string", "description": "An identifier for the image member (tenantId)" },
            "schema": { "type": "string", "readOnly": true },
            "status": { "type": "string", "enum": ["pending", "accepted", "rejected"], "description": "The status of this image member" },
            "updated_at": { "type": "string", "description": "Date and time of last modification of image member" },
        },
    })
}

pub async fn member_schema(_caller: AuthContext) -> Json<Value> {
    Json(member_schema_value())
}

pub async fn members_schema(_caller: AuthContext) -> Json<Value> {
    Json(json!({
        "name": "members",
        "properties": {
            "members": { "type": "array", "items": member_schema_value() },
            "schema": { "type": "string" },
        },
        "links": [{ "rel": "schema", "href": "{schema}" }],
    }))
}

pub async fn import_info(_caller: AuthContext) -> Json<Value> {
    Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download"],
        }
    }))
}

pub async fn stores_info(_caller: AuthContext) -> Json<Value> {
    Json(
        json!({ "stores": [{ "id": "file", "description": "Files under the onestack data directory", "default": true }] }),
    )
}
