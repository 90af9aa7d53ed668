//! Block storage settings, as the `[volume]` section of the config file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumeConfig {
    /// Whether this process runs the volume agent that keeps this host's volume files.
    pub agent: bool,
    /// Availability zone of this host's volumes.
    pub availability_zone: String,
    /// The type a volume gets when its request names none (made at start if missing).
    pub default_type: String,
    /// Default per-project quotas (-1 is unlimited).
    pub quota_volumes: i64,
    pub quota_snapshots: i64,
    pub quota_backups: i64,
    pub quota_groups: i64,
    pub quota_gigabytes: i64,
    pub quota_backup_gigabytes: i64,
    pub quota_per_volume_gigabytes: i64,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            agent: true,
            availability_zone: "nova".into(),
            default_type: "__DEFAULT__".into(),
            quota_volumes: 10,
            quota_snapshots: 10,
            quota_backups: 10,
            quota_groups: 10,
            quota_gigabytes: 1000,
            quota_backup_gigabytes: 1000,
            quota_per_volume_gigabytes: -1,
        }
    }
}

impl VolumeConfig {
    /// The default limit of a project-wide quota resource (`None` for an unknown name).
    pub fn default_quota(&self, resource: &str) -> Option<i64> {
        Some(match resource {
            "volumes" => self.quota_volumes,
            "snapshots" => self.quota_snapshots,
            "backups" => self.quota_backups,
            "groups" => self.quota_groups,
            "gigabytes" => self.quota_gigabytes,
            "backup_gigabytes" => self.quota_backup_gigabytes,
            "per_volume_gigabytes" => self.quota_per_volume_gigabytes,
            _ => return None,
        })
    }
}

/// The project-wide quota resources, in Cinder's order.
pub const QUOTA_RESOURCES: [&str; 7] = [
    "volumes",
    "snapshots",
    "backups",
    "groups",
    "gigabytes",
    "backup_gigabytes",
    "per_volume_gigabytes",
];
