//! The image domain model.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Saving,
    Uploading,
    Importing,
    Active,
    Killed,
    Deactivated,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Uploading => "uploading",
            Status::Importing => "importing",
            Status::Active => "active",
            Status::Killed => "killed",
            Status::Deactivated => "deactivated",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Queued,
            Status::Saving,
            Status::Uploading,
            Status::Importing,
            Status::Active,
            Status::Killed,
            Status::Deactivated,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

pub const VISIBILITIES: [&str; 4] = ["public", "private", "shared", "community"];
pub const MEMBER_STATUSES: [&str; 3] = ["pending", "accepted", "rejected"];

#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: Status,
    pub visibility: String,
    pub protected: bool,
    pub os_hidden: bool,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub owner: String,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub min_disk: i64,
    pub min_ram: i64,
    pub container_format: Option<String>,
    pub disk_format: Option<String>,
    /// Free-form properties (`hw_*`, `os_distro`, `kernel_id`, ...), string values.
    pub properties: Map<String, Value>,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub image_id: String,
    pub member_id: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}
